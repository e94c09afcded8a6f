# Dockyard — the commands people and CI run. `make help` lists them.
# Every target installs what it needs: system packages with apt-get (Debian 12), Python packages into .venv,
# and the Kubernetes binaries built once into ~/.cache/dockyard.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help system-deps venv binaries agent agent-image dev-up dev-down check test demo demo-jobs clean image cluster-up cluster-down demo-cluster cluster-binaries

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

system-deps: ## install missing system packages (docker.io, busybox-static, openssl, iproute2, iptables, debootstrap, qemu-user-static)
	@hack/install-system-deps

$(VENV_STAMP): pyproject.toml hack/constraints.txt
	@hack/install-system-deps --python-only
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -c hack/constraints.txt -e '.[dev]'
	@touch $@

venv: $(VENV_STAMP) ## create .venv with the project and its dev tools (pinned by hack/constraints.txt)

binaries: ## build (once) kube-apiserver, kube-controller-manager, kubectl and etcd into ~/.cache/dockyard
	@hack/build-binaries

# hack/build-agent keeps its own input hash per architecture (sources, build scripts, constraints): a call with
# nothing changed returns in a second, so the target always runs it.
agent: system-deps ## the single-file agent for linux/amd64 and linux/arm64, glibc >= 2.31 (dist/dockyard-agent-linux-*)
	@hack/build-agent

agent-image: agent ## the agent image for both architectures: dist/dockyard-agent-image.oci.tar (+ docker load tars)
	@$(PYTHON) hack/agent-image.py

dev-up: system-deps venv binaries ## start (or reuse) etcd, kube-apiserver, kube-controller-manager, a private dockerd
	@$(VENV)/bin/python hack/devenv.py up

dev-down: ## stop what dev-up started and remove .dev state
	@$(PYTHON) hack/devenv.py down

check: venv binaries ## ruff, mypy --strict, import contracts, kustomize renders
	@hack/check

cluster-binaries: ## build (once) what the single-node cluster needs: kubelet, kube-proxy, kube-scheduler, containerd, CoreDNS
	@hack/build-binaries --cluster

test: system-deps venv binaries cluster-binaries agent agent-image check ## run every test against real components (starts them as needed)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

demo: dev-up ## the main job: the operator, an agent over TLS, a DockerContainer and a DockerDeployment
	@hack/demo

image: dev-up ## build the dockyard-operator:dev and dockyard-agent:dev images into the dev dockerd (hack/build-images)
	@. .dev/env.sh && hack/build-images

cluster-up: cluster-binaries image agent ## a single-node cluster (kubelet, containerd, CoreDNS) in the dev dockerd; prints its kubeconfig
	@$(VENV)/bin/python hack/cluster.py up

cluster-down: ## stop the single-node cluster and the agent demo-cluster started
	@hack/cluster-down

demo-cluster: cluster-binaries image agent ## Dockyard installed for real: apply -k overlays/dev in the cluster, an agent joins, a Pod fetches
	@hack/demo-cluster

demo-jobs: demo ## after the demo: a DockerJob and a DockerCronJob on the demo host (suspended again at the end)
	@hack/demo-jobs

clean: dev-down ## remove the dev environment and the virtualenv (the binary cache stays)
	rm -rf $(VENV)
