"""DockerCronJob: DockerJobs started on a cron schedule, as batch/v1 CronJob starts Jobs."""
