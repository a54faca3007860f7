# stt-suite: the usual targets. `make run` and `make test` are all a new machine needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
GRPC_PORT ?= 50051
HTTP_PORT ?= 9090

.PHONY: install run test test-deps proto docs bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Serves whisper_en with the bundled Whisper base model, in the foreground.
run: $(STAMP)
	$(VENV)/bin/stt serve whisper_en --grpc-port $(GRPC_PORT) --http-port $(HTTP_PORT)

# The tests make speech with espeak-ng; install it when missing (Debian/Ubuntu).
test-deps:
	@command -v espeak-ng >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq espeak-ng; }

test: $(STAMP) test-deps
	$(PY) -m pytest -q

# Regenerates the Python code for proto/ into gen/ (never edit gen/ by hand).
proto: $(STAMP)
	$(PY) tools/protogen.py gen

# Regenerates docs/configuration.md from the settings classes.
docs: $(STAMP)
	$(PY) tools/settings_doc.py

bench: $(STAMP)
	$(PY) -m bench.run

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
