#!/usr/bin/env bash
# Install krew (the kubectl plugin manager) and krew's manifest validator,
# validate-krew-manifest, into ${JTR_CACHE_DIR:-$HOME/.cache/job-template-run}/bin,
# built from source with `go install` (only the Go module proxy is reachable,
# so no release tarball). Idempotent: binaries built from KREW_VERSION are
# kept. Progress goes to stderr; the last stdout line is the krew path (the
# validator sits beside it).
#
# krew runs as a standalone binary as well as `kubectl krew`: it reads
# KREW_ROOT (default ~/.krew) and `krew install --manifest=FILE --archive=FILE`
# installs a plugin from local files without the index or the network.
# Set KREW_NO_UPGRADE_CHECK=1 when running it: a build stamped with a release
# tag otherwise asks GitHub, now and then, for a newer krew.
set -euo pipefail

KREW_VERSION="v0.4.3"

CACHE_DIR="${JTR_CACHE_DIR:-$HOME/.cache/job-template-run}"
BIN_DIR="${CACHE_DIR}/bin"
KREW_BIN="${BIN_DIR}/krew"
VALIDATE_BIN="${BIN_DIR}/validate-krew-manifest"
module="sigs.k8s.io/krew"

log() { echo "[install-krew] $*" >&2; }
die() { echo "[install-krew] ERROR: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"

# The version of the krew module a binary was built from (its Go build info).
built_from() {
  command -v go >/dev/null 2>&1 || return 0
  go version -m "$1" 2>/dev/null | awk -v m="$module" '$1 == "mod" && $2 == m { print $3; exit }' || true
}

if [[ -x "$KREW_BIN" && -x "$VALIDATE_BIN" ]]; then
  have="$(built_from "$KREW_BIN")"
  have_validate="$(built_from "$VALIDATE_BIN")"
  if [[ "$have" == "$KREW_VERSION" && "$have_validate" == "$KREW_VERSION" ]]; then
    log "krew ${have} and validate-krew-manifest already installed"
    echo "$KREW_BIN"
    exit 0
  fi
  log "found krew '${have:-unknown}' and validate-krew-manifest '${have_validate:-unknown}' in ${BIN_DIR}, want ${KREW_VERSION}; rebuilding"
fi

command -v go >/dev/null 2>&1 || die "go is not installed (needed to build krew ${KREW_VERSION})"

# krew's own release build (hack/make-binaries.sh) stamps the tag, which
# `krew version` shows as GitTag; without it krew reports "unknown".
ldflags="-s -w -X ${module}/internal/version.gitTag=${KREW_VERSION}"

mkdir -p "$BIN_DIR"
log "building krew and validate-krew-manifest ${KREW_VERSION} with go install (about 1 min)"
start=$(date +%s)
(cd / && GOBIN="$BIN_DIR" CGO_ENABLED=0 \
  go install -trimpath -tags netgo -ldflags "$ldflags" \
    "${module}/cmd/krew@${KREW_VERSION}" "${module}/cmd/validate-krew-manifest@${KREW_VERSION}") >&2 \
  || die "go install ${module}/cmd/{krew,validate-krew-manifest}@${KREW_VERSION} failed"
log "built in $(( $(date +%s) - start )) s"

for bin in "$KREW_BIN" "$VALIDATE_BIN"; do
  [[ -x "$bin" ]] || die "binary missing after the build: $bin"
done
# `krew version` prepares a KREW_ROOT: give it a scratch one.
scratch="$(mktemp -d)"
trap 'rm -rf -- "$scratch"' EXIT
tag="$(KREW_ROOT="$scratch" KREW_NO_UPGRADE_CHECK=1 "$KREW_BIN" version 2>/dev/null | awk '$1 == "GitTag" { print $2 }')"
[[ "$tag" == "$KREW_VERSION" ]] || die "built krew reports GitTag '${tag}', expected ${KREW_VERSION}"
log "krew ${tag} and validate-krew-manifest installed"
echo "$KREW_BIN"
