"""Data in and out of the store: the demo dataset, backfill and verification."""
