"""DockerService: DockerContainers behind a Kubernetes Service, through the operator's data plane and the tunnel."""
