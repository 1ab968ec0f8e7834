#!/usr/bin/env bash
# Install Debian's Prometheus (it ships promtool) when it is missing. Tests need the real
# server: they backfill history with promtool and query it through the PromQL engine.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
echo "installing Debian's prometheus package (prometheus + promtool)"
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || {
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends prometheus
}
# The package's service is not wanted: tests and the demo start their own servers.
if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    $SUDO systemctl disable --now prometheus || true
fi
command -v promtool >/dev/null || { echo "error: promtool missing after install" >&2; exit 1; }
