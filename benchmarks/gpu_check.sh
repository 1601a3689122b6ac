#!/usr/bin/env bash
# The GPU check: on a machine with a CUDA GPU, run the whole test suite with CuPy usable (every
# backend-parametrised test then also runs on CuPy, and on torch:cuda), then the GPU speed
# benchmark (anynet on CuPy and PyTorch CUDA at batch 128 and 8192, with the share of the
# matmul peak), and write both, named after the device, under benchmarks/results/ (or $OUT).
# It fails when the tests fail or any GPU contestant errors. About 6 minutes: it fits one
# 10-minute device-tool run with time to spare.
#
#   ANYNET_DATA_DIR=../shared/data bash benchmarks/gpu_check.sh
#
# Installing: with internet, `pip install -e ".[test]"` plus the `gpu` extra when CuPy is not
# there yet. Offline (the lent GPU machines), the wheels in .whl/ (made here beforehand by
# benchmarks/gpu_wheels.sh) are installed into /tmp/site; ANYNET_DATA_DIR then points to the
# copy of the data carried with the repository (gpu_wheels.sh makes it: data/).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export ANYNET_DATA_DIR=${ANYNET_DATA_DIR:-$PWD/data}
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-4}
out=${OUT:-benchmarks/results}
mkdir -p "$out"

if [ -d .whl ]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="$PWD:/tmp/site:${PYTHONPATH:-}"
else
    $PY -m pip install -q -e ".[test]" || exit 1
    $PY -c "import cupy" 2>/dev/null || $PY -m pip install -q -e ".[gpu]" || exit 1
fi

device=$($PY - <<'PY'
import cupy
name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
print(name.decode() if isinstance(name, bytes) else name)
PY
) || { echo "gpu_check: no CUDA GPU usable through CuPy here; nothing to check" >&2; exit 2; }
slug=$(printf '%s' "$device" | tr -cs 'A-Za-z0-9' '-' | sed 's/-*$//')
echo "gpu_check: $device (results: $out/gpu-$slug-*)"
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null
    $PY -c "import anynet, cupy, numpy; print('anynet', anynet.__version__, 'cupy', cupy.__version__, 'numpy', numpy.__version__, 'backends', anynet.available_backends())"
    $PY -c "from cupy.cuda import nccl; print('nccl available', nccl.available)" 2>&1 | tail -1
} | tee "$out/gpu-$slug-device.txt"

start=$(date +%s)
timeout=(); $PY -c "import pytest_timeout" 2>/dev/null && timeout=(--timeout 120)
timeout 330 $PY -m pytest -q -rs -p no:cacheprovider --durations=15 "${timeout[@]}" 2>&1 | tee "$out/gpu-$slug-tests.txt"
tests=${PIPESTATUS[0]}
echo "gpu_check: tests exit $tests after $(( $(date +%s) - start )) s"

timeout 150 $PY benchmarks/speed.py --worker gpu --data-dir "$ANYNET_DATA_DIR" > "$out/gpu-$slug-speed.json"
speed=$?
cat "$out/gpu-$slug-speed.json"
echo "gpu_check: speed exit $speed after $(( $(date +%s) - start )) s"
# a contestant that errored is recorded in the JSON by the worker: that is a failed check
$PY benchmarks/gpu_verdict.py "$out/gpu-$slug-speed.json"
contestants=$?
[ "$tests" = 0 ] && [ "$speed" = 0 ] && [ "$contestants" = 0 ]
