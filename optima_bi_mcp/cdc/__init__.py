"""Change data capture: Debezium change events from Kafka into the store."""
