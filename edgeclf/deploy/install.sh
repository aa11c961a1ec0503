#!/usr/bin/env bash
# Install the edgeclf runner (no TensorFlow) into a venv on a Raspberry Pi (or any Linux box), from
# the wheel that `edgeclf export --bundle` packed beside this script, then check the board with
# `edgeclf verify` on the bundle's export/ folder.
#   bash install.sh [VENV_DIR] [PACKAGE]
# PACKAGE defaults to the bundle's runner/edgeclf-*.whl (checked against bundle.json's sha256);
# pass a path to another wheel or to a source checkout to install that instead. edgeclf is not
# published on the package index: no name is ever installed from there for it (its dependencies
# -- NumPy, Pillow, LiteRT, ONNX Runtime, Typer, Rich, PyYAML, pydantic -- do come from it).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${1:-$HOME/edgeclf-venv}
PACKAGE=${2:-}
PYTHON=${PYTHON:-python3}

if [ -z "$PACKAGE" ]; then
  shopt -s nullglob
  wheels=("$HERE"/runner/edgeclf-*.whl)
  if [ ${#wheels[@]} -ne 1 ]; then
    echo "error: expected one runner wheel in $HERE/runner/ (unpack the whole bundle), or pass a wheel path" >&2
    exit 2
  fi
  PACKAGE=${wheels[0]}
  if [ -f "$HERE/bundle.json" ]; then
    want=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["runner"]["sha256"])' "$HERE/bundle.json")
    have=$(sha256sum "$PACKAGE" | cut -d' ' -f1)
    if [ "$want" != "$have" ]; then
      echo "error: $PACKAGE does not match bundle.json (sha256 $have, expected $want): re-copy the bundle" >&2
      exit 2
    fi
  fi
fi

arch=$(uname -m)
echo "edgeclf runner -> $VENV ($arch, $($PYTHON --version)) from $PACKAGE"
$PYTHON -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
case "$arch" in
  x86_64|aarch64|arm64)
    "$VENV/bin/pip" install --quiet "$PACKAGE"    # LiteRT (ai-edge-litert) + ONNX Runtime wheels exist here
    # the same version number from a newer bundle must still replace the installed runner
    "$VENV/bin/pip" install --quiet --no-deps --force-reinstall "$PACKAGE"
    ;;
  armv7l|armv6l)
    # 32-bit Raspberry Pi OS: no ai-edge-litert wheel; use tflite-runtime where a wheel exists
    # (older Pythons), else ONNX Runtime alone.
    "$VENV/bin/pip" install --quiet --no-deps --force-reinstall "$PACKAGE"
    "$VENV/bin/pip" install --quiet numpy pillow typer rich pyyaml pydantic
    "$VENV/bin/pip" install --quiet tflite-runtime || echo "no tflite-runtime wheel for this Python: .tflite files will not run"
    "$VENV/bin/pip" install --quiet onnxruntime || echo "no onnxruntime wheel here: .onnx files will not run"
    ;;
  *)
    echo "error: unsupported architecture $arch" >&2; exit 2 ;;
esac
if "$VENV/bin/python" -c "import tensorflow" 2>/dev/null; then
  echo "warning: TensorFlow is importable in $VENV; the runner does not need it" >&2
fi
"$VENV/bin/edgeclf" --help >/dev/null
echo "installed: $VENV/bin/edgeclf"
if [ -f "$HERE/export/artifacts.json" ] && [ -z "${EDGECLF_SKIP_VERIFY:-}" ]; then
  echo "checking this board against the exporting machine: edgeclf verify $HERE/export"
  "$VENV/bin/edgeclf" verify "$HERE/export"
fi
echo "try: $VENV/bin/edgeclf predict $HERE/export image.jpg"
