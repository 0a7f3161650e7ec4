"""Map the top-level folders onto the ``gpufleet`` import package.

Each part of the system is a folder at the repository root (the layout is the architecture);
installed, they are subpackages of ``gpufleet``. ``cli/`` holds the package root itself.
"""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
PARTS = ["core", "exporters", "collectors", "probes", "analytics", "dashboards", "alerts"]

package_dir = {"gpufleet": "cli"}
packages = ["gpufleet"]
for part in PARTS:
    package_dir[f"gpufleet.{part}"] = part
    packages.append(f"gpufleet.{part}")
    for sub in find_packages(where=str(ROOT / part)):
        package_dir[f"gpufleet.{part}.{sub}"] = f"{part}/{sub.replace('.', '/')}"
        packages.append(f"gpufleet.{part}.{sub}")

setup(package_dir=package_dir, packages=packages)
