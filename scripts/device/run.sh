#!/usr/bin/env bash
# The GPU check, on the device machine, in two calls that follow each other while the machine
# is warm (scripts/device/prepare.sh made what they carry):
#   run.sh 1   (carry .whl1)            GPU tests of the spherical harmonics and the model,
#                                       `irrepscope bench sph` on the device
#   run.sh 2   (carry .whl2 .gpudata)   cuequivariance tests, `irrepscope bench train-gpu`
#   run.sh 3   (carry .gpudata)         a rerun that fits a short lease: the GPU tests without
#                                       cuequivariance, bench sph, train-gpu radius rows; each
#                                       step under its own time limit
# Results go to $OUT: benchmarks.md (sections to copy into docs/benchmarks.md), logs, JUnit XML.
set -u
STAGE=${1:?stage 1, 2 or 3}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" .gpusite
if [ "$STAGE" != 3 ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target .gpusite .whl"$STAGE"/*.whl || exit 1
fi
export PYTHONPATH=$PWD/.gpusite:$PWD/src
export TRITON_DEFAULT_FP_FUSION=1
export IRREPSCOPE_QM9_DIR=/tmp/irrepscope-qm9x IRREPSCOPE_DATA_DIR=$PWD/.gpudata/cache
PYTEST="python3 -m pytest -q -p no:cacheprovider -m gpu"
if [ -d .gpudata ]; then  # the QM9 extract where its processed cache expects it
    mkdir -p "$IRREPSCOPE_QM9_DIR" && cp .gpudata/qm9x/*.csv "$IRREPSCOPE_QM9_DIR"/
    touch -d "2026-01-01 00:00:00 UTC" "$IRREPSCOPE_QM9_DIR"/*.csv
fi
SPH_ARGS=(--sizes 20,24 --orders '[0..10]' '[0,3,4,5,6]' '[10]' --no-compile)
if [ "$STAGE" = 3 ]; then
    timeout 80 $PYTEST -n 8 --junitxml="$OUT/pytest3.xml" tests/sph/test_triton_gpu.py \
        tests/sph/test_triton_backend.py tests/model/test_gnn.py tests/model/test_aggregate.py \
        > "$OUT/pytest3.log" 2>&1
    echo "pytest stage 3: exit $?"; tail -3 "$OUT/pytest3.log"
    timeout 70 python3 -m irrepscope.cli bench sph "${SPH_ARGS[@]}" \
        --record "$OUT/benchmarks.md" > "$OUT/bench_sph.log" 2>&1
    echo "bench sph: exit $?"; grep "fwd | irrepscope triton" "$OUT/bench_sph.log"
    timeout 60 python3 -m irrepscope.cli bench train-gpu --graphs radius \
        --configs '0,3,4,5,6:16' '0,1,2,10:32' '0,1,2,3,4,5,6:16' \
        --record "$OUT/benchmarks.md" > "$OUT/bench_train_gpu.log" 2>&1
    echo "bench train-gpu: exit $?"; grep "mol/s" "$OUT/bench_train_gpu.log"
elif [ "$STAGE" = 1 ]; then
    { nvidia-smi; python3 -c "import torch, triton, e3nn; print('torch', torch.__version__,
'triton', triton.__version__, 'e3nn', e3nn.__version__, torch.cuda.get_device_name(0))"; } \
        > "$OUT/device.txt" 2>&1
    $PYTEST -n 8 --junitxml="$OUT/pytest1.xml" tests/sph tests/model/test_gnn.py \
        tests/model/test_aggregate.py \
        > "$OUT/pytest1.log" 2>&1
    echo "pytest stage 1: exit $?"; tail -3 "$OUT/pytest1.log"
    python3 -m irrepscope.cli bench sph "${SPH_ARGS[@]}" --record "$OUT/benchmarks.md" \
        > "$OUT/bench_sph.log" 2>&1
    echo "bench sph: exit $?"; tail -25 "$OUT/bench_sph.log"
else
    python3 -c "import cuequivariance_ops_torch; print('cuequivariance kernels import')" \
        > "$OUT/cueq.txt" 2>&1
    $PYTEST --junitxml="$OUT/pytest2.xml" tests/model/test_cueq_message.py \
        tests/bench/test_train_gpu_bench.py > "$OUT/pytest2.log" 2>&1
    echo "pytest stage 2: exit $?"; tail -3 "$OUT/pytest2.log"
    python3 -m irrepscope.cli bench train-gpu --record "$OUT/benchmarks.md" \
        > "$OUT/bench_train_gpu.log" 2>&1
    echo "bench train-gpu: exit $?"; tail -25 "$OUT/bench_train_gpu.log"
fi
