"""Result caching: L1 in process, L2 in Redis, invalidated by change."""
