"""Images: the facade over lifecycle's image store; commit, diff, export and history; prune;
tag rules."""
