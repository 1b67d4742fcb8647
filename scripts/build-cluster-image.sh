#!/usr/bin/env bash
# Build the e2e cluster image job-template-run/kwok-cluster:v<Kubernetes version>
# (FROM scratch: busybox + Kubernetes/etcd/kwok binaries + kwok stages +
# e2e/cluster-image/entrypoint.sh). Skips the build when an image with this tag
# already carries the same content-hash label.
#
# Steps: ensure docker (scripts/ensure-docker.sh), ensure busybox-static,
# build/cache binaries (scripts/build-cluster-binaries.sh), assemble context,
# docker build.
set -euo pipefail

K8S_VERSION=1.35.4
IMAGE="job-template-run/kwok-cluster:v$K8S_VERSION"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SRC="$ROOT/e2e/cluster-image"
CACHE_DIR="${JTR_CACHE_DIR:-$HOME/.cache/job-template-run}/k8s-v$K8S_VERSION"
BIN_DIR="$CACHE_DIR/bin"
STAGES_FILE="$CACHE_DIR/kwok-stages.yaml"
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok kwokctl)

T0=$(date +%s)
log() { echo "[build-cluster-image +$(( $(date +%s) - T0 ))s] $*"; }
die() { echo "[build-cluster-image] ERROR: $*" >&2; exit 1; }

"$HERE/ensure-docker.sh" || die "docker is not available"

if [[ ! -x /bin/busybox ]] || ! /bin/busybox --list 2>/dev/null | grep -qx sh; then
  log "installing busybox-static with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq busybox-static; } >/tmp/build-cluster-image-apt.log 2>&1 \
    || { tail -5 /tmp/build-cluster-image-apt.log >&2; die "apt-get install busybox-static failed"; }
fi
# The image is FROM scratch: busybox must be statically linked.
if ldd /bin/busybox >/dev/null 2>&1; then   # ldd fails on static executables
  die "/bin/busybox is dynamically linked; install busybox-static (not busybox)"
fi

"$HERE/build-cluster-binaries.sh" || die "building the cluster binaries failed"

# Content hash over everything that goes into the image.
hash=$(
  {
    sha256sum "$SRC/Dockerfile" "$SRC/entrypoint.sh" "$STAGES_FILE" "$SRC/stages.yaml" "$HERE/build-cluster-image.sh" /bin/busybox | cut -d' ' -f1
    for b in "${BINARIES[@]}"; do sha256sum "$BIN_DIR/$b" | cut -d' ' -f1; done
    echo "$K8S_VERSION"
  } | sha256sum | cut -c1-32
) || die "hashing the image inputs failed"

current=$(docker image inspect -f '{{ index .Config.Labels "job-template-run.content-hash" }}' "$IMAGE" 2>/dev/null || true)
if [[ "$current" == "$hash" ]]; then
  log "warm: $IMAGE is up to date (content hash $hash), nothing to build"
  exit 0
fi
old_id=$(docker image inspect -f '{{ .Id }}' "$IMAGE" 2>/dev/null || true)
log "building $IMAGE (content hash $hash; existing: ${current:-none})"

CTX=$(mktemp -d "${TMPDIR:-/tmp}/kwok-cluster-image.XXXXXX")
trap 'rm -rf "$CTX"' EXIT
R="$CTX/rootfs"
mkdir -p "$R/bin" "$R/usr/local/bin" "$R/etc/kwok" "$R/etc/rancher/k3s" "$R/root" "$R/tmp" "$R/var/tmp" "$R/var/log/e2e"
chmod 1777 "$R/tmp" "$R/var/tmp"
chmod 700 "$R/root"
cp "$SRC/Dockerfile" "$CTX/Dockerfile"
cp "$SRC/entrypoint.sh" "$R/entrypoint.sh"; chmod 755 "$R/entrypoint.sh"
# kwokctl's default stages (cached), then the project's own (e2e/cluster-image/stages.yaml).
# Each of its Stages starts with `---`, so the comment at its top ends the last default's document.
cat "$STAGES_FILE" "$SRC/stages.yaml" > "$R/etc/kwok/kwok-stages.yaml"
cp /bin/busybox "$R/bin/busybox"
for applet in $(/bin/busybox --list); do
  [[ "$applet" == busybox ]] || ln -s busybox "$R/bin/$applet"
done
for b in "${BINARIES[@]}"; do
  ln "$BIN_DIR/$b" "$R/usr/local/bin/$b" 2>/dev/null || cp "$BIN_DIR/$b" "$R/usr/local/bin/$b"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$R/etc/passwd"
echo 'root:x:0:' > "$R/etc/group"
echo 'hosts: files dns' > "$R/etc/nsswitch.conf"

t=$(date +%s)
export DOCKER_BUILDKIT=0   # plain classic builder: FROM scratch + COPY, no buildx needed
docker build -q --build-arg "K8S_VERSION=$K8S_VERSION" --build-arg "CONTENT_HASH=$hash" \
    -t "$IMAGE" "$CTX" >"$CTX/build.log" 2>&1 \
  || { tail -20 "$CTX/build.log" >&2; die "docker build of $IMAGE failed"; }
new_id=$(docker image inspect -f '{{ .Id }}' "$IMAGE")
if [[ -n "$old_id" && "$old_id" != "$new_id" ]]; then
  # Drop the superseded image (~450 MiB) unless a container still uses it.
  docker rmi "$old_id" >/dev/null 2>&1 && log "removed superseded image ${old_id#sha256:}" || true
fi
size=$(docker image inspect -f '{{ .Size }}' "$IMAGE")
log "built $IMAGE in $(( $(date +%s) - t ))s ($(( size / 1024 / 1024 )) MiB)"
