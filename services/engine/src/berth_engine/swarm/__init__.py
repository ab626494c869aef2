"""Swarm mode on this node: the tasks the orchestrator gives it, run as containers."""
