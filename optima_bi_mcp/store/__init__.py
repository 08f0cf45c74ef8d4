"""The ClickHouse store: one client factory, migrations, and the embedded lock."""

from optima_bi_mcp.store.client import Store, open_store
from optima_bi_mcp.store.migrations import migrate

__all__ = ["Store", "migrate", "open_store"]
