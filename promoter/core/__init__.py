"""The pure core: pipeline model, events, version selection, gates and the planner (no I/O)."""
