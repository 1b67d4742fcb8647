#!/usr/bin/env bash
# Build the Kubernetes control-plane binaries, etcd and kwok/kwokctl from Go
# modules (no image registry or release-download host is needed) and cache them
# per machine, keyed by version:
#
#   ${JTR_CACHE_DIR:-$HOME/.cache/job-template-run}/k8s-v${K8S_VERSION}/bin/
#     kube-apiserver kube-controller-manager kube-scheduler kubectl etcd
#     kwok kwokctl
#   ${JTR_CACHE_DIR:-$HOME/.cache/job-template-run}/k8s-v${K8S_VERSION}/kwok-stages.yaml
#
# A warm run (every file present) does nothing. Cold: ~7 min for Kubernetes +
# etcd and ~1.5 min for kwok on 2 cores.
set -euo pipefail

K8S_VERSION=1.35.4
KWOK_VERSION=0.8.0
CACHE_ROOT="${JTR_CACHE_DIR:-$HOME/.cache/job-template-run}"
CACHE_DIR="$CACHE_ROOT/k8s-v$K8S_VERSION"
BIN_DIR="$CACHE_DIR/bin"
WRAP_DIR="$CACHE_DIR/wrapper"
STAGES_FILE="$CACHE_DIR/kwok-stages.yaml"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok kwokctl)

T0=$(date +%s)
log() { echo "[build-cluster-binaries +$(( $(date +%s) - T0 ))s] $*"; }
die() { echo "[build-cluster-binaries] ERROR: $*" >&2; exit 1; }

missing=()
for b in "${BINARIES[@]}"; do
  [[ -x "$BIN_DIR/$b" ]] || missing+=("$b")
done
if [[ ${#missing[@]} -eq 0 && -s "$STAGES_FILE" ]]; then
  log "warm: all binaries and the kwok stage config already cached in $CACHE_DIR"
  exit 0
fi

GO="${GO:-}"
if [[ -z "$GO" ]]; then
  if command -v go >/dev/null 2>&1; then GO=$(command -v go)
  elif [[ -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go
  else die "no Go toolchain found (need go >= 1.26 on PATH or at /usr/local/go/bin/go)"
  fi
fi
"$GO" version >/dev/null 2>&1 || die "Go toolchain $GO does not run"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false}" GOTOOLCHAIN=local
log "cold: missing [${missing[*]:-none}], using $("$GO" version)"
mkdir -p "$BIN_DIR" "$WRAP_DIR"

need() { # any of the named binaries missing?
  local b; for b in "$@"; do [[ -x "$BIN_DIR/$b" ]] || return 0; done; return 1
}

# --- Kubernetes + etcd ------------------------------------------------------
if need kube-apiserver kube-controller-manager kube-scheduler kubectl etcd; then
  t=$(date +%s)
  log "step 1/4: resolving k8s.io/kubernetes@v$K8S_VERSION module graph"
  gomod=$("$GO" mod download -json "k8s.io/kubernetes@v$K8S_VERSION" \
            | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p') \
    || die "go mod download k8s.io/kubernetes@v$K8S_VERSION failed"
  [[ -f "$gomod" ]] || die "could not locate go.mod of k8s.io/kubernetes@v$K8S_VERSION"
  staging=$(sed -n 's/^[[:space:]]*\(k8s\.io\/[A-Za-z0-9._-]*\) => \.\/staging\/.*/\1/p' "$gomod")
  n=$(wc -w <<<"$staging")
  [[ $n -ge 20 ]] || die "found only $n ./staging replaces in $gomod"
  staging_minor="0.${K8S_VERSION#1.}"   # 1.35.4 -> 0.35.4

  cd "$WRAP_DIR"
  {
    echo "module jtr.local/k8s-binaries"
    echo
    echo "go 1.25.0"
    echo
    echo "godebug default=go1.25"
    echo
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    echo
    for m in $staging; do echo "replace $m => $m v$staging_minor"; done
  } > go.mod
  cat > tools.go <<'GOEOF'
//go:build tools

// Package tools pins the main packages this wrapper module builds.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GOEOF
  rm -f go.sum
  log "step 1/4: go mod tidy ($n staging replaces at v$staging_minor)"
  "$GO" mod tidy >"$CACHE_DIR/tidy.log" 2>&1 \
    || { tail -20 "$CACHE_DIR/tidy.log" >&2; die "go mod tidy failed (see $CACHE_DIR/tidy.log)"; }
  etcd_v=$("$GO" list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3) \
    || die "go.etcd.io/etcd/server/v3 not in the module graph"
  log "step 1/4: done in $(( $(date +%s) - t ))s (etcd server $etcd_v)"

  k8s_minor=$(cut -d. -f2 <<<"$K8S_VERSION")
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$k8s_minor"
  t=$(date +%s)
  log "step 2/4: go build kube-apiserver kube-controller-manager kube-scheduler kubectl (cold ~6 min on 2 cores)"
  "$GO" build -p 2 -trimpath -ldflags "$ldflags" -o "$BIN_DIR/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler \
      k8s.io/kubernetes/cmd/kubectl >"$CACHE_DIR/build-k8s.log" 2>&1 \
    || { tail -30 "$CACHE_DIR/build-k8s.log" >&2; die "go build of Kubernetes v$K8S_VERSION failed (see $CACHE_DIR/build-k8s.log)"; }
  log "step 2/4: done in $(( $(date +%s) - t ))s"

  t=$(date +%s)
  log "step 3/4: go build etcd $etcd_v"
  "$GO" build -p 2 -trimpath -ldflags "-s -w" -o "$BIN_DIR/etcd" go.etcd.io/etcd/server/v3 \
      >"$CACHE_DIR/build-etcd.log" 2>&1 \
    || { tail -30 "$CACHE_DIR/build-etcd.log" >&2; die "go build of etcd $etcd_v failed (see $CACHE_DIR/build-etcd.log)"; }
  log "step 3/4: done in $(( $(date +%s) - t ))s"
  cd - >/dev/null
else
  log "step 1-3/4: Kubernetes and etcd binaries already cached"
fi

# --- kwok + kwokctl ---------------------------------------------------------
if need kwok kwokctl; then
  t=$(date +%s)
  log "step 4/4: go install sigs.k8s.io/kwok/cmd/{kwok,kwokctl}@v$KWOK_VERSION"
  GOBIN="$BIN_DIR" "$GO" install -p 2 -trimpath -ldflags "-s -w" \
      "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@v$KWOK_VERSION" \
      >"$CACHE_DIR/build-kwok.log" 2>&1 \
    || { tail -30 "$CACHE_DIR/build-kwok.log" >&2; die "go install of kwok v$KWOK_VERSION failed (see $CACHE_DIR/build-kwok.log)"; }
  log "step 4/4: done in $(( $(date +%s) - t ))s"
else
  log "step 4/4: kwok and kwokctl already cached"
fi

# --- kwok stages ------------------------------------------------------------
# kwokctl --config replaces its built-in stages when the file holds any Stage,
# so the file carries kwokctl's defaults for the binary runtime (node-initialize,
# node-heartbeat-with-lease, pod-ready, pod-complete, pod-delete; see
# pkg/kwokctl/runtime/cluster.go getDefault*Stages) plus the chaos stage
# pod-container-running-failed (label
# pod-container-running-failed.stage.kwok.x-k8s.io: "true" makes a Running pod Failed).
if [[ ! -s "$STAGES_FILE" ]]; then
  kwok_dir=$("$GO" mod download -json "sigs.k8s.io/kwok@v$KWOK_VERSION" \
              | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p') \
    || die "go mod download sigs.k8s.io/kwok@v$KWOK_VERSION failed"
  s="$kwok_dir/kustomize/stage"
  files=(
    "$s/node/fast/node-initialize.yaml"
    "$s/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml"
    "$s/pod/fast/pod-ready.yaml"
    "$s/pod/fast/pod-complete.yaml"
    "$s/pod/fast/pod-delete.yaml"
    "$s/pod/chaos/pod-container-running-failed.yaml"
  )
  {
    echo "# Generated by scripts/build-cluster-binaries.sh from sigs.k8s.io/kwok@v$KWOK_VERSION kustomize/stage."
    echo "apiVersion: config.kwok.x-k8s.io/v1alpha1"
    echo "kind: KwokctlConfiguration"
    echo "options: {}"
    for f in "${files[@]}"; do
      [[ -f "$f" ]] || die "kwok stage file missing: $f"
      echo "---"
      grep -v '^---[[:space:]]*$' "$f"
    done
  } > "$STAGES_FILE.tmp"
  mv "$STAGES_FILE.tmp" "$STAGES_FILE"
  log "wrote kwok stage config $STAGES_FILE (${#files[@]} stages)"
fi

for b in "${BINARIES[@]}"; do
  [[ -x "$BIN_DIR/$b" ]] || die "expected binary $BIN_DIR/$b was not produced"
done
log "done: binaries in $BIN_DIR ($(du -sh "$BIN_DIR" | cut -f1))"
