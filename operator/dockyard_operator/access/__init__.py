"""Day-2 access to DockerContainers (logs, exec, port-forward, stats) through the aggregated API
`subresources.dockyard.dev`: kube-apiserver authenticates the user, the operator authorizes with a
SubjectAccessReview and reaches the container through the host's existing connection."""
