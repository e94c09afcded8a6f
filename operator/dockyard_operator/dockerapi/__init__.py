"""The operator's only door to aiodocker: one small client per Docker host, errors mapped to ours."""
