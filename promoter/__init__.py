"""promoter: event-driven GitOps promotion engine."""

__version__ = "0.1.0"
