# Everything installs itself into .venv on first use.
#   make demo   the whole pipeline on the embedded dataset
#   make test   the full test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast install

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[train,dev]'
	touch $@

demo: install
	$(BIN)/edgeclf demo --out runs/demo --overwrite

test: install
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not slow"
