"""berth's api-gateway: the Docker Engine REST API (dockerd's HTTP side) in front of the engine."""
