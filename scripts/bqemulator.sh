#!/usr/bin/env bash
# A local BigQuery for the tests, in a venv of its own (.cache/bqemulator-venv): the bqemulator
# package on DuckDB, and google-cloud-bigquery to read rows back. None of this is a dependency
# of Tagless itself. bqemulator runs DuckDB's `INSTALL spatial` at start, which would download;
# the spatial extension the duckdb-extension-spatial package ships is copied to where DuckDB
# looks instead (under the HOME the tests give the emulator: the venv's own home/).
# Idempotent (a stamp newer than this script); `make test` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.cache/bqemulator-venv
stamp=$venv/.installed
pins=(bqemulator==1.4.0 duckdb==1.5.5 duckdb-extension-spatial==1.5.5 numpy
      "google-cloud-bigquery>=3.20,<4")

if [ -f "$stamp" ] && [ "$stamp" -nt "$0" ]; then
  exit 0
fi
py=${PY:-python3.11}
command -v "$py" >/dev/null || py=python3
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "${pins[@]}"

"$venv/bin/python" - "$venv/home" <<'PY'
"""Copy the packaged spatial extension to <home>/.duckdb/extensions/<version>/<platform>/."""
import os
import shutil
import sys

import duckdb
import duckdb_extension_spatial

version = "v" + duckdb.__version__
platform = duckdb.execute("PRAGMA platform").fetchone()[0]
source = os.path.join(
    os.path.dirname(duckdb_extension_spatial.__file__),
    "extensions", version, "spatial.duckdb_extension",
)
target = os.path.join(sys.argv[1], ".duckdb", "extensions", version, platform)
os.makedirs(target, exist_ok=True)
shutil.copy(source, target)
print(f"bqemulator: spatial extension for DuckDB {version} ({platform}) in {target}")
PY
touch "$stamp"
