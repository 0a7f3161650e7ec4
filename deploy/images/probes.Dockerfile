# ghcr.io/gpufleet/gpufleet-probes: the probe suite (PyTorch with its CUDA and NCCL wheels) for the chart's
# CronJob. Build from the repository root:
#   docker build -f deploy/images/probes.Dockerfile -t ghcr.io/gpufleet/gpufleet-probes:0.1.0 .
# The CUDA driver comes from the node through the NVIDIA container runtime ("compute,utility").

FROM python:3.12-slim-bookworm AS wheel
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.12-slim-bookworm
COPY --from=wheel /wheels /wheels
RUN set -eu; whl="$(ls /wheels/gpufleet-*.whl)"; \
    pip install --no-cache-dir "gpufleet[probes] @ file://${whl}"; \
    rm -rf /wheels; \
    useradd --uid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin gpufleet
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# The CronJob runs as root to write the node's probe results directory.
USER 10001
ENTRYPOINT ["gpufleet"]
CMD ["probe", "run", "--help"]
