# gpufleet: `make run` runs the main job on the embedded default; `make test` is what CI runs.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
DB ?= gpufleet.duckdb
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
DEBIAN_PACKAGES := $(shell grep -v '^\#' deploy/debian-packages.txt 2>/dev/null)

.PHONY: install system-deps run lint typecheck pytest test bench images

# torch is pinned first: the CPU build on disk satisfies the probes extra without a multi-GB download.
install:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[all,test]' --config-settings editable_mode=strict

system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

run: install
	gpufleet up --db $(DB)

lint:
	ruff check .

typecheck:
	mypy

pytest:
	$(PYTHON) -m pytest

test: install system-deps lint typecheck pytest

bench: install
	$(PYTHON) benchmarks/run_all.py

# The chart's two images; needs a container engine (docker or podman via DOCKER=podman).
DOCKER ?= docker
images:
	$(DOCKER) build -f deploy/images/gpufleet.Dockerfile -t ghcr.io/gpufleet/gpufleet:$(VERSION) .
	$(DOCKER) build -f deploy/images/probes.Dockerfile -t ghcr.io/gpufleet/gpufleet-probes:$(VERSION) .
