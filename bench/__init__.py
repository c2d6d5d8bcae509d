"""Benchmarks: every figure is a ratio to a baseline measured in the same run.

Method and current figures: docs/performance.md. Run ``python -m bench.run --mode smoke``.
"""
