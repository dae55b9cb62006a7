#!/usr/bin/env bash
# Build a python:3.11-slim-class base image without any container registry:
# debootstrap a minimal Debian bookworm with python3 and venv, trim docs and locales,
# and import it into the local Docker engine. Cached by tag: re-running is a no-op.
#
#   scripts/base-image.sh [TAG]        (default deployer-base:bookworm-py311; needs root)
set -euo pipefail
tag=${1:-deployer-base:bookworm-py311}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if docker image inspect "$tag" >/dev/null 2>&1 && [ -z "${REBUILD:-}" ]; then
  echo "base image $tag already present"
  exit 0
fi
root=$(mktemp -d /var/tmp/deployer-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "debootstrap bookworm into $root (about a minute)"
debootstrap --variant=minbase --include=python3,python3-venv bookworm "$root" "$mirror" >/dev/null
# What slim images leave out: package caches, docs (copyright notices kept), man pages, locales.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
       "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
# Standard-library parts only interactive help and code migration use.
rm -rf "$root"/usr/lib/python3.*/lib2to3 "$root"/usr/lib/python3.*/pydoc_data
find "$root"/usr/share/doc -type f ! -name copyright -delete
find "$root"/usr/share/doc -type d -empty -delete
tar -C "$root" -c . | docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["python3"]' - "$tag" >/dev/null
docker image inspect "$tag" --format "built $tag: {{.Size}} bytes"
