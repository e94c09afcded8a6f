"""Dockyard's tunnel: the server embedded in the operator and the agent that runs on each Docker host."""
