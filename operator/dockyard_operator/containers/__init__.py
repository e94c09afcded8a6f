"""The DockerContainer reconciler's pure domain logic: no I/O, no Docker or Kubernetes clients.

Modules: :mod:`labels` (identity label keys), :mod:`desired` (spec + resolved Secrets/ConfigMaps -> the Docker
create request, files to copy and the spec hash), :mod:`drift` (desired vs. ``GET /containers/{id}/json``),
:mod:`observing` (inspect -> observed state and phase), :mod:`conditions` (Kubernetes conditions bookkeeping) and
:mod:`errors`.
"""
