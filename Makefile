# stt-suite: the usual targets. `make run` and `make test` are all a new machine needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test test-deps proto docs bench bench-router lint images chart-check \
	container-deps container-check clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The router on 127.0.0.1:50051 in front of every language service that can run here
# (whisper_en with the bundled base model), in the foreground; Ctrl-C stops them all.
run: $(STAMP)
	$(VENV)/bin/stt up

# The tests make speech with espeak-ng and start PostgreSQL servers of their own; install
# what is missing (Debian/Ubuntu).
test-deps:
	@missing=""; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; \
	fi

test: $(STAMP) test-deps
	$(PY) -m pytest -q

# Regenerates the Python code for proto/ into gen/ (never edit gen/ by hand).
proto: $(STAMP)
	$(PY) tools/protogen.py gen

# Regenerates docs/configuration.md from the settings classes.
docs: $(STAMP)
	$(PY) tools/settings_doc.py

# Every benchmark, one after the other (each rewrites its own section of docs/benchmarks.md).
bench: $(STAMP)
	$(PY) -m bench.run
	$(PY) -m bench.streaming
	$(PY) -m bench.router
	$(PY) -m bench.ctc
	$(PY) -m bench.diarization
	$(PY) -m bench.jobs

# The router's overhead: the same cached request direct and through the router.
bench-router: $(STAMP)
	$(PY) -m bench.router

# The container images: CPU (`stt-suite:<version>`) and CUDA (`stt-suite:<version>-cuda`).
# Built with docker where its engine answers, else with podman (DOCKER=... picks one);
# IMAGE names the repository to tag for, e.g. a registry path; IMAGE_BUILD_ARGS is passed
# to both builds (e.g. --build-arg PYTHON_IMAGE=...).
IMAGE ?= stt-suite
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
DOCKER ?= $(shell if docker info >/dev/null 2>&1; then echo docker; \
	elif command -v podman >/dev/null 2>&1; then echo podman; else echo docker; fi)
IMAGE_BUILD_ARGS ?=
images:
	$(DOCKER) build $(IMAGE_BUILD_ARGS) -f docker/Dockerfile -t $(IMAGE):$(VERSION) .
	$(DOCKER) build $(IMAGE_BUILD_ARGS) -f docker/Dockerfile.cuda -t $(IMAGE):$(VERSION)-cuda .

# What the container check needs besides the tests' tools (Debian/Ubuntu, as root): podman
# with runc, and mmdebstrap for the base image.
container-deps:
	@missing=""; \
	for tool in podman runc mmdebstrap; do \
	  command -v $$tool >/dev/null || missing="$$missing $$tool"; \
	done; \
	if [ -n "$$missing" ]; then \
	  apt-get update -qq && apt-get install -y -qq $$missing; \
	fi

# The suite as the cluster runs it: the CPU image built on a local base, the chart's pods
# started as containers, probed, called through the router and stopped (tools/container_check.py;
# a report lands in /var/tmp/stt-container-check). Runs as root. CONTAINER_CHECK_ARGS is
# passed on (e.g. --write-docs, to put the figures in docs/benchmarks.md).
CONTAINER_CHECK_ARGS ?=
container-check: $(STAMP) test-deps container-deps
	$(PY) -m tools.container_check $(CONTAINER_CHECK_ARGS)

# The Helm chart and Dockerfile checks alone (they are part of `make test` too).
chart-check: $(STAMP)
	$(PY) -m pytest -q tests/test_chart.py tests/test_chart_jobs.py tests/test_chart_caches.py \
	  tests/test_images.py tests/test_container_plan.py

# Style, the layers of services/ (the import contracts in pyproject.toml), and bandit's
# security checks of services/ (each finding left is explained where it is, `# nosec BXXX`).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/bandit -q -r services

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
