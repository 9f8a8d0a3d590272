#!/usr/bin/env bash
# Local base images for machines that reach no image registry (deploy/README.md,
# "Building without a registry"). Each image is built only if missing (--force rebuilds):
#
#   carinho-local/debian:bookworm   debootstrap --variant=minbase + docker import
#   carinho-local/python:3.11       Debian's python3.11 + python3-venv  (BASE_IMAGE of deploy/Dockerfile)
#   carinho-local/postgres:15       Debian's PostgreSQL 15, the official image's interface
#   carinho-local/redis:7           Debian's redis-server
#
# The official images (python:3.11-slim, postgres:16, redis:7) stay the defaults of the
# Dockerfile and the compose file; these replace them only where they cannot be pulled.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
force=false
[[ "${1:-}" == "--force" ]] && force=true
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

have() { ! $force && docker image inspect "$1" >/dev/null 2>&1; }

if ! have carinho-local/debian:bookworm; then
  command -v debootstrap >/dev/null || { echo "debootstrap is required (apt-get install debootstrap)" >&2; exit 1; }
  root="$(mktemp -d /tmp/carinho-debootstrap.XXXXXX)"
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$root.log" 2>&1 \
    || { tail -20 "$root.log" >&2; exit 1; }
  rm -f "$root.log"
  # apt inside the builds: the security and updates suites too, as the official images have
  cat >"$root/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb ${MIRROR%/debian}/debian-security bookworm-security main
SOURCES
  # no package caches, manuals or translations in a base image (as the official slim images)
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
  tar -C "$root" -c . | docker import - carinho-local/debian:bookworm >/dev/null
  rm -rf "$root"
  trap - EXIT
  echo "built carinho-local/debian:bookworm"
fi

for image in python:3.11 postgres:15 redis:7; do
  name="${image%%:*}"
  if ! have "carinho-local/$image"; then
    DOCKER_BUILDKIT=0 docker build --force-rm --network host -q -t "carinho-local/$image" -f "$here/$name.Dockerfile" "$here" >/dev/null 2>"/tmp/carinho-local-$name.log" \
      || { cat "/tmp/carinho-local-$name.log" >&2; exit 1; }
    echo "built carinho-local/$image"
  fi
done
