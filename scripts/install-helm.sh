#!/usr/bin/env bash
# Install helm into ${JTR_CACHE_DIR:-$HOME/.cache/job-template-run}/bin, built
# from source with `go install` (only the Go module proxy is reachable, so no
# release tarball). Idempotent: an existing helm of an accepted version is
# kept. Progress goes to stderr; the last stdout line is the helm path.
#
# The chart works with Helm 3 and Helm 4 alike, so an installed v4.3.2 is
# accepted too; HELM_VERSION is what gets built when neither is there.
set -euo pipefail

HELM_VERSION="v3.22.0"
HELM_ACCEPTED_VERSIONS=("${HELM_VERSION}" "v4.3.2")

CACHE_DIR="${JTR_CACHE_DIR:-$HOME/.cache/job-template-run}"
BIN_DIR="${CACHE_DIR}/bin"
HELM_BIN="${BIN_DIR}/helm"

log() { echo "[install-helm] $*" >&2; }
die() { echo "[install-helm] ERROR: $*" >&2; exit 1; }

installed_version() {
  "$HELM_BIN" version --template '{{.Version}}' 2>/dev/null || true
}

if [[ -x "$HELM_BIN" ]]; then
  have="$(installed_version)"
  for accepted in "${HELM_ACCEPTED_VERSIONS[@]}"; do
    if [[ "$have" == "$accepted" ]]; then
      log "helm ${have} already installed"
      echo "$HELM_BIN"
      exit 0
    fi
  done
  log "found helm '${have:-unknown}' at ${HELM_BIN}, want ${HELM_VERSION}; rebuilding"
fi

command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null 2>&1 || die "go is not installed (needed to build helm ${HELM_VERSION})"

major="${HELM_VERSION%%.*}"          # v3 or v4: part of the module path
module="helm.sh/helm/${major}"

# Without the ldflags of helm's Makefile, `go install` yields a helm that
# reports version "v3.22" and, for Helm 3, assumes Kubernetes v1.20 in
# `helm template`/`helm lint` (so `kubeVersion: ">=1.33.0-0"` charts would
# fail). Helm 4 reads the client-go version from the build info by itself.
log "resolving ${module}@${HELM_VERSION} via the Go module proxy"
gomod="$(cd / && GOFLAGS=-mod=mod go mod download -json "${module}@${HELM_VERSION}" \
  | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
[[ -f "$gomod" ]] || die "cannot download ${module}@${HELM_VERSION} from the Go module proxy"
ldflags="-s -w -X ${module}/internal/version.version=${HELM_VERSION}"
if [[ "$major" == "v3" ]]; then
  client_go="$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$gomod")"  # e.g. v0.37.0
  [[ "$client_go" =~ ^v0\.([0-9]+)\. ]] || die "cannot find the k8s.io/client-go version in $gomod"
  k8s_minor="${BASH_REMATCH[1]}"
  for pkg in pkg/chartutil pkg/lint/rules; do
    ldflags+=" -X ${module}/${pkg}.k8sVersionMajor=1 -X ${module}/${pkg}.k8sVersionMinor=${k8s_minor}"
  done
  log "default Kubernetes version for helm template/lint: v1.${k8s_minor}.0 (client-go ${client_go})"
fi

mkdir -p "$BIN_DIR"
log "building helm ${HELM_VERSION} with go install (about 2 min)"
start=$(date +%s)
(cd / && GOBIN="$BIN_DIR" CGO_ENABLED=0 \
  go install -trimpath -ldflags "$ldflags" "${module}/cmd/helm@${HELM_VERSION}") >&2 \
  || die "go install ${module}/cmd/helm@${HELM_VERSION} failed"
log "built in $(( $(date +%s) - start )) s"

[[ -x "$HELM_BIN" ]] || die "helm binary missing after the build: $HELM_BIN"
have="$(installed_version)"
[[ "$have" == "$HELM_VERSION" ]] || die "built helm reports version '${have}', expected ${HELM_VERSION}"
log "helm ${have} installed"
echo "$HELM_BIN"
