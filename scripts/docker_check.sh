#!/usr/bin/env bash
# Builds the Docker image (Dockerfile) and checks it: `vit --version`, and a 2-step training of
# the default configuration inside, as the image's non-root user, with Fashion-MNIST mounted
# read-only from the host; the runtime image must hold no compiler and no Python. Prints the build
# time and the image size.
#
# Not part of the test command: a build from scratch compiles vit in the image (about 25 minutes on
# 2 cores). Run it after changing the Dockerfile, setup.sh's package lists or the install rules.
# Works offline apart from Debian's package registry: it installs docker.io and debootstrap when
# missing, starts dockerd when no daemon answers, and makes the base image debian:bookworm-slim
# with debootstrap when there is none.
#
# Environment: VIT_IMAGE (default vitcpp:check), VIT_DOCKER_NO_CACHE=1 builds without the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
image="${VIT_IMAGE:-vitcpp:check}"
sudo=""
[[ "$(id -u)" -ne 0 ]] && sudo="sudo"

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
[[ -d /usr/share/datasets/fashion-mnist ]] || missing+=(dataset-fashion-mnist)
if ((${#missing[@]} > 0)); then
  echo "docker_check: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! docker info >/dev/null 2>&1; then
  echo "docker_check: starting dockerd (log: /tmp/vit-dockerd.log)"
  $sudo sh -c 'nohup dockerd >/tmp/vit-dockerd.log 2>&1 &'
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "docker_check: dockerd did not start; see /tmp/vit-dockerd.log" >&2; exit 1; }
fi

if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
  root="$(mktemp -d /tmp/vit-bookworm.XXXXXX)"
  echo "docker_check: making debian:bookworm-slim with debootstrap in $root"
  $sudo debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/tmp/vit-debootstrap.log
  $sudo tar -C "$root" -c . | docker import - debian:bookworm-slim
  $sudo rm -rf "$root"
fi

no_cache=()
[[ "${VIT_DOCKER_NO_CACHE:-0}" == 1 ]] && no_cache=(--no-cache)
start=$(date +%s)
docker build "${no_cache[@]}" -t "$image" .
build_seconds=$(($(date +%s) - start))

echo "docker_check: vit --version in the image"
docker run --rm "$image" --version
user_id="$(docker run --rm --entrypoint id "$image" -u)"
[[ "$user_id" != 0 ]] || { echo "docker_check: the image runs as root" >&2; exit 1; }
if docker run --rm --entrypoint sh "$image" -c 'command -v cc || command -v c++ || command -v python3'; then
  echo "docker_check: the runtime image holds a compiler or Python" >&2
  exit 1
fi
echo "docker_check: a 2-step training of the default configuration in the image"
docker run --rm -v /usr/share/datasets/fashion-mnist:/usr/share/datasets/fashion-mnist:ro "$image" \
  train --set train.max_steps=2 --output /home/vit/runs/check

size=$(docker image inspect -f '{{.Size}}' "$image")
echo "docker_check: passed; image $image $((size / 1000000)) MB, built in $((build_seconds / 60)) min $((build_seconds % 60)) s (uid $user_id)"
