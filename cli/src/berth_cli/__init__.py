"""The `berth` command: runs an embedded nats-server and supervises the berth services."""
