#!/usr/bin/env bash
# System packages the test suite uses: real daemons and tools for the tests that build network
# namespaces (sshd on 443, tcpdump, ip), and tmux (the monitor's live view in an 80x24 pane). As
# root it installs them with apt-get; otherwise it only says what is missing (those tests then
# skip, with the reason, when not root).
set -uo pipefail
pkgs=(openssh-server openssh-client iproute2 tcpdump dnsutils procps tcpreplay ethtool tmux)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "tests/install-deps.sh: not root (or no apt-get); missing: ${missing[*]} (namespace tests will skip)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# Keep maintainer scripts from starting daemons system-wide: the tests start their own.
added=
if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; added=1; fi
apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
rc=$?
[ -n "$added" ] && rm -f /usr/sbin/policy-rc.d
exit $rc
