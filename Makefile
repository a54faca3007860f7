# stt-suite: the usual targets. `make run` and `make test` are all a new machine needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
GRPC_PORT ?= 50051
HTTP_PORT ?= 9090

.PHONY: install run test proto proto-check bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Serves whisper_en with the bundled Whisper base model, in the foreground.
run: $(STAMP)
	$(VENV)/bin/stt serve whisper_en --grpc-port $(GRPC_PORT) --http-port $(HTTP_PORT)

test: $(STAMP)
	$(PY) -m pytest -q

# Regenerates the Python code for proto/ into gen/ (never edit gen/ by hand).
proto: $(STAMP)
	$(PY) tools/protogen.py gen

bench: $(STAMP)
	$(PY) -m bench.run

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
