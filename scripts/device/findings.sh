#!/usr/bin/env bash
# The findings campaign (scripts/findings/run.sh) on a lent device machine: training on its GPU,
# analysis on its CPUs, 14 steps at a time; then the GPU tests of the model. Carry .whlf,
# runs/qm9_sample_6000 and .fdata (scripts/device/prepare_findings.sh made them).
# What comes back under $OUT: findings.tgz (the campaign's folder without checkpoints, HTML,
# figures and embeddings), figures.tgz (the figures and comparison reports), logs.
set -u
OUT=${OUT:-/tmp/out}
LIMIT=${LIMIT:-420}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
    .whlf/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHON=python3 PYTHONUNBUFFERED=1
export IRREPSCOPE_DATA_DIR=$PWD/.fdata/cache OMP_NUM_THREADS=1
nvidia-smi -L > "$OUT/device.txt" 2>&1
# The model's GPU tests, beside the campaign (they are short).
timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu tests/sph/test_triton_gpu.py \
    tests/model/test_gnn.py tests/model/test_aggregate.py > "$OUT/pytest_gpu.log" 2>&1 &
timeout "$LIMIT" scripts/findings/run.sh --out runs/findings -j "${JOBS:-14}" --threads 1 \
    --set train.accelerator=gpu > "$OUT/findings.log" 2>&1
echo "findings: exit $?"; tail -4 "$OUT/findings.log"
wait; echo "pytest gpu:"; tail -2 "$OUT/pytest_gpu.log"
tar czf "$OUT/findings.tgz" --exclude='*.ckpt' --exclude='*.html' --exclude='*.png' \
    --exclude='*.npz' runs/findings
find runs/findings -path '*/compare/*' \( -name '*.png' -o -name '*.html' \) -print0 \
    | tar czf "$OUT/figures.tgz" --null -T -
ls -la "$OUT"
