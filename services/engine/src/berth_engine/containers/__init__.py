"""Containers: records and their store, the container commands (create, start, stop, exec,
pause, rename, prune, ...), what a record becomes for the agent (taskspec) and for the client
(views)."""
