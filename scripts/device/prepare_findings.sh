#!/usr/bin/env bash
# Prepares, on this (CPU) machine, what the findings campaign needs on a lent device machine
# (scripts/device/findings.sh), within one call's 64 MiB:
#   .whlf/                   rdkit, phate and their pure-Python needs (the device image lacks them)
#   runs/qm9_sample_6000/    the findings' QM9 sample (irrepscope data sample)
#   .fdata/cache/            its processed cache (content-keyed, so valid there too)
# Run from the repository root.
set -euo pipefail
PY=.venv/bin/python
rm -rf .whlf .fdata
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whlf rdkit==2026.9.1 phate==2.0.0 graphtools==2.1.0 PyGSP==0.6.1 tasklogger==1.2.0 \
    Deprecated==1.3.1 future==1.0.0
[ -d runs/qm9_sample_6000 ] || .venv/bin/irrepscope data sample --molecules 6000 --seed 0 \
    --out runs/qm9_sample_6000
IRREPSCOPE_DATA_DIR=.fdata/cache $PY -c "
from irrepscope.data import load_dataset
print(load_dataset(graph='bonds', qm9_dir='runs/qm9_sample_6000', progress=False))"
du -sh .whlf runs/qm9_sample_6000 .fdata
