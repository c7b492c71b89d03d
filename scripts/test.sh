#!/usr/bin/env bash
# Set up, then run the whole test suite against the local RabbitMQ broker and
# PostgreSQL server (see tests/conftest.py). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check gateway plugins tests conformance
.venv/bin/mypy gateway plugins
exec .venv/bin/python -m pytest "$@"
