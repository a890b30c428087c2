"""Benchmarks against peers and baselines (see README.md)."""
