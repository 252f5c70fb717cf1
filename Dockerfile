# tickcast worker / CLI image: slim, non-root, dependencies in their own cached layer,
# no training data baked in (trainers fetch or use the shipped sample).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    TICKCAST_STATE_DIR=/var/lib/tickcast TICKCAST_METRICS_ADDR=0.0.0.0

WORKDIR /src
# Layer 1: third-party dependencies, rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && pip install -r requirements.txt
# Layer 2: tickcast itself.
COPY README.md ./
COPY tickcast ./tickcast
COPY streams ./streams
COPY models ./models
COPY training ./training
RUN pip install --no-deps . && rm -rf /src

# The state and model folders belong to the unprivileged user (a named volume mounted on
# them starts with this ownership). USER is numeric so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 tickcast \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/tickcast --create-home \
      --shell /usr/sbin/nologin tickcast \
 && mkdir -p /models && chown 10001:10001 /models /var/lib/tickcast
USER 10001:10001
WORKDIR /var/lib/tickcast

EXPOSE 9464
ENTRYPOINT ["tickcast"]
CMD ["worker"]
