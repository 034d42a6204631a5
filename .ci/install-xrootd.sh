#!/usr/bin/env bash
# Installs Debian's XRootD server with its HTTP plugin (XrdHttp), for the loopback integration tests
# (test/integration/xrootd.test.ts, started through scripts/xrootd-test-server.sh).
#
# Usage: bash .ci/install-xrootd.sh
#
# Installs, only when missing, with apt-get (non-interactive, --no-install-recommends):
#   xrootd-server          the xrootd daemon (/usr/bin/xrootd)
#   xrootd-server-plugins  libXrdHttp-5.so (the HTTP protocol plugin)
#   xrootd-plugins         client/security plugins the server loads
#   openssl                for the self-signed certificate of --tls
# Runs through sudo when not root (and fails with a message when sudo is not there).
# Prints what it did on stderr; exit status 0 when everything is installed afterwards.
# Environment: XRD_APT_UPDATE=0 skips `apt-get update` (e.g. when the caller just ran it).
set -euo pipefail

log() { printf 'install-xrootd: %s\n' "$*" >&2; }

pkg_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
  log "not a Debian/Ubuntu system (no apt-get/dpkg-query): install xrootd (>= 5, with libXrdHttp) yourself"
  exit 1
fi

wanted=(xrootd-server xrootd-server-plugins xrootd-plugins openssl)
missing=()
for p in "${wanted[@]}"; do
  if pkg_installed "$p"; then continue; fi
  # openssl may come from elsewhere (a binary on PATH is enough)
  if [ "$p" = openssl ] && command -v openssl >/dev/null 2>&1; then continue; fi
  missing+=("$p")
done

report() {
  for p in xrootd-server xrootd-server-plugins xrootd-plugins openssl; do
    if pkg_installed "$p"; then
      log "  $p $(dpkg-query -W -f='${Version}' "$p")"
    fi
  done
}

if [ ${#missing[@]} -eq 0 ]; then
  log "already installed, nothing to do:"
  report
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
  else
    log "not root and no sudo: cannot install ${missing[*]}"
    exit 1
  fi
fi

start=$(date +%s.%N)
export DEBIAN_FRONTEND=noninteractive
if [ "${XRD_APT_UPDATE:-1}" != 0 ]; then
  log "apt-get update"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
fi
log "installing: ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >&2
end=$(date +%s.%N)

for p in "${missing[@]}"; do
  if [ "$p" = openssl ] && command -v openssl >/dev/null 2>&1; then continue; fi
  pkg_installed "$p" || { log "FAILED: $p is still not installed"; exit 1; }
done
if ! command -v xrootd >/dev/null 2>&1; then
  log "FAILED: xrootd is not on PATH after the install"
  exit 1
fi
log "installed in $(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}') s:"
report
