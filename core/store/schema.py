"""DuckDB schema of the gpufleet store (documented in docs/schema.md)."""

from __future__ import annotations

__all__ = ["SCHEMA_VERSION", "DDL", "RAW_TABLES"]

SCHEMA_VERSION = 1

# Raw sample tables, newest data; rollups below summarise them.
RAW_TABLES = ("gauges", "counters", "histogram_buckets", "gpu_allocations")

DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    target VARCHAR NOT NULL,
    scrape_ts TIMESTAMP NOT NULL,
    samples INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    committed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (target, scrape_ts)
);
CREATE TABLE IF NOT EXISTS series (
    series_id BIGINT PRIMARY KEY,
    metric VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    target VARCHAR NOT NULL,
    labels JSON NOT NULL,
    source_metric VARCHAR NOT NULL,
    first_ts TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS series_state (
    series_id BIGINT NOT NULL,
    le DOUBLE NOT NULL,
    ts TIMESTAMP NOT NULL,
    value DOUBLE NOT NULL,
    PRIMARY KEY (series_id, le)
);
CREATE TABLE IF NOT EXISTS gauges (
    series_id BIGINT NOT NULL,
    ts TIMESTAMP NOT NULL,
    value DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    series_id BIGINT NOT NULL,
    ts TIMESTAMP NOT NULL,
    value DOUBLE NOT NULL,
    delta DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS histogram_buckets (
    series_id BIGINT NOT NULL,
    ts TIMESTAMP NOT NULL,
    le DOUBLE NOT NULL,
    value DOUBLE NOT NULL,
    delta DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    ts TIMESTAMP NOT NULL,
    target VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    cluster VARCHAR,
    node VARCHAR,
    gpu_uuid VARCHAR,
    code INTEGER,
    severity VARCHAR NOT NULL,
    failure_class VARCHAR,
    count DOUBLE NOT NULL,
    message VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS gpus (
    gpu_uuid VARCHAR PRIMARY KEY,
    cluster VARCHAR,
    node VARCHAR,
    gpu_index VARCHAR,
    gpu_model VARCHAR,
    mig_profile VARCHAR,
    first_ts TIMESTAMP NOT NULL,
    last_ts TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS nodes (
    node VARCHAR PRIMARY KEY,
    cluster VARCHAR,
    provider VARCHAR,
    region VARCHAR,
    instance_type VARCHAR,
    pricing_category VARCHAR,
    gpu_model VARCHAR,
    gpu_count INTEGER,
    first_ts TIMESTAMP NOT NULL,
    last_ts TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS namespaces (
    namespace VARCHAR PRIMARY KEY,
    team VARCHAR,
    first_ts TIMESTAMP NOT NULL,
    last_ts TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS gpu_allocations (
    ts TIMESTAMP NOT NULL,
    gpu_uuid VARCHAR NOT NULL,
    cluster VARCHAR,
    node VARCHAR,
    namespace VARCHAR,
    pod VARCHAR,
    container VARCHAR,
    share DOUBLE NOT NULL,
    interval_s DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS probe_results (
    ts TIMESTAMP NOT NULL,
    target VARCHAR NOT NULL,
    cluster VARCHAR,
    node VARCHAR,
    gpu_uuid VARCHAR,
    gpu_model VARCHAR,
    probe VARCHAR NOT NULL,
    value DOUBLE NOT NULL,
    unit VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS prices (
    provider VARCHAR NOT NULL,
    region VARCHAR NOT NULL,
    gpu_model VARCHAR NOT NULL,
    pricing_category VARCHAR NOT NULL,
    usd_per_gpu_hour DOUBLE NOT NULL,
    effective_from DATE NOT NULL,
    source VARCHAR NOT NULL,
    PRIMARY KEY (provider, region, gpu_model, pricing_category, effective_from)
);
CREATE TABLE IF NOT EXISTS gauges_1m (
    series_id BIGINT NOT NULL, ts TIMESTAMP NOT NULL,
    count BIGINT NOT NULL, sum DOUBLE NOT NULL, min DOUBLE NOT NULL, max DOUBLE NOT NULL, last DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS gauges_1h (
    series_id BIGINT NOT NULL, ts TIMESTAMP NOT NULL,
    count BIGINT NOT NULL, sum DOUBLE NOT NULL, min DOUBLE NOT NULL, max DOUBLE NOT NULL, last DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS counters_1m (
    series_id BIGINT NOT NULL, ts TIMESTAMP NOT NULL, delta DOUBLE NOT NULL, last DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS counters_1h (
    series_id BIGINT NOT NULL, ts TIMESTAMP NOT NULL, delta DOUBLE NOT NULL, last DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS histogram_buckets_1m (
    series_id BIGINT NOT NULL, ts TIMESTAMP NOT NULL, le DOUBLE NOT NULL, delta DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS histogram_buckets_1h (
    series_id BIGINT NOT NULL, ts TIMESTAMP NOT NULL, le DOUBLE NOT NULL, delta DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS gpu_allocations_1h (
    ts TIMESTAMP NOT NULL, gpu_uuid VARCHAR NOT NULL, cluster VARCHAR, node VARCHAR,
    namespace VARCHAR, pod VARCHAR, container VARCHAR, gpu_seconds DOUBLE NOT NULL
);
CREATE OR REPLACE VIEW series_labels AS
    SELECT series_id, metric, kind, target, source_metric,
           labels->>'cluster' AS cluster, labels->>'node' AS node, labels->>'gpu_uuid' AS gpu_uuid,
           labels->>'gpu' AS gpu, labels->>'gpu_model' AS gpu_model,
           labels->>'namespace' AS namespace, labels->>'pod' AS pod,
           labels->>'model' AS model, labels->>'engine' AS engine, labels->>'service' AS service,
           labels
    FROM series;
"""
