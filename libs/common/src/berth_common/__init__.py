"""Helpers several berth packages share, written once: standard library only (the runtime
agent's shims and lifecycle's confined children import them), no wire types (those live in
berth_contracts), nothing that talks to NATS (berth_kit)."""
