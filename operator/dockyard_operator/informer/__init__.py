"""Informers: list then watch one resource, keep a store of the latest objects, tell handlers what changed."""
