#!/usr/bin/env bash
# `leadscore train` against scikit-learn, LightGBM and CatBoost on UCI Bank Marketing, side by side.
#
#   bash bench/predict_vs_sklearn.sh [ARGS...]
#
# Creates (or reuses) a virtualenv with scikit-learn, LightGBM, CatBoost and pandas from PyPI (VENV, default
# /tmp/predictenv) and runs bench/predict_vs_sklearn.py (which builds the release binary) with ARGS
# (for example `-n 5 --seed 3`, or `--seeds 1,2,3,4,5,7,11,13,17,19 -n 1`; `--help` lists them). The data defaults to
# ../shared/data/bank-full.csv beside the repository.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
VENV=${VENV:-/tmp/predictenv}
if [ ! -x "$VENV/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$VENV"
fi
"$VENV/bin/python" -c "import sklearn, lightgbm, catboost, pandas" 2>/dev/null \
    || "$VENV/bin/python" -m pip install --quiet scikit-learn lightgbm catboost pandas
cd "$root"
exec "$VENV/bin/python" "$here/predict_vs_sklearn.py" "$@"
