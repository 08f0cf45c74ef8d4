-- Where the CDC sink stands, per consumer group and topic partition: the next
-- offset it will read, the highest WAL LSN and the newest source commit time
-- it has applied. Written after each durable batch (before the offsets are
-- committed to Kafka), so a serving process that does not run the sink can
-- report the data's freshness (optima_bi_mcp.cdc.state.read_freshness).
CREATE TABLE IF NOT EXISTS cdc_sink_state (
    consumer_group String,
    topic String,
    partition UInt32,
    next_offset Int64,
    lsn UInt64,
    source_ts DateTime64(3, 'UTC'),
    applied_at DateTime64(3, 'UTC'),
    _version UInt64
) ENGINE = ReplacingMergeTree(_version)
ORDER BY (consumer_group, topic, partition);
