"""berth-engine: dockerd's role. Container records, names, config merge, events, exits."""
