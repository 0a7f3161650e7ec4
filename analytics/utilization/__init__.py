"""Allocated vs used GPU-hours, idle-allocation detection and GPU recommendations."""
