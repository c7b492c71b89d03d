"""``python -m gateway.federation.local_broker``: see :mod:`gateway.federation.local_broker.cli`."""

import sys

from gateway.federation.local_broker.cli import main

sys.exit(main())
