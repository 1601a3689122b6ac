#!/usr/bin/env bash
# Prepare a lent, offline GPU machine's run of benchmarks/gpu_check.sh, here, beforehand:
# download into .whl/ the wheels its Python 3.12 image lacks (everything anynet and its tests
# import that the image does not hold: the Array API packages, the drawing server's stack,
# pooch), and copy into data/ the files the tests read (MNIST, the EMNIST bymerge stand-in, the
# EMNIST balanced mapping and labels). Both are ignored by git; pass them to the device tool
# with carry: [".whl", "data"] (about 50 MiB of the 64 MiB a run may carry).
set -euo pipefail
cd "$(dirname "$0")/.."
src=${ANYNET_DATA_DIR:-../shared/data}
rm -rf .whl && mkdir -p .whl data
# the image has numpy, cupy, torch, jax, pytest, hypothesis, httpx, anyio, h11, click, pillow,
# safetensors, tqdm, requests, threadpoolctl, scikit-learn, matplotlib, mpi4py, jax, onnx and
# onnxruntime (see the device tool's KINDS.md); these it lacks:
wheels=(
    array-api-compat array-api-strict array-api-extra pooch platformdirs
    fastapi starlette pydantic pydantic-core annotated-types typing-inspection annotated-doc
    uvicorn python-multipart sniffio ndonnx spox
)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "${wheels[@]}"
rm -rf data/mnist data/emnist-bymerge data/emnist-balanced
cp -r "$src/mnist" "$src/emnist-bymerge" data/
mkdir -p data/emnist-balanced
cp "$src"/emnist-balanced/*.txt "$src"/emnist-balanced/*labels* data/emnist-balanced/ 2>/dev/null || true
du -sh .whl data
