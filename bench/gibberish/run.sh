#!/usr/bin/env bash
# Measures the `gibberish` condition: its false-positive rate on real names (the held-out half of
# the first and last names of every locale of @faker-js/faker, which the trigram counts were not
# made from) and its detection rate on generated gibberish.
#
#   bench/gibberish/run.sh           measure
#   bench/gibberish/run.sh --train   first remake crates/core/data/name_trigrams.txt and the
#                                    samples in crates/core/tests/data/ (then measure)
#
# Needs node with npm (it installs @faker-js/faker in a temporary directory) and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
FAKER_VERSION=10.6.0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm init -y >/dev/null && npm install --no-save --silent "@faker-js/faker@$FAKER_VERSION")
# An ES module resolves its imports from its own directory, so the script runs from there.
cp bench/gibberish/names.mjs "$work/"
(cd "$work" && node names.mjs) >"$work/names.tsv"
echo "$(wc -l <"$work/names.tsv") names from @faker-js/faker $FAKER_VERSION"

python3 bench/gibberish/build.py "$work/names.tsv" "$work" ${1:+"$1"}
cargo run --quiet --release -p leadscore-core --example gibberish_rates -- \
    "$work/held_out.txt" "$work/gibberish.txt" \
    crates/core/tests/data/real_names.txt crates/core/tests/data/gibberish.txt --show 20
