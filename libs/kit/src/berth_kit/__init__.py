"""The small service kit every berth service uses: NATS, RPC dispatch, tracing, shutdown."""
