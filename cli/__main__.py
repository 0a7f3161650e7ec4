"""``python -m gpufleet``."""

from gpufleet.main import run

run()
