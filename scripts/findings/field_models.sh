#!/usr/bin/env bash
# "The field's models" (docs/findings.md): irrepscope L=[0,1,2], NequIP l_max 2, Allegro l_max 2
# and MACE max_ell 2, each trained by its own tool on one irrepscope split of QM9 (the findings'
# 6,000-molecule sample: 4,800 / 600 / 600), 3 seeds each, then analysed by `irrepscope analyze`.
#   scripts/findings/field_models.sh [OUT]        (default runs/field_models; finished steps kept)
# Environment: PYTHON (default .venv/bin/python: irrepscope, nequip, nequip-allegro),
# MACE_PYTHON (default .venv-mace/bin/python: `make venv-mace`), SEEDS (default "1 2 3"),
# and the training budget, about 3 minutes of one thread each: EPOCHS (irrepscope, default 3),
# MINUTES (NequIP / Allegro: Lightning's max_time, default 3), MACE_EPOCHS (default 1, the least
# mace_run_train runs; it computes forces in every step even with --forces_weight 0, so one epoch
# costs about twice the others' budget), FAMILIES
# (default "irrepscope nequip allegro mace": run only these; the others' finished runs still
# count in the tables, and the irrepscope seed that defines the split must have run). One thread
# per job, one job at a time (start two instances with different FAMILIES to use two cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-runs/field_models}"
PY="${PYTHON:-.venv/bin/python}"
MACE_PY="${MACE_PYTHON:-.venv-mace/bin/python}"
SEEDS="${SEEDS:-1 2 3}"
EPOCHS="${EPOCHS:-3}"
MINUTES="${MINUTES:-3}"
MACE_EPOCHS="${MACE_EPOCHS:-1}"
FAMILIES="${FAMILIES:-irrepscope nequip allegro mace}"
export OMP_NUM_THREADS=1
BIN="$(dirname "$PY")"
MACE_BIN="$(dirname "$MACE_PY")"
[ -d runs/qm9_sample_6000 ] || "$PY" -m irrepscope.cli data sample --molecules 6000 --seed 0 \
    --out runs/qm9_sample_6000
mkdir -p "$OUT"

timed() {  # timed DIR COMMAND...: run, writing DIR/train_seconds.txt (wall seconds)
    local dir="$1"; shift
    local start; start=$(date +%s.%N)
    "$@"
    echo "$(date +%s.%N) - $start" | bc > "$dir/train_seconds.txt"
}

wanted() { [[ " $FAMILIES " == *" $1 "* ]]; }

for s in $SEEDS; do  # irrepscope: the findings' L=[0,1,2] h=16 config
    wanted irrepscope || break
    run="$OUT/irrepscope/seed$s"
    if [ ! -f "$run/test_metrics.json" ]; then
        mkdir -p "$run"
        timed "$run" "$PY" -m irrepscope.cli train --config configs/findings/l012_h16.yaml \
            --set "seed=$s" --set "train.max_epochs=$EPOCHS" --run-dir "$run"
    fi
    [ -f "$run/analysis/summary.json" ] || "$PY" -m irrepscope.cli analyze "$run"
done

first="$OUT/irrepscope/seed${SEEDS%% *}"
for part in train val test; do  # the split every other model trains and is tested on
    [ -f "$OUT/$part.xyz" ] || "$PY" -m irrepscope.cli data export --run "$first" \
        --split "$part" --out "$OUT/$part.xyz"
done
SHIFTS="$("$PY" -m irrepscope.bench.field_models shifts "$OUT/train.xyz")"

for family in nequip allegro; do
    wanted "$family" || continue
    for s in $SEEDS; do
        run="$OUT/$family/seed$s"
        if [ ! -f "$run/best.ckpt" ]; then
            mkdir -p "$run"
            timed "$run" "$BIN/nequip-train" -cp "$PWD/configs/field" -cn "$family" \
                "train_file=$PWD/$OUT/train.xyz" "val_file=$PWD/$OUT/val.xyz" \
                "test_file=$PWD/$OUT/test.xyz" "seed=$s" max_epochs=1000 \
                "max_time=00:00:$(printf %02d "$MINUTES"):00" "energy_shifts=$SHIFTS" \
                "hydra.run.dir=$PWD/$run" > "$run/train.out" 2>&1
        fi
        [ -f "$run/analysis/summary.json" ] || "$PY" -m irrepscope.cli analyze \
            --model "$run/best.ckpt" --xyz "$OUT/test.xyz" --trust-model-code \
            --out "$run/analysis" --seed "$s"
    done
done

for s in $SEEDS; do  # MACE: hidden 16x0e+16x1o+16x2e, max_ell 2, energies only (no forces)
    wanted mace || break
    run="$OUT/mace/seed$s"
    if [ ! -f "$run/field.model" ]; then
        mkdir -p "$run"
        timed "$run" "$MACE_BIN/mace_run_train" --name field --work_dir "$run" \
            --train_file "$OUT/train.xyz" --valid_file "$OUT/val.xyz" --E0s average \
            --model MACE --hidden_irreps "16x0e+16x1o+16x2e" --max_ell 2 \
            --num_interactions 2 --r_max 5.0 --batch_size 16 \
            --max_num_epochs "$MACE_EPOCHS" --forces_weight 0 --energy_key REF_energy \
            --device cpu --seed "$s" > "$run/train.out" 2>&1
    fi
    [ -f "$run/analysis/summary.json" ] || "$MACE_PY" -m irrepscope.cli analyze \
        --model "$run/field.model" --xyz "$OUT/test.xyz" --trust-model-code \
        --out "$run/analysis" --seed "$s"
done

"$PY" -m irrepscope.bench.field_models tables "$OUT"
