#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this one machine, beside the default node.
#
#   scripts/cluster.sh start     start cpasmq1..3@localhost (AMQP 5701-5703, management
#                                15701-15703), join them into one cluster, print the URLs
#   scripts/cluster.sh status    nodes, running members, quorum queues and their members
#   scripts/cluster.sh urls      the comma-separated list for CPAS_GATEWAY_AMQP_URL
#   scripts/cluster.sh ctl N …   rabbitmqctl against node N with the cluster's own cookie,
#                                e.g. `ctl 2 list_queues name type leader members`
#   scripts/cluster.sh stop      stop the nodes and remove their data
#
# Data, logs and the Erlang cookie live in var/cluster/ (git-ignored; set
# CPAS_CLUSTER_DIR to move it). The machine's default node is never touched.
# The work is done by gateway/federation/local_broker/, which the fault and TLS tests use as well.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
exec "$PYTHON" -m gateway.federation.local_broker --root "${CPAS_CLUSTER_DIR:-var/cluster}" "$@"
