#!/usr/bin/env bash
# The findings campaign (irrepscope.bench.findings): every experiment through the irrepscope CLI,
# in parallel, into one folder with its tables. Run from the repository root, e.g.
#   scripts/findings/run.sh --out runs/findings -j 16            # every stage this install can run
#   scripts/findings/run.sh --stages orders,dropout --seeds 3 -j 2
#   scripts/findings/run.sh --dry-run                            # list the steps
# Options: --help. PYTHON selects the interpreter (default .venv/bin/python, else python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
# The findings' data set (configs/findings: data.qm9_dir), written once.
[ -d runs/qm9_sample_6000 ] || "$PYTHON" -m irrepscope.cli data sample --molecules 6000 --seed 0 \
    --out runs/qm9_sample_6000
exec "$PYTHON" -m irrepscope.bench.findings "$@"
