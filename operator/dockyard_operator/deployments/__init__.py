"""DockerDeployment: replicas of a DockerContainer template with rolling updates (decisions, rollout arithmetic,
revisions, the reconciler)."""
