"""Dockyard's Kubernetes operator: CRD models, informers, work queue, reconcilers and the CLI."""

__version__ = "0.1.0.dev0"
