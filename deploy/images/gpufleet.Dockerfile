# ghcr.io/gpufleet/gpufleet: the exporter, collector, dashboard and reports (every workload of the Helm chart
# but the probes). Build from the repository root:
#   docker build -f deploy/images/gpufleet.Dockerfile -t ghcr.io/gpufleet/gpufleet:0.1.0 .
# NVML is not in the image: the NVIDIA container runtime mounts the driver's libnvidia-ml into a container
# that asks for the "utility" capability.

FROM python:3.12-slim-bookworm AS wheel
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.12-slim-bookworm
ARG EXTRAS=app,otel,k8s,forecast
COPY --from=wheel /wheels /wheels
RUN set -eu; whl="$(ls /wheels/gpufleet-*.whl)"; \
    pip install --no-cache-dir "gpufleet[${EXTRAS}] @ file://${whl}"; \
    rm -rf /wheels; \
    useradd --uid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin gpufleet
ENV NVIDIA_DRIVER_CAPABILITIES=utility \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# The exporter DaemonSet runs as root (kubelet's pod-resources socket is root's); the rest run as this user.
USER 10001
EXPOSE 9400 8501
ENTRYPOINT ["gpufleet"]
CMD ["--help"]
