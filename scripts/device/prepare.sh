#!/usr/bin/env bash
# Prepares, on this (CPU) machine, what the GPU check needs on a lent device machine:
#   .whl1/  wheels the device image lacks, first call (cuequivariance's CUDA library, sphericart)
#   .whl2/  second call (cuequivariance-torch and its kernel bindings)
#   .gpudata/  a QM9 extract (first ROWS molecules of each CSV part) and its processed cache,
#              so the device needs neither qm9pack nor RDKit
# The wheels are split because one call carries at most 64 MiB. Run from the repository root.
set -euo pipefail
ROWS=${ROWS:-3000}
PIP=".venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12
     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
     --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64
     --platform manylinux2014_x86_64"
rm -rf .whl1 .whl2 .gpudata
$PIP -d .whl1 cuequivariance-ops-cu13==0.13.0 sphericart-torch==2.0.4 platformdirs
$PIP -d .whl2 cuequivariance-ops-torch-cu13==0.13.0 cuequivariance==0.13.0 \
    cuequivariance-torch==0.13.0
# The cache file's name derives from the extract's folder: the extract lives at the same
# absolute path here and there (run.sh copies it there).
EXTRACT=/tmp/irrepscope-qm9x
rm -rf "$EXTRACT" && mkdir -p "$EXTRACT" .gpudata/qm9x
.venv/bin/python -c "import sys; from pathlib import Path
from irrepscope.bench.data import write_qm9_slice
write_qm9_slice(Path(sys.argv[1]), int(sys.argv[2]))" "$EXTRACT" "$ROWS"
touch -d "2026-01-01 00:00:00 UTC" "$EXTRACT"/*.csv
cp -p "$EXTRACT"/*.csv .gpudata/qm9x/
IRREPSCOPE_QM9_DIR=$EXTRACT IRREPSCOPE_DATA_DIR=.gpudata/cache .venv/bin/python -c "
from irrepscope.data import load_dataset
print(load_dataset(graph='bonds', progress=False), load_dataset(graph='radius', progress=False))"
du -sh .whl1 .whl2 .gpudata
