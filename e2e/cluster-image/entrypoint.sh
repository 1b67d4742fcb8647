#!/bin/sh
# Entrypoint of job-template-run/kwok-cluster: a k3s-compatible stand-in that runs
# a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler) plus kwok, which simulates the kubelet of one fake Node.
#
# The k3s container contract (what testcontainers-modules' K3s module relies on):
#   args        `server [flags...]`; unknown k3s flags (e.g. --snapshotter=native)
#               are ignored; `--disable-controller-manager` runs no
#               kube-controller-manager.
#   port        6443/tcp: kube-apiserver (TLS; cert SANs: 127.0.0.1, ::1,
#               localhost, kubernetes[.default[.svc[.cluster.local]]], container IPs).
#   kubeconfig  /etc/rancher/k3s/k3s.yaml (or $K3S_KUBECONFIG_OUTPUT), self-contained
#               (embedded certs), server https://127.0.0.1:6443, cluster/user/context
#               named "default" like k3s, mode $K3S_KUBECONFIG_MODE (default 600).
#   ready line  "Node controller sync successful" on stderr, printed once the API
#               answers /readyz, the fake Node is Ready and the `default`
#               ServiceAccount exists in namespace `default`.
#   pod logs    kwok's Logs and ClusterLogs (kwok.x-k8s.io/v1alpha1) are CRDs
#               that kwok watches (--enable-crds), so a test creates them at run
#               time to have `kubectl logs` served from a file in this container
#               (e2e/src/logs.rs; README.md here).
#   audit log   $AUDIT_LOG: the API server audits, at level Metadata, the requests
#               of ServiceAccounts only (the system components and the kubeconfig's
#               admin are not audited), so a client given a ServiceAccount token can
#               have its API calls counted from outside (`make bench` does).
# Anything else as the first argument is exec'd (e.g. `kubectl version --client`).
set -eu

BIN=/usr/local/bin
CLUSTER=kwok
NODE_NAME=${KWOK_CLUSTER_NODE_NAME:-kwok-node-0}
STAGES=/etc/kwok/kwok-stages.yaml
K3S_KUBECONFIG=${K3S_KUBECONFIG_OUTPUT:-/etc/rancher/k3s/k3s.yaml}
K3S_DIR=$(dirname "$K3S_KUBECONFIG")
export HOME=${HOME:-/root}
export KWOK_KUBECTL_BINARY=$BIN/kubectl
WORKDIR=$HOME/.kwok/clusters/$CLUSTER
KUBECONFIG=$WORKDIR/kubeconfig.yaml
export KUBECONFIG
AUDIT_POLICY=$HOME/audit-policy.yaml
AUDIT_LOG=$WORKDIR/logs/audit.log

# Entry point messages go to stderr (like k3s); component and kwokctl output go
# to stdout so that nothing but the real ready line can match on stderr.
log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) kwok-cluster: $*" >&2; }
fail() { log "FATAL: $*"; dump_logs; exit 1; }
dump_logs() {
  for f in "$WORKDIR"/logs/*.log; do
    [ -f "$f" ] || continue
    echo "===== last lines of $f ====="
    tail -n 30 "$f"
  done
}

if [ $# -gt 0 ]; then
  case "$1" in
    server) shift ;;
    -*) ;;
    *) exec "$@" ;;
  esac
fi

disable_kcm=false
for arg in "$@"; do
  case "$arg" in
    --disable-controller-manager|--disable-controller-manager=true) disable_kcm=true ;;
    --disable-controller-manager=false) disable_kcm=false ;;
    *) log "ignoring k3s argument: $arg" ;;
  esac
done

start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start ))s; }

# Audit ServiceAccounts' requests (metadata only), nobody else's: the cost
# stays near zero for the components and the tests' admin client.
cat > "$AUDIT_POLICY" <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
POLICY

set -- create cluster \
  --name "$CLUSTER" \
  --runtime binary \
  --kube-apiserver-port 6443 \
  --config "$STAGES" \
  --etcd-binary "$BIN/etcd" \
  --kube-apiserver-binary "$BIN/kube-apiserver" \
  --kube-controller-manager-binary "$BIN/kube-controller-manager" \
  --kube-scheduler-binary "$BIN/kube-scheduler" \
  --kwok-controller-binary "$BIN/kwok" \
  --kube-audit-policy "$AUDIT_POLICY" \
  --enable-crds Logs,ClusterLogs \
  --kubeconfig "$HOME/.kube/config"
if [ "$disable_kcm" = true ]; then
  set -- "$@" --disable kube-controller-manager
  log "starting kwok cluster (Kubernetes $KWOK_KUBE_VERSION) without kube-controller-manager"
else
  log "starting kwok cluster (Kubernetes $KWOK_KUBE_VERSION)"
fi
"$BIN/kwokctl" "$@" </dev/null 2>&1 || fail "kwokctl create cluster failed"
log "kwokctl create cluster finished after $(elapsed)"

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  limit=$1; what=$2; shift 2
  deadline=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out after ${limit}s waiting for $what"
    sleep 0.25
  done
}
kc() { "$BIN/kubectl" --request-timeout=10s "$@"; }

wait_for 120 "kube-apiserver /readyz" kc get --raw=/readyz

# The kubeconfig: self-contained, k3s-style server address.
mkdir -p "$K3S_DIR"
kc config view --raw --flatten --minify > "$K3S_DIR/.k3s.yaml.tmp" || fail "could not flatten kubeconfig"
# k3s names cluster, user and context "default"; kwokctl names them kwok-<name>.
sed -i -e 's#^\([[:space:]]*server:\).*#\1 https://127.0.0.1:6443#' \
       -e "s#\\([:] \\)kwok-$CLUSTER\$#\\1default#" "$K3S_DIR/.k3s.yaml.tmp"
chmod "${K3S_KUBECONFIG_MODE:-600}" "$K3S_DIR/.k3s.yaml.tmp" || fail "bad K3S_KUBECONFIG_MODE=${K3S_KUBECONFIG_MODE:-}"
mv -f "$K3S_DIR/.k3s.yaml.tmp" "$K3S_KUBECONFIG"
log "wrote kubeconfig $K3S_KUBECONFIG (mode ${K3S_KUBECONFIG_MODE:-600})"

# One fake Node that kwok manages (kwokctl's binary runtime runs kwok with
# --manage-all-nodes=true; the kwok.x-k8s.io/node=fake annotation also matches
# kwok's annotation selector). No kwok taint, so ordinary pods schedule onto it
# without tolerations. Capacity comes from kwok's
# node-initialize stage (cpu 1k, memory 1Ti, pods 1M).
kc apply -f - >/dev/null <<NODE || fail "could not create Node $NODE_NAME"
apiVersion: v1
kind: Node
metadata:
  name: $NODE_NAME
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: $NODE_NAME
    node-role.kubernetes.io/agent: ""
NODE
wait_for 60 "Node $NODE_NAME to become Ready" kc wait --for=condition=Ready "node/$NODE_NAME" --timeout=5s
if [ "$disable_kcm" = true ]; then
  # kube-apiserver's TaintNodesByCondition admission taints every new Node
  # node.kubernetes.io/not-ready:NoSchedule; the node lifecycle controller in
  # kube-controller-manager removes it once the Node is Ready. Without it, do so here.
  kc taint node "$NODE_NAME" node.kubernetes.io/not-ready:NoSchedule- >/dev/null 2>&1 || true
fi
node_untainted() {
  [ -z "$(kc get node "$NODE_NAME" -o 'jsonpath={.spec.taints}')" ]
}
wait_for 60 "Node $NODE_NAME to lose its taints" node_untainted

if [ "$disable_kcm" = true ]; then
  # No service-account controller without kube-controller-manager: create the
  # default ServiceAccount so that pods in namespace default are admitted.
  kc create serviceaccount default -n default >/dev/null 2>&1 || true
fi
wait_for 60 "ServiceAccount default/default" kc get serviceaccount default -n default

log "cluster ready after $(elapsed) (node $NODE_NAME, kube-controller-manager $([ "$disable_kcm" = true ] && echo disabled || echo running))"
echo "Node controller sync successful" >&2

# As a kubelet restarts a crashed static pod: kube-controller-manager and
# kube-scheduler exit when they lose their leader lease, which happens when
# etcd stalls on a slow disk for ~10 s (seen in CI while Docker removed the
# previous suite's container); they are started again with the same command line.
cmdline() { tr '\0' ' ' < "/proc/$(pidof "$1")/cmdline"; }
kcm_cmd=""
[ "$disable_kcm" = true ] || kcm_cmd=$(cmdline kube-controller-manager)
sched_cmd=$(cmdline kube-scheduler)
restart() { # restart NAME COMMAND
  (trap "" HUP; exec $2 >>"$WORKDIR/logs/$1.log" 2>&1) &
  log "$1 exited; started it again"
}

# Stay in the foreground: stream component logs (not the audit log) to
# stdout, exit when the API server dies, exit 0 on SIGTERM/SIGINT.
set --
for f in "$WORKDIR"/logs/*.log; do
  [ "$f" = "$AUDIT_LOG" ] || set -- "$@" "$f"
done
tail -n 0 -F "$@" 2>/dev/null &
tail_pid=$!
trap 'log "stopping"; kill "$tail_pid" 2>/dev/null; exit 0' TERM INT
while :; do
  sleep 5 &
  wait $! || true
  pidof kube-apiserver >/dev/null || fail "kube-apiserver exited"
  [ -z "$kcm_cmd" ] || pidof kube-controller-manager >/dev/null || restart kube-controller-manager "$kcm_cmd"
  pidof kube-scheduler >/dev/null || restart kube-scheduler "$sched_cmd"
done
