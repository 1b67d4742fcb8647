#!/usr/bin/env bash
# make demo: the operator's main job on a local default. Starts the same
# cluster container as `make e2e` (building its image on first use), installs
# the CRDs, runs the operator, applies the seed README's echo example, and
# prints the resulting Job and the JobRun's status once it has finished.
#
#   KEEP=1 make demo    leaves the cluster and the operator running
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER_IMAGE=job-template-run/kwok-cluster:v1.35.4
NAME=job-template-run-demo
CACHE_DIR="${JTR_CACHE_DIR:-$HOME/.cache/job-template-run}"
KUBECTL="$CACHE_DIR/k8s-v1.35.4/bin/kubectl"
WORK=$(mktemp -d)
export KUBECONFIG="$WORK/kubeconfig"
OPERATOR_PID=""

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }
cleanup() {
  if [[ "${KEEP:-}" == 1 ]]; then
    step "Left running (KEEP=1): export KUBECONFIG=$KUBECONFIG; stop with: kill $OPERATOR_PID; docker rm -f $NAME"
    return
  fi
  [[ -n "$OPERATOR_PID" ]] && kill "$OPERATOR_PID" 2>/dev/null && wait "$OPERATOR_PID" 2>/dev/null
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

step "Docker"
bash "$ROOT/scripts/ensure-docker.sh"

step "Cluster image $CLUSTER_IMAGE (first use builds Kubernetes from its Go modules: about 6 minutes on 2 cores)"
bash "$ROOT/scripts/build-cluster-image.sh"

step "Operator binary"
(cd "$ROOT" && cargo build --bin job-template-run)

step "Starting the cluster container"
docker rm -f "$NAME" >/dev/null 2>&1 || true
docker run -d --name "$NAME" -p 127.0.0.1::6443 "$CLUSTER_IMAGE" server >/dev/null
for _ in $(seq 1 120); do
  docker logs "$NAME" 2>&1 | grep -q "Node controller sync successful" && break
  docker inspect -f '{{.State.Running}}' "$NAME" | grep -q true || { docker logs "$NAME" | tail -20; die "the cluster container stopped"; }
  sleep 1
done
docker logs "$NAME" 2>&1 | grep -q "Node controller sync successful" || die "the cluster was not ready within 120 s"
PORT=$(docker port "$NAME" 6443/tcp | grep -m1 '^127.0.0.1:' | cut -d: -f2)
docker cp "$NAME:/etc/rancher/k3s/k3s.yaml" "$KUBECONFIG" >/dev/null
sed -i "s#server: https://.*#server: https://127.0.0.1:$PORT#" "$KUBECONFIG"
"$KUBECTL" version 2>/dev/null | sed 's/^/    /'

step "Installing the CRDs (generated from the Rust types)"
"$KUBECTL" apply --server-side -f "$ROOT/charts/job-template-run/crds/"
for _ in $(seq 1 30); do  # `kubectl wait` errors out while a new CRD has no status yet
  "$KUBECTL" wait --for condition=Established --timeout=30s crd/jobtemplates.cellbytes.io crd/jobruns.cellbytes.io 2>/dev/null && break
  sleep 1
done

step "Running the operator"
HEALTH_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${CARGO_TARGET_DIR:-$ROOT/target}/debug/job-template-run" controller --listen "127.0.0.1:$HEALTH_PORT" --log-level info,kube=warn \
  2>"$WORK/operator.log" &
OPERATOR_PID=$!
for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$HEALTH_PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$HEALTH_PORT/readyz" >/dev/null || { cat "$WORK/operator.log"; die "the operator is not ready"; }
echo "    ready: http://127.0.0.1:$HEALTH_PORT/readyz (logs: $WORK/operator.log)"

step "Applying the seed's echo example"
"$KUBECTL" apply -f "$ROOT/examples/echo-job-template.yaml" -f "$ROOT/examples/echo-hello-world-job-run.yaml"

step "Waiting for the run to finish"
"$KUBECTL" wait --for=condition=Finished --timeout=120s jobrun/echo-hello-world-run
"$KUBECTL" get jobtemplates,jobruns,jobs

step "The Job the operator created"
"$KUBECTL" get job echo-hello-world-run -o yaml | sed -n '/^metadata:/,$p' \
  | grep -vE '^\s+(creationTimestamp|resourceVersion|uid|generation):' | sed '/^status:/,$d'

step "The JobRun's status"
"$KUBECTL" get jobrun echo-hello-world-run -o jsonpath='{.status}' | python3 -c 'import json,sys; json.dump(json.load(sys.stdin), sys.stdout, indent=2)'
echo
