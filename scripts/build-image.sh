#!/usr/bin/env bash
# Build the operator image <repository>:<crate version> (and :dev) from a
# statically linked x86_64-unknown-linux-musl release binary. The binary is
# built here, outside Docker (no base image can be pulled), and copied into a
# build context that holds nothing else. <repository> is the chart's default,
# `image.repository` in charts/job-template-run/values.yaml (one source of
# truth: what `make image` builds is what `helm install` pulls); IMAGE=name
# overrides it.
#
#   bash scripts/build-image.sh            # build the binary and the image
#   SKIP_CARGO=1 bash scripts/build-image.sh  # reuse the last binary
#   bash scripts/build-image.sh --push REGISTRY
#       # tag the built <repository>:<version> as
#       # REGISTRY/job-template-run:<version> and push it (make push);
#       # DRY_RUN=1 prints the docker commands instead of running them
#
# Progress goes to stderr; the last stdout line is the image reference.
set -euo pipefail

TARGET="x86_64-unknown-linux-musl"
BIN="job-template-run"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { echo "[build-image] $*" >&2; }
die() { echo "[build-image] ERROR: $*" >&2; exit 1; }

VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"
[[ -n "$VERSION" ]] || die "cannot read the crate version from Cargo.toml"

# image.repository of the chart's values.yaml: the `repository:` line of the
# top-level `image:` map.
VALUES="charts/job-template-run/values.yaml"
REPOSITORY="$(awk '/^image:/ { in_image = 1; next }
  in_image && /^[^ #]/ { exit }
  in_image && $1 == "repository:" { print $2; exit }' "$VALUES")"
[[ -n "$REPOSITORY" ]] || die "cannot read image.repository from $VALUES"
IMAGE="${IMAGE:-$REPOSITORY}"

if [[ "${1:-}" == "--push" ]]; then
  REGISTRY="${2:-}"
  REGISTRY="${REGISTRY%/}"
  [[ -n "$REGISTRY" ]] || { echo "make push: REGISTRY is empty; say where to push, e.g. make push REGISTRY=ghcr.io/my-org" >&2; exit 2; }
  SOURCE="$IMAGE:$VERSION"
  TARGET_REF="$REGISTRY/${IMAGE##*/}:$VERSION"
  run() {
    if [[ "${DRY_RUN:-0}" == "1" ]]; then echo "$*"; else log "$*"; "$@" >&2; fi
  }
  if [[ "${DRY_RUN:-0}" != "1" ]]; then
    docker image inspect "$SOURCE" >/dev/null 2>&1 || die "image $SOURCE is not built: run make image first"
  fi
  run docker tag "$SOURCE" "$TARGET_REF"
  run docker push "$TARGET_REF"
  [[ "${DRY_RUN:-0}" == "1" ]] || echo "$TARGET_REF"
  exit 0
fi

if [[ "${SKIP_CARGO:-0}" != "1" ]]; then
  if ! rustup target list --installed | grep -qx "$TARGET"; then
    log "rustup target add $TARGET"
    rustup target add "$TARGET" >&2
  fi
  # ring compiles C; for musl that needs musl-gcc.
  if ! command -v musl-gcc >/dev/null 2>&1; then
    [[ $(id -u) -eq 0 ]] || die "musl-gcc is missing: apt-get install musl-tools (needs root)"
    log "installing musl-tools with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq musl-tools >/tmp/build-image-apt.log 2>&1 \
      || { apt-get update -qq >>/tmp/build-image-apt.log 2>&1 \
           && apt-get install -y -qq musl-tools >>/tmp/build-image-apt.log 2>&1; } \
      || { tail -5 /tmp/build-image-apt.log >&2; die "apt-get install musl-tools failed"; }
  fi
  log "cargo build --release --locked --target $TARGET --bin $BIN"
  start=$(date +%s)
  CC_x86_64_unknown_linux_musl=musl-gcc \
    cargo build --release --locked --target "$TARGET" --bin "$BIN" >&2
  log "cargo build took $(( $(date +%s) - start )) s"
fi

BINARY="${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/release/$BIN"
[[ -x "$BINARY" ]] || die "$BINARY is missing; run without SKIP_CARGO=1"
if command -v file >/dev/null 2>&1; then
  file "$BINARY" | grep -q "statically linked\|static-pie linked" \
    || die "$BINARY is not statically linked: $(file -b "$BINARY")"
fi

CONTEXT="${ROOT}/target/image-context"
rm -rf "$CONTEXT"
mkdir -p "$CONTEXT"
cp "$BINARY" "$CONTEXT/$BIN"
chmod 0555 "$CONTEXT/$BIN"
cp Dockerfile .dockerignore "$CONTEXT/"
log "binary: $(du -h "$CONTEXT/$BIN" | cut -f1)"

if ! docker info >/dev/null 2>&1; then
  [[ -f scripts/ensure-docker.sh ]] || die "docker is not running and scripts/ensure-docker.sh is missing"
  bash scripts/ensure-docker.sh >&2
fi

REVISION="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
log "docker build -t $IMAGE:$VERSION -t $IMAGE:dev"
docker build \
  --build-arg "VERSION=$VERSION" \
  --build-arg "REVISION=$REVISION" \
  --build-arg "CREATED=$CREATED" \
  -t "$IMAGE:$VERSION" -t "$IMAGE:dev" \
  "$CONTEXT" >&2
log "image size: $(docker image inspect -f '{{.Size}}' "$IMAGE:dev" | awk '{ printf "%.1f MB", $1 / 1000000 }')"
echo "$IMAGE:$VERSION"
