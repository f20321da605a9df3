#!/bin/sh
# Builds swarmsync's container image FROM scratch, offline: a static binary
# (CGO_ENABLED=0) and the host's CA bundle in a throw-away build context.
#
#   deploy/build.sh [TAG]        # default tag swarmsync:dev
#
# The engine is the standard Docker environment (DOCKER_HOST...). Set
# SWARMSYNC_VERSION to stamp the binary's version.
set -eu
tag=${1:-swarmsync:dev}
root=$(cd "$(dirname "$0")/.." && pwd)
ca=${SWARMSYNC_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$ca" ] || { echo "build.sh: no CA bundle at $ca (install ca-certificates or set SWARMSYNC_CA_BUNDLE)" >&2; exit 1; }
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
(cd "$root" && CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X main.version=${SWARMSYNC_VERSION:-dev}" \
  -o "$ctx/swarmsync" ./cmd/swarmsync)
cp "$ca" "$ctx/ca-certificates.crt"
cp "$root/deploy/Dockerfile" "$ctx/Dockerfile"
# The classic builder needs nothing but the engine for a scratch image.
if ! out=$(DOCKER_BUILDKIT=0 docker build -q -t "$tag" "$ctx" 2>&1); then
  echo "$out" >&2; exit 1
fi
echo "$tag"
