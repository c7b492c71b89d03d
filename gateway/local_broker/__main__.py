"""``python -m gateway.local_broker``: see :mod:`gateway.local_broker.cli`."""

import sys

from gateway.local_broker.cli import main

sys.exit(main())
