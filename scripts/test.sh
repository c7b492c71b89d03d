#!/usr/bin/env bash
# Set up, then run the whole test suite against the local RabbitMQ broker and
# PostgreSQL server (see tests/conftest.py). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check gateway plugins tests conformance
.venv/bin/mypy gateway plugins
# The layers: the model never imports the node, vendors only the adapter API
# and the model ([tool.importlinter] in pyproject.toml).
.venv/bin/lint-imports
# The fault tests (tests/test_faults.py) move 1,000 dossiers per scenario here
# to keep the run short; CPAS_FAULT_DOSSIERS=5000 gives the full figures.
export CPAS_FAULT_DOSSIERS="${CPAS_FAULT_DOSSIERS:-1000}"
exec .venv/bin/python -m pytest "$@"
