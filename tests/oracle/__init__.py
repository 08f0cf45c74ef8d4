"""Independent recomputation of the metrics on the PostgreSQL source (METRICS.md)."""
