#!/usr/bin/env bash
# Set up, then run the demo: two CPAS with two vendors exchange dossiers
# through the RabbitMQ broker at CPAS_GATEWAY_AMQP_URL (default: local guest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/cpas-gateway demo "$@"
