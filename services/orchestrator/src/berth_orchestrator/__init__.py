"""berth-orchestrator: the manager role of swarm mode."""
