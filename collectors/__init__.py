"""Collectors: exposition parser, adapters onto the canonical schema, and the ingest path."""
