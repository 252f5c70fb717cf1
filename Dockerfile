# tickcast worker / CLI image. Build: docker build -t tickcast .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    TICKCAST_STATE_DIR=/var/lib/tickcast TICKCAST_METRICS_ADDR=0.0.0.0

WORKDIR /src
COPY pyproject.toml README.md ./
COPY tickcast ./tickcast
COPY streams ./streams
COPY models ./models
COPY training ./training
RUN pip install . && rm -rf /src

# Never run as root.
RUN useradd --system --uid 10001 --home-dir /var/lib/tickcast --create-home tickcast
USER tickcast
WORKDIR /var/lib/tickcast

EXPOSE 9464
ENTRYPOINT ["tickcast"]
CMD ["worker"]
