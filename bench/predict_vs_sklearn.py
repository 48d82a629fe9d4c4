#!/usr/bin/env python3
"""`leadscore train` against scikit-learn's LogisticRegression and LightGBM on UCI Bank Marketing.

Usage (from the repository root): `bash bench/predict_vs_sklearn.sh [ARGS]` makes the virtualenv and runs this;
or by hand:
    python3 -m venv /tmp/predictenv
    /tmp/predictenv/bin/pip install scikit-learn lightgbm pandas
    /tmp/predictenv/bin/python bench/predict_vs_sklearn.py [--data ../shared/data/bank-full.csv] [--seed 7] [-n 3]

One stratified 80/20 split of bank-full without `duration` (it is known only after the call and
leaks the outcome), made here with scikit-learn's train_test_split and written as two CSV files,
so that every contender trains and tests on the same rows. Each fit is timed as a whole (leadscore
as a process: reading the CSV, encoding, fitting, evaluating; the Python models from DataFrames
already in memory, preprocessing included), the median of n runs. Prints test AUC and wall time.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import lightgbm as lgb
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def timed(n, fit):
    times, result = [], None
    for _ in range(n):
        start = time.perf_counter()
        result = fit()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "bank-full.csv"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("-n", type=int, default=3)
    a = ap.parse_args()

    frame = pd.read_csv(a.data).drop(columns=["duration"])
    train, test = train_test_split(frame, test_size=0.2, stratify=frame["y"], random_state=a.seed)
    work = tempfile.mkdtemp(prefix="predict-bench-")
    train_csv, test_csv = os.path.join(work, "train.csv"), os.path.join(work, "test.csv")
    train.to_csv(train_csv, index=False)
    test.to_csv(test_csv, index=False)
    y_train, y_test = (train["y"] == "yes").astype(int), (test["y"] == "yes").astype(int)
    x_train, x_test = train.drop(columns=["y"]), test.drop(columns=["y"])
    numeric = [c for c in x_train.columns if x_train[c].dtype.kind in "if"]
    categorical = [c for c in x_train.columns if c not in numeric]

    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "leadscore"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "leadscore")
    model_out = os.path.join(work, "model.json")

    def leadscore(algorithm):
        def run():
            out = subprocess.run(
                [binary, "train", "--data", train_csv, "--test-data", test_csv, "--target", "y", "--out", model_out,
                 "--algorithm", algorithm, "--json"],
                check=True, capture_output=True, text=True)
            return json.loads(out.stdout)["auc"]
        return run

    def sklearn_logistic():
        pre = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
        ])
        model = make_pipeline(pre, LogisticRegression(C=1.0, max_iter=1000)).fit(x_train, y_train)
        return roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])

    def lightgbm():
        xt, xs = x_train.copy(), x_test.copy()
        for c in categorical:
            xt[c] = xt[c].astype("category")
            xs[c] = pd.Categorical(xs[c], categories=xt[c].cat.categories)
        model = lgb.LGBMClassifier(verbose=-1).fit(xt, y_train)
        return roc_auc_score(y_test, model.predict_proba(xs)[:, 1])

    rows = [("leadscore train --algorithm logistic",) + timed(a.n, leadscore("logistic")),
            ("scikit-learn LogisticRegression",) + timed(a.n, sklearn_logistic),
            ("leadscore train --algorithm gbdt",) + timed(a.n, leadscore("gbdt")),
            ("LightGBM (defaults)",) + timed(a.n, lightgbm)]
    print(f"bank-full without duration: {len(train)} train / {len(test)} test rows, seed {a.seed}, median of {a.n}")
    print(f"{'model':40s} {'test AUC':>9s} {'wall':>8s}")
    for name, auc, seconds in rows:
        print(f"{name:40s} {auc:9.4f} {seconds:7.2f}s")
    print(f"leadscore logistic - scikit-learn logistic: {rows[0][1] - rows[1][1]:+.4f} AUC")
    print(f"leadscore gbdt - LightGBM: {rows[2][1] - rows[3][1]:+.4f} AUC, wall time ratio {rows[3][2] / rows[2][2]:.2f}x")


if __name__ == "__main__":
    main()
