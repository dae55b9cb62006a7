#!/usr/bin/env bash
# Make this machine ready for deployer's main job and tests (Debian/Ubuntu, as root or
# with sudo): install what is missing (Docker engine, docker-compose, debootstrap, a local
# registry, wrk, haproxy, nginx, npm for Azurite, prometheus for the alert rules, chromium for the dashboard's picture), start dockerd if it is not running, and build the local
# base image.
# Idempotent: re-running changes nothing on a ready machine.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v wrk >/dev/null || need+=(wrk)
command -v haproxy >/dev/null || need+=(haproxy)
command -v nginx >/dev/null || need+=(nginx-light)
# promtool and a real Prometheus: the rendered alert rules (tests/alerting)
command -v promtool >/dev/null || need+=(prometheus)
# headless chromium: `deployer dashboard preview --png` (tests/alerting)
command -v chromium >/dev/null || need+=(chromium)
# Azurite (Microsoft's Azure Storage emulator, the az:// tests) installs with npm
command -v npm >/dev/null || need+=(npm)
# the SageMaker SDK's local mode runs `docker compose` (v2) or else `docker-compose`
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 \
  || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd"
  $sudo sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/dockerd.log" >&2; exit 1; }
fi

$sudo scripts/base-image.sh "${DEPLOYER_BASE_IMAGE:-deployer-base:bookworm-py311}"
