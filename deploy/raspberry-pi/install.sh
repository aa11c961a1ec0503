#!/usr/bin/env bash
# Install the edgeclf runner (no TensorFlow) into a venv on a Raspberry Pi (or any Linux box).
#   bash install.sh [VENV_DIR] [PACKAGE]
# PACKAGE defaults to "edgeclf"; pass a path to a wheel or a source checkout to install that instead.
set -euo pipefail
VENV=${1:-$HOME/edgeclf-venv}
PACKAGE=${2:-edgeclf}
PYTHON=${PYTHON:-python3}

arch=$(uname -m)
echo "edgeclf runner -> $VENV ($arch, $($PYTHON --version))"
$PYTHON -m venv "$VENV"
"$VENV/bin/pip" install --upgrade pip
case "$arch" in
  x86_64|aarch64|arm64)
    "$VENV/bin/pip" install "$PACKAGE"            # LiteRT (ai-edge-litert) + ONNX Runtime wheels exist here
    ;;
  armv7l|armv6l)
    # 32-bit Raspberry Pi OS: no ai-edge-litert wheel; use tflite-runtime where a wheel exists
    # (older Pythons), else ONNX Runtime alone.
    "$VENV/bin/pip" install --no-deps "$PACKAGE"
    "$VENV/bin/pip" install numpy pillow typer rich pyyaml pydantic
    "$VENV/bin/pip" install tflite-runtime || echo "no tflite-runtime wheel for this Python: .tflite files will not run"
    "$VENV/bin/pip" install onnxruntime || echo "no onnxruntime wheel here: .onnx files will not run"
    ;;
  *)
    echo "unsupported architecture $arch" >&2; exit 1 ;;
esac
if "$VENV/bin/python" -c "import tensorflow" 2>/dev/null; then
  echo "warning: TensorFlow is importable in $VENV; the runner does not need it" >&2
fi
"$VENV/bin/edgeclf" --help >/dev/null
echo "installed: $VENV/bin/edgeclf  (try: $VENV/bin/edgeclf predict export/ image.jpg)"
