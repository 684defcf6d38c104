#!/usr/bin/env bash
# The findings campaign (scripts/findings/run.sh) on a lent device machine: training on its GPU,
# analysis on its CPUs, 12 steps at a time; then the GPU tests of the model. Carry .whlf,
# runs/qm9_sample_6000 and .fdata (scripts/device/prepare_findings.sh made them).
# What comes back under $OUT: findings.tgz (the campaign's folder without checkpoints), logs.
set -u
OUT=${OUT:-/tmp/out}
LIMIT=${LIMIT:-420}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
    .whlf/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHON=python3 PYTHONUNBUFFERED=1
export IRREPSCOPE_DATA_DIR=$PWD/.fdata/cache OMP_NUM_THREADS=1
nvidia-smi -L > "$OUT/device.txt" 2>&1
timeout "$LIMIT" scripts/findings/run.sh --out runs/findings -j 12 --threads 1 \
    --set train.accelerator=gpu > "$OUT/findings.log" 2>&1
echo "findings: exit $?"; tail -4 "$OUT/findings.log"
timeout 90 python3 -m pytest -q -p no:cacheprovider -m gpu tests/sph/test_triton_gpu.py \
    tests/model/test_gnn.py tests/model/test_aggregate.py > "$OUT/pytest_gpu.log" 2>&1
echo "pytest gpu: exit $?"; tail -2 "$OUT/pytest_gpu.log"
tar czf "$OUT/findings.tgz" --exclude='*.ckpt' runs/findings
ls -la "$OUT"
