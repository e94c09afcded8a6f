"""DockerJob: attempts (DockerContainers) run to completion, as batch/v1 Job runs Pods."""
