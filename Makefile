# Everything installs itself into .venv on first use.
#   make demo   the whole pipeline on the embedded dataset
#   make test   the full test suite (what CI runs)
# TensorFlow 2.21's wheels and the pins in pyproject.toml are for Python 3.11: use it where it exists.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)
VENV ?= .venv
BIN := $(VENV)/bin

MP_VENV ?= .venv-mediapipe

.PHONY: demo test test-fast install mediapipe

install: $(VENV)/.installed

# MediaPipe Tasks, for the test that its ImageClassifier reads our .tflite metadata. Its pins
# (absl-py 2) clash with tensorflow-model-optimization's (absl-py 1), so it gets its own venv.
mediapipe: $(MP_VENV)/.installed

$(MP_VENV)/.installed:
	$(PYTHON) -m venv $(MP_VENV)
	$(MP_VENV)/bin/pip install --quiet --upgrade pip
	$(MP_VENV)/bin/pip install --quiet 'mediapipe>=0.10.20' pillow
	touch $@

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[train,dev]'
	touch $@

demo: install
	$(BIN)/edgeclf demo --out runs/demo --overwrite

test: install mediapipe
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not slow"
