# tickcast — every target sets itself up through `make setup` (idempotent).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JARS := deploy/kafka/lib/.resolved

.PHONY: setup demo test test-unit lint train bench kafka-up kafka-down kafka-status clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

setup: $(STAMP) $(JARS)  ## virtualenv at .venv, packages, Kafka jars (idempotent)

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tickcast needs Python >= 3.11; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml bench/pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet -e './bench[quix]'  # the bench and its optional peer
	@touch $@

$(JARS): deploy/kafka/pom.xml | $(STAMP)
	@command -v java >/dev/null || { echo "Java 17 is required for the local Kafka broker (Debian: apt-get install openjdk-17-jre-headless)"; exit 1; }
	@command -v mvn >/dev/null || { echo "Maven is required to resolve the Kafka jars (Debian: apt-get install maven)"; exit 1; }
	$(VENV)/bin/tickcast kafka fetch
	@touch $@

demo: setup  ## local Kafka + worker + replay of labelled texts; prints where /metrics is
	$(VENV)/bin/tickcast demo

test: setup  ## the whole suite: unit and integration (starts a broker if none runs)
	$(VENV)/bin/pytest

test-unit: setup  ## unit tests only (no broker)
	$(VENV)/bin/pytest -m "not integration"

lint: setup  ## ruff
	$(VENV)/bin/ruff check .

kafka-up: setup  ## start the local broker (idempotent)
	$(VENV)/bin/tickcast kafka up

kafka-down: setup  ## stop the local broker (data kept in .tickcast/kafka)
	$(VENV)/bin/tickcast kafka down

kafka-status: setup
	$(VENV)/bin/tickcast kafka status

clean:  ## remove the virtualenv, jars and local state (Kafka data included)
	-$(VENV)/bin/tickcast kafka down 2>/dev/null
	rm -rf $(VENV) deploy/kafka/lib .tickcast .pytest_cache .ruff_cache .hypothesis

train: setup  ## train both models on the full datasets (first sentiment run downloads the corpus)
	$(VENV)/bin/tickcast train prices
	$(VENV)/bin/tickcast train sentiment

bench: setup  ## throughput/latency vs per-message baseline and raw ceiling (minutes; writes bench/results/)
	$(VENV)/bin/tickcast bench
