#!/usr/bin/env bash
# Checks the service against its OpenAPI document (GET /openapi.json) with Schemathesis, once per
# key scope: no 5xx, answers as documented, every request valid by the document accepted and every
# invalid one refused. Run by .ci/run after the tests (which build the binary); fails on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${TMPDIR:-/tmp}/leadscore-schemathesis-venv"
VERSION=4.32.5
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi

cargo build --quiet -p leadscore
# Seconds per scope (ingest, read, admin): about three minutes in all. The admin key reaches every
# operation; the others mostly check refusals and the routes of their scope.
if [ $# -eq 0 ]; then
  set -- 40 40 100
fi
exec "$VENV/bin/python" .ci/schemathesis.py target/debug/leadscore "$@"
