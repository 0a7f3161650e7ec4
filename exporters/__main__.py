"""``python -m gpufleet.exporters``: run the node exporter (same flags as ``gpufleet exporter``)."""

import sys

from gpufleet.exporters.cli import main

sys.exit(main())
