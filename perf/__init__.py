"""The performance harness: `python -m perf.bench [--quick]` (see perf/RESULTS.md)."""
