#!/usr/bin/env bash
# Prepare a lent, offline GPU machine's run of benchmarks/gpu_check.sh: download here the wheels
# its Python 3.12 lacks into .whl/ and copy the data the tests read into data/ (both ignored by
# git; pass them to the device tool with carry: [".whl", "data"]).
set -euo pipefail
cd "$(dirname "$0")/.."
src=${ANYNET_DATA_DIR:-../shared/data}
mkdir -p .whl data
for name in array-api-compat array-api-strict pooch platformdirs fastapi starlette pydantic \
            pydantic-core annotated-types typing-inspection uvicorn python-multipart anyio sniffio; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "$name"
done
cp -r "$src/mnist" "$src/emnist-bymerge" data/
du -sh .whl data
