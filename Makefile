# stt-suite: the usual targets. `make run` and `make test` are all a new machine needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test test-deps proto docs bench bench-router lint images chart-check clean

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
# Needs a container engine; IMAGE names the repository to tag for, e.g. a registry path.
IMAGE ?= stt-suite
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
DOCKER ?= docker
images:
	$(DOCKER) build -f docker/Dockerfile -t $(IMAGE):$(VERSION) .
	$(DOCKER) build -f docker/Dockerfile.cuda -t $(IMAGE):$(VERSION)-cuda .

# The Helm chart and Dockerfile checks alone (they are part of `make test` too).
chart-check: $(STAMP)
	$(PY) -m pytest -q tests/test_chart.py tests/test_chart_jobs.py tests/test_images.py

# Style, the layers of services/ (the import contracts in pyproject.toml), and bandit's
# security checks of services/ (each finding left is explained where it is, `# nosec BXXX`).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/bandit -q -r services

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
