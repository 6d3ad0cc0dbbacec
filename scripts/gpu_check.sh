#!/usr/bin/env bash
# GPU check for the inference backends, on a bare NVIDIA machine (python3 + pip, PyPI reachable).
#
#   bash scripts/gpu_check.sh [OUT_DIR]        (default: $OUT if set, else results/gpu_check)
#
# 1. creates a venv (.venv-gpu) and installs from pip wheels only what is not importable yet: the CUDA
#    build of torch (PyPI's default Linux wheel), tensorrt-cuXX matching torch's CUDA major,
#    onnxruntime-gpu, onnx, safetensors, numpy, pytest; then this package (pip install --no-deps -e .);
# 2. runs scripts/gpu_check.py: ONNX export, TensorRT FP16 engine build + cache reload, FP16 parity vs
#    torch FP32, and the latency table (torch eager FP32, torch FP16, ONNX Runtime CUDA, TensorRT FP16;
#    encoder at batch 1, predictor at the planner's batch) -> OUT_DIR/gpu_check.md and .json;
# 3. runs the GPU-gated pytest tests (test/test_tensorrt.py, test/test_backends.py).
#
# Options (environment):
#   GPU_VENV=path             venv location (default .venv-gpu); reused when it exists
#   GPU_CHECK_SYSTEM_SITE=1   let the venv see system packages (a machine with CUDA torch preinstalled)
#   WHEEL_DIR=path            install offline from wheels in this folder (pip --no-index --find-links)
#   GPU_CHECK_MODELS=list     model sizes (default tiny,vit_s16_224)
# Budget: installs take what the network allows (torch + TensorRT are ~3 GB of wheels); the check itself
# (step 2 + 3) is bounded by `timeout` to stay under 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-results/gpu_check}}"
VENV="${GPU_VENV:-.venv-gpu}"
MODELS="${GPU_CHECK_MODELS:-tiny,vit_s16_224}"
t_start=$(date +%s)
log() { echo "[gpu_check +$(( $(date +%s) - t_start ))s] $*"; }

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv \
  || log "nvidia-smi not found (continuing: torch will say whether it sees a GPU)"

if [ ! -x "$VENV/bin/python" ]; then
  venv_opts=()
  [ "${GPU_CHECK_SYSTEM_SITE:-0}" = "1" ] && venv_opts+=(--system-site-packages)
  python3 -m venv "${venv_opts[@]}" "$VENV"
fi
PY="$VENV/bin/python"
pip_opts=(-q --disable-pip-version-check --no-input)
[ -n "${WHEEL_DIR:-}" ] && pip_opts+=(--no-index --find-links "$WHEEL_DIR")
pip_install() { log "pip install $*"; "$PY" -m pip install "${pip_opts[@]}" "$@"; }
has() { "$PY" -c "import $1" >/dev/null 2>&1; }

# The same versions as the CPU pins where they exist (requirements.txt); torch's CUDA build is the
# default Linux x86_64 wheel on PyPI, so the pin selects the version, not the CPU variant.
pin() { grep -E "^$1==" requirements.txt | head -1 | grep . || echo "$1"; }
want=()
has torch || want+=("$(pin torch)")
has numpy || want+=("$(pin numpy)")
has onnx || want+=("$(pin onnx)")
has safetensors || want+=("$(pin safetensors)")
has yaml || want+=("$(pin pyyaml)")
has pytest || want+=("$(pin pytest)")
[ ${#want[@]} -gt 0 ] && pip_install "${want[@]}"

cuda_major=$("$PY" -c "import torch; print((torch.version.cuda or '').split('.')[0])")
if [ -z "$cuda_major" ]; then
  log "this torch is a CPU-only build ($("$PY" -c 'import torch; print(torch.__version__)')); need the CUDA build"
  exit 2
fi
log "torch $("$PY" -c 'import torch; print(torch.__version__)'), CUDA major $cuda_major"
# ONNX Runtime: only the GPU package has the CUDA EP (a plain onnxruntime next to it would shadow it).
if ! "$PY" -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())" \
    >/dev/null 2>&1; then
  "$PY" -m pip uninstall -y -q onnxruntime >/dev/null 2>&1 || true
  pip_install onnxruntime-gpu || log "onnxruntime-gpu did not install: its row will say so"
fi
has tensorrt || pip_install "tensorrt-cu${cuda_major}"
"$PY" -m pip install "${pip_opts[@]}" --no-deps --no-build-isolation -e . >/dev/null 2>&1 \
  || "$PY" -m pip install "${pip_opts[@]}" --no-deps -e . \
  || { log "editable install failed; using PYTHONPATH"; export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"; }
log "environment ready"

mkdir -p "$OUT_DIR"
rc=0
timeout 240 "$PY" scripts/gpu_check.py --out "$OUT_DIR" --models "$MODELS" || rc=$?
log "gpu_check.py exit $rc"
timeout 50 "$PY" -m pytest -q -rs -p no:cacheprovider test/test_tensorrt.py test/test_backends.py \
  2>&1 | tee "$OUT_DIR/pytest_gpu.txt" || rc=$((rc == 0 ? 1 : rc))
log "done; table in $OUT_DIR/gpu_check.md"
exit $rc
