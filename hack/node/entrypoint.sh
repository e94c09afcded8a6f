#!/bin/bash
# PID 1 of the single-node cluster's node container (hack/node/Dockerfile). Starts etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, containerd (then imports the images hack/cluster.py put in /images),
# the kubelet and kube-proxy; logs go to /var/log/node/<name>.log. If any of them exits, the node stops (the
# cluster is broken and saying so beats limping). On SIGTERM it stops the kubelet, kills every Pod process and
# removes the Pods' cgroups, so nothing outlives the container on the machine.
# Certificates and kubeconfigs are mounted read-only at /etc/kubernetes/node (made by hack/cluster.py).
set -euo pipefail
k=/etc/kubernetes/node
logs=/var/log/node
mkdir -p "$logs" /var/lib/etcd /var/lib/kubelet /run/node
pids=()

say() { echo "node: $*"; }
start() { # name command...
  local name=$1; shift
  "$@" >"$logs/$name.log" 2>&1 &
  pids+=($!)
  echo $! >"/run/node/$name.pid"
  say "started $name (pid $!)"
}
wait_for() { # what seconds command...
  local what=$1 seconds=$2; shift 2
  for _ in $(seq $((seconds * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  say "$what did not come up in ${seconds}s; its log:"; tail -n 30 "$logs/$what.log" || true
  exit 1
}

stop_all() {
  say "stopping"
  for name in kubelet kube-proxy; do kill "$(cat "/run/node/$name.pid" 2>/dev/null)" 2>/dev/null || true; done
  sleep 1
  # Pod processes (their shims are our children, the Pods' processes the shims'): kill what is in kubepods.
  for f in $(find /sys/fs/cgroup/*/kubepods -name cgroup.procs 2>/dev/null); do
    xargs -r kill -9 <"$f" 2>/dev/null || true
  done
  kill "${pids[@]}" 2>/dev/null || true
  wait || true
  for _ in 1 2 3 4 5; do
    find /sys/fs/cgroup/*/kubepods -depth -type d -exec rmdir {} + 2>/dev/null || true
    [ -z "$(find /sys/fs/cgroup/*/kubepods -maxdepth 0 -type d 2>/dev/null)" ] && break
    sleep 0.5
  done
  exit 0
}
trap stop_all TERM INT

# Volume mounts (emptyDir, projected tokens) made by the kubelet must propagate into containers.
mount --make-rshared /
# Docker mounts /sys and the cgroup hierarchies read-only in a container that is not --privileged; the kubelet and
# runc create the Pods' cgroups (below this container's own: the cgroup namespace is private).
# Remounting those read-write is refused ("busy"); fresh mounts over them work, and in a private cgroup namespace
# a fresh mount's root is this container's cgroup.
mount -o remount,rw /sys
if ! grep -q ' cgroup ' /proc/self/mounts; then
  say "only cgroup v2 here: this node is written for the cgroup v1 machines it runs on (see docs/development.md)"
  exit 1
fi
cgroups=$(awk '$3 == "cgroup" {print $2 " " $4}' /proc/self/mounts)
mount -t tmpfs -o rw,nosuid,nodev,noexec,mode=755 cgroup /sys/fs/cgroup
while read -r path opts; do
  subsystems=$(echo "$opts" | tr ',' '\n' | grep -Ev '^(ro|rw|nosuid|nodev|noexec|relatime)$' | paste -sd,)
  mkdir -p "$path"
  mount -t cgroup -o "rw,nosuid,nodev,noexec,$subsystems" cgroup "$path"
done <<<"$cgroups"
node_ip=$(ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
say "node IP $node_ip"

start etcd etcd --name node --data-dir /var/lib/etcd --unsafe-no-fsync \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster node=http://127.0.0.1:2380
start kube-apiserver kube-apiserver --etcd-servers=http://127.0.0.1:2379 \
  --bind-address=0.0.0.0 --advertise-address="$node_ip" --secure-port=6443 \
  --tls-cert-file=$k/apiserver.crt --tls-private-key-file=$k/apiserver.key --client-ca-file=$k/ca.crt \
  --kubelet-client-certificate=$k/apiserver-kubelet-client.crt --kubelet-client-key=$k/apiserver-kubelet-client.key \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file=$k/sa.pub --service-account-signing-key-file=$k/sa.key \
  --api-audiences=https://kubernetes.default.svc.cluster.local \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --requestheader-client-ca-file=$k/front-proxy-ca.crt --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file=$k/front-proxy-client.crt --proxy-client-key-file=$k/front-proxy-client.key \
  --enable-aggregator-routing=true \
  --service-cluster-ip-range=10.96.0.0/16 --service-node-port-range=30000-32767 \
  --allow-privileged=false --profiling=false --v=1
wait_for kube-apiserver 90 curl -sfk --cacert $k/ca.crt --cert $k/admin.crt --key $k/admin.key https://127.0.0.1:6443/readyz
start kube-controller-manager kube-controller-manager --kubeconfig=$k/controller-manager.kubeconfig \
  --authentication-kubeconfig=$k/controller-manager.kubeconfig --authorization-kubeconfig=$k/controller-manager.kubeconfig \
  --bind-address=127.0.0.1 --service-account-private-key-file=$k/sa.key --root-ca-file=$k/ca.crt \
  --use-service-account-credentials=true --service-cluster-ip-range=10.96.0.0/16 --leader-elect=false \
  --profiling=false --v=1
start kube-scheduler kube-scheduler --kubeconfig=$k/scheduler.kubeconfig \
  --authentication-kubeconfig=$k/scheduler.kubeconfig --authorization-kubeconfig=$k/scheduler.kubeconfig \
  --bind-address=127.0.0.1 --leader-elect=false --profiling=false --v=1
start containerd containerd --config /etc/containerd/config.toml
wait_for containerd 30 ctr --address /run/containerd/containerd.sock version
for tar in /images/*.tar; do
  [ -e "$tar" ] || continue
  say "importing $(basename "$tar")"
  ctr --address /run/containerd/containerd.sock -n k8s.io images import --snapshotter overlayfs "$tar" >/dev/null
done
start kubelet kubelet --config=/etc/kubernetes/kubelet.yaml --kubeconfig=$k/kubelet.kubeconfig \
  --hostname-override=dockyard-node --node-ip="$node_ip" --v=1
start kube-proxy kube-proxy --config=/etc/kubernetes/kube-proxy.yaml --hostname-override=dockyard-node --v=1
say "ready"
# Any component exiting ends the node.
set +e
wait -n "${pids[@]}"
say "a component exited; see $logs"
stop_all
