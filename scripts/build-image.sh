#!/usr/bin/env bash
# Build the operator image job-template-run:<crate version> (and :dev) from a
# statically linked x86_64-unknown-linux-musl release binary. The binary is
# built here, outside Docker (no base image can be pulled), and copied into a
# build context that holds nothing else.
#
#   bash scripts/build-image.sh            # build the binary and the image
#   SKIP_CARGO=1 bash scripts/build-image.sh  # reuse the last binary
#
# Progress goes to stderr; the last stdout line is the image reference.
set -euo pipefail

TARGET="x86_64-unknown-linux-musl"
BIN="job-template-run"
IMAGE="${IMAGE:-job-template-run}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { echo "[build-image] $*" >&2; }
die() { echo "[build-image] ERROR: $*" >&2; exit 1; }

VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"
[[ -n "$VERSION" ]] || die "cannot read the crate version from Cargo.toml"

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
