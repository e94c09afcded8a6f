# The operator and agent images. Built by hack/build-images, which puts the project and its pinned dependencies,
# installed for Python 3.11, in site/ of the build context (no pip, compiler or network needed in here).
# BASE is any image with python3.11 on PATH: hack/build-images makes one from Debian's packages; elsewhere
# python:3.11-slim-bookworm does.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
COPY site /opt/dockyard/site
COPY agent-site /opt/dockyard-agent/site
# Bytecode now, since the root filesystem is read-only at run time.
# Exec form: the base made by hack/build-images has no shell.
RUN ["python3.11", "-m", "compileall", "-q", "/opt/dockyard/site", "/opt/dockyard-agent/site"]

FROM ${BASE} AS operator
COPY --from=build /opt/dockyard /opt/dockyard
ENV PYTHONPATH=/opt/dockyard/site PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Non-root (the distroless "nonroot" id); the Deployment also sets readOnlyRootFilesystem.
USER 65532:65532
ENTRYPOINT ["python3.11", "-m", "dockyard_operator"]
CMD ["--help"]

FROM ${BASE} AS agent
COPY --from=build /opt/dockyard-agent /opt/dockyard
ENV PYTHONPATH=/opt/dockyard/site PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# The agent needs the Docker socket: run it as a user that may read it (docs/agent.md), e.g. --group-add <docker gid>.
USER 65532:65532
ENTRYPOINT ["python3.11", "-m", "dockyard_tunnel.agent"]
CMD ["--help"]
