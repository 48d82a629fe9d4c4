#!/usr/bin/env python3
"""`leadscore train` against scikit-learn's LogisticRegression, LightGBM and CatBoost on UCI Bank Marketing.

Usage (from the repository root): `bash bench/predict_vs_sklearn.sh [ARGS]` makes the virtualenv and runs this;
or by hand:
    python3 -m venv /tmp/predictenv
    /tmp/predictenv/bin/pip install scikit-learn lightgbm catboost pandas
    /tmp/predictenv/bin/python bench/predict_vs_sklearn.py [--data ../shared/data/bank-full.csv] [--seed 7] [-n 3]
    /tmp/predictenv/bin/python bench/predict_vs_sklearn.py --seeds 1,2,3,4,5,7,11,13,17,19 [-n 1]

A stratified 80/20 split of bank-full without `duration` (it is known only after the call and
leaks the outcome), made here with scikit-learn's train_test_split and written as two CSV files,
so that every contender trains and tests on the same rows. Each fit is timed as a whole (leadscore
as a process: reading the CSV, encoding, fitting, evaluating; the Python models from DataFrames
already in memory, preprocessing included), the median of n runs. Every contender uses the same
number of threads (--threads, default: all the machine's cores). Prints test AUC and wall time.

With --seeds, one split per seed and only the boosted trees (leadscore, LightGBM defaults, CatBoost
defaults): the AUC and wall time of each per seed, then their means.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import catboost
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


class Split:
    """One stratified split, as CSV files for leadscore and as DataFrames for the Python models."""

    def __init__(self, frame, seed, binary, threads):
        train, test = train_test_split(frame, test_size=0.2, stratify=frame["y"], random_state=seed)
        self.n_train, self.n_test = len(train), len(test)
        work = tempfile.mkdtemp(prefix="predict-bench-")
        self.train_csv, self.test_csv = os.path.join(work, "train.csv"), os.path.join(work, "test.csv")
        train.to_csv(self.train_csv, index=False)
        test.to_csv(self.test_csv, index=False)
        self.model_out = os.path.join(work, "model.json")
        self.y_train, self.y_test = (train["y"] == "yes").astype(int), (test["y"] == "yes").astype(int)
        self.x_train, self.x_test = train.drop(columns=["y"]), test.drop(columns=["y"])
        self.numeric = [c for c in self.x_train.columns if self.x_train[c].dtype.kind in "if"]
        self.categorical = [c for c in self.x_train.columns if c not in self.numeric]
        self.binary, self.threads = binary, threads

    def leadscore(self, algorithm):
        def run():
            env = dict(os.environ, RAYON_NUM_THREADS=str(self.threads))
            out = subprocess.run(
                [self.binary, "train", "--data", self.train_csv, "--test-data", self.test_csv, "--target", "y",
                 "--out", self.model_out, "--algorithm", algorithm, "--json"],
                check=True, capture_output=True, text=True, env=env)
            return json.loads(out.stdout)["auc"]
        return run

    def sklearn_logistic(self):
        pre = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), self.numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), self.categorical),
        ])
        model = make_pipeline(pre, LogisticRegression(C=1.0, max_iter=1000)).fit(self.x_train, self.y_train)
        return roc_auc_score(self.y_test, model.predict_proba(self.x_test)[:, 1])

    def lightgbm(self):
        xt, xs = self.x_train.copy(), self.x_test.copy()
        for c in self.categorical:
            xt[c] = xt[c].astype("category")
            xs[c] = pd.Categorical(xs[c], categories=xt[c].cat.categories)
        model = lgb.LGBMClassifier(verbose=-1, n_jobs=self.threads).fit(xt, self.y_train)
        return roc_auc_score(self.y_test, model.predict_proba(xs)[:, 1])

    def catboost(self):
        model = catboost.CatBoostClassifier(verbose=False, thread_count=self.threads, allow_writing_files=False)
        model.fit(self.x_train, self.y_train, cat_features=self.categorical)
        return roc_auc_score(self.y_test, model.predict_proba(self.x_test)[:, 1])


def one_split(frame, a, binary):
    s = Split(frame, a.seed, binary, a.threads)
    rows = [("leadscore train --algorithm logistic",) + timed(a.n, s.leadscore("logistic")),
            ("scikit-learn LogisticRegression",) + timed(a.n, s.sklearn_logistic),
            ("leadscore train --algorithm gbdt",) + timed(a.n, s.leadscore("gbdt")),
            ("LightGBM (defaults)",) + timed(a.n, s.lightgbm),
            ("CatBoost (defaults)",) + timed(a.catboost_n or a.n, s.catboost)]
    print(f"bank-full without duration: {s.n_train} train / {s.n_test} test rows, seed {a.seed}, median of {a.n}, "
          f"{a.threads} threads")
    print(f"{'model':40s} {'test AUC':>9s} {'wall':>8s}")
    for name, auc, seconds in rows:
        print(f"{name:40s} {auc:9.4f} {seconds:7.2f}s")
    print(f"leadscore logistic - scikit-learn logistic: {rows[0][1] - rows[1][1]:+.4f} AUC")
    print(f"leadscore gbdt - LightGBM: {rows[2][1] - rows[3][1]:+.4f} AUC, wall time ratio {rows[3][2] / rows[2][2]:.2f}x")
    print(f"leadscore gbdt - CatBoost: {rows[2][1] - rows[4][1]:+.4f} AUC, wall time ratio {rows[4][2] / rows[2][2]:.2f}x")


def many_splits(frame, a, binary):
    names = ["leadscore gbdt", "LightGBM", "CatBoost"]
    skip = set(a.skip.split(",")) if a.skip else set()
    print(f"bank-full without duration, one split per seed, median of {a.n}, {a.threads} threads")
    print(f"{'seed':>4s} " + " ".join(f"{n + ' AUC':>17s} {'wall':>7s}" for n in names))
    results = {n: [] for n in names}
    for seed in a.seeds:
        s = Split(frame, seed, binary, a.threads)
        fits = {"leadscore gbdt": s.leadscore("gbdt"), "LightGBM": s.lightgbm, "CatBoost": s.catboost}
        cells = []
        for n in names:
            if n in skip:
                cells.append(f"{'-':>17s} {'-':>7s}")
                continue
            auc, seconds = timed(a.catboost_n or a.n if n == "CatBoost" else a.n, fits[n])
            results[n].append((auc, seconds))
            cells.append(f"{auc:17.4f} {seconds:6.2f}s")
        print(f"{seed:4d} " + " ".join(cells), flush=True)
    means = []
    for n in names:
        if results[n]:
            means.append(f"{statistics.mean(r[0] for r in results[n]):17.4f} "
                         f"{statistics.mean(r[1] for r in results[n]):6.2f}s")
        else:
            means.append(f"{'-':>17s} {'-':>7s}")
    print(f"{'mean':>4s} " + " ".join(means))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "bank-full.csv"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")],
                    help="comma-separated split seeds: the boosted trees only, per seed and on average")
    ap.add_argument("--skip", default="", help="with --seeds, contenders to leave out (comma-separated: "
                    "'leadscore gbdt', LightGBM, CatBoost)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("-n", type=int, default=3)
    ap.add_argument("--catboost-n", type=int, help="runs of CatBoost, when fewer than -n (it is slow)")
    a = ap.parse_args()

    frame = pd.read_csv(a.data).drop(columns=["duration"])
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "leadscore"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "leadscore")
    if a.seeds:
        many_splits(frame, a, binary)
    else:
        one_split(frame, a, binary)


if __name__ == "__main__":
    main()
