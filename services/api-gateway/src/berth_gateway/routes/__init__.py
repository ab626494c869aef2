"""HTTP handlers, one module per area of the Docker API."""
