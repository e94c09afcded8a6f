"""Docker hosts: one live connection per DockerHost, its heartbeat, its Docker events, and its status."""
