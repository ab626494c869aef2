"""berth's wire types: every message that crosses a service boundary, and nothing else."""
