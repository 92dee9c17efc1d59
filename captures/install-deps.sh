#!/usr/bin/env bash
# Install the Debian packages that captures/record.sh, record-tunnels.sh and record-nflog.sh
# need (run as root). The lists live in the scripts (need_packages) so they
# cannot drift; packages already installed are left alone, so re-running is harmless.
# Package maintainer scripts are kept from starting the daemons system-wide:
# record.sh starts each one itself, inside its own network namespace.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mapfile -t pkgs < <({ bash "$here/record.sh" --print-packages
                      bash "$here/record-tunnels.sh" --print-packages
                      bash "$here/record-nflog.sh" --print-packages; } | sort -u)
export DEBIAN_FRONTEND=noninteractive
added_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    added_policy=1
fi
trap '[ -n "$added_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update
apt-get install -y --no-install-recommends "${pkgs[@]}"
