"""One settings class for the whole server, read from `OPTIMA_BI_*` variables."""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_store_dsn() -> str:
    """The embedded store under the user's data directory."""
    path = Path(platformdirs.user_data_dir("optima-bi")) / "store"
    return f"chdb://{path}"


class Settings(BaseSettings):
    """Settings of an Optima BI process.

    Every field is read from the environment variable of the same name in
    upper case with the `OPTIMA_BI_` prefix; command-line flags override them.

    - `OPTIMA_BI_STORE`: store DSN, `chdb:///path` (embedded) or
      `http(s)://user:password@host:port/database` (ClickHouse server).
      Default: an embedded store in the user's data directory.
    - `OPTIMA_BI_DATABASE`: ClickHouse database holding the tables (`optima`).
    - `OPTIMA_BI_QUERY_TIMEOUT_S`: per-query time limit in seconds (30).
    - `OPTIMA_BI_STORE_CONNECTIONS`: embedded engine connections that answer at the
      same time (0: one per core).
    - `OPTIMA_BI_REDIS_URL`: Redis for the shared L2 cache; unset means L1 only.
    - `OPTIMA_BI_L1_TTL_S` (60), `OPTIMA_BI_L1_MAX_ENTRIES` (10000),
      `OPTIMA_BI_L2_TTL_S` (300), `OPTIMA_BI_INVALIDATION_INTERVAL_MS` (500).
    - `OPTIMA_BI_REFRESH_MIN_ASKS` (2): after a change, answers asked at least this
      often within the L1 TTL are recomputed ahead of their next ask; 0 turns it off.
    - `OPTIMA_BI_KAFKA_BOOTSTRAP`: Kafka bootstrap servers (`127.0.0.1:19092`, infra/kafka).
    - `OPTIMA_BI_KAFKA_TOPIC_PREFIX`: Debezium topic prefix (`commerce`).
    - `OPTIMA_BI_KAFKA_GROUP`: the sink's consumer group (`optima-bi-sink`).
    - `OPTIMA_BI_DLQ_TOPIC`: dead-letter topic (`optima-bi.dlq`).
    - `OPTIMA_BI_SINK_BATCH_SIZE` (5000), `OPTIMA_BI_SINK_BATCH_MS` (200): a sink batch's
      most messages and longest time open; `OPTIMA_BI_SINK_BATCH_IDLE_MS` (5): it closes
      sooner, once a poll waits this long without finding more messages.
    - `OPTIMA_BI_ENVIRONMENT`: `production`, `stage` or `development` (`development`).
    - `OPTIMA_BI_ISSUER`: OIDC issuer URL; unset means no login (local only).
    - `OPTIMA_BI_CLIENT_ID` (`optima-bi`), `OPTIMA_BI_AUDIENCE` (`optima-bi`),
      `OPTIMA_BI_ROLE_CLAIM` (`optima_role`), `OPTIMA_BI_MERCHANT_CLAIM`
      (`optima_merchant_id`).
    - `OPTIMA_BI_TOKEN_DIR`: where tokens are kept (user's data directory).
    - `OPTIMA_BI_LOG_LEVEL` (`INFO`), `OPTIMA_BI_LOG_JSON` (false).
    """

    model_config = SettingsConfigDict(env_prefix="OPTIMA_BI_", extra="ignore")

    store: str = Field(default_factory=default_store_dsn)
    database: str = "optima"
    query_timeout_s: float = 30.0
    store_connections: int = Field(default=0, ge=0)

    redis_url: str | None = None
    l1_ttl_s: float = 60.0
    l1_max_entries: int = 10_000
    l2_ttl_s: float = 300.0
    invalidation_interval_ms: int = 500
    refresh_min_asks: int = 2

    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_topic_prefix: str = "commerce"
    kafka_group: str = "optima-bi-sink"
    dlq_topic: str = "optima-bi.dlq"
    sink_batch_size: int = 5000
    sink_batch_ms: int = 200
    sink_batch_idle_ms: int = 5

    environment: str = "development"
    issuer: str | None = None
    client_id: str = "optima-bi"
    audience: str = "optima-bi"
    role_claim: str = "optima_role"
    merchant_claim: str = "optima_merchant_id"
    token_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("optima-bi")) / "tokens"
    )

    log_level: str = "INFO"
    log_json: bool = False
