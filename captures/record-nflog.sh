#!/usr/bin/env bash
# Record captures/nflog-http-dns.pcap: real traffic as Linux's netfilter log
# hands it to `tcpdump -i nflog:GROUP` (link type NFLOG, 239: a TLV header
# before each packet, no Ethernet), so the decoder reads real NFLOG bytes.
# Same set-up as record.sh (two network namespaces joined by one veth pair, no
# default route: nothing can leave the pair), its own names and subnet:
#
#   pn-srv  veth pn-s  10.82.0.1/24  fd82::1/64  (python3 http.server, dnsmasq,
#                                                 nftables log rules, tcpdump)
#   pn-cli  veth pn-c  10.82.0.2/24  fd82::2/64  (curl, dig)
#
# In pn-srv an nftables table logs every packet to or from TCP/80 and UDP/53
# (input and output hooks, so each packet once) to NFLOG group 5 with a prefix
# (an odd-length NFULA_PREFIX, so the TLV padding is exercised); tcpdump reads
# that group. HTTP over IPv4 and IPv6 (address families 2 and 10), DNS over UDP.
#
# Usage (root):  bash captures/record-nflog.sh
#                bash captures/record-nflog.sh --print-packages
# Idempotent: rebuilds the namespaces and overwrites the pcap.

set -euo pipefail

need_packages() {
    printf '%s\n' iproute2 iputils-ping tcpdump nftables python3 curl dnsmasq-base bind9-dnsutils
}

case "${1:-}" in
    --print-packages) need_packages; exit 0 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
esac

[ "$(id -u)" = 0 ] || { echo "record-nflog.sh: run as root" >&2; exit 2; }

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/nflog-http-dns.pcap
NS_S=pn-srv NS_C=pn-cli
SIP=10.82.0.1 CIP=10.82.0.2 SIP6=fd82::1 CIP6=fd82::2
GROUP=5
UA="portwatch-capture/1.0 (curl)"
WORK=
TCPDUMP_PID=

log() { printf '[record-nflog] %s\n' "$*" >&2; }
# shellcheck source=captures/netns.sh
. "$HERE/netns.sh"

cleanup() {
    local rc=$?
    [ -n "$TCPDUMP_PID" ] && kill -TERM "$TCPDUMP_PID" 2>/dev/null || true
    ns_down
    [ -n "$WORK" ] && rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT

wait_port() {   # wait_port tcp|udp PORT
    local flag=-ltnH
    [ "$1" = udp ] && flag=-lunH
    for _ in $(seq 100); do
        srv ss $flag "sport = :$2" | grep -q . && return 0
        sleep 0.1
    done
    log "nothing listens on $1/$2"; return 1
}

WORK=$(mktemp -d /tmp/pw-nflog.XXXXXX)
ns_pair pn-s pn-c

srv nft -f - <<EOF
table inet pwlog {
    chain in {
        type filter hook input priority 0; policy accept;
        tcp dport 80 log prefix "pw-http " group $GROUP
        udp dport 53 log prefix "pw-dns " group $GROUP
    }
    chain out {
        type filter hook output priority 0; policy accept;
        tcp sport 80 log prefix "pw-http " group $GROUP
        udp sport 53 log prefix "pw-dns " group $GROUP
    }
}
EOF

mkdir -p "$WORK/www"
echo "hello over nflog" >"$WORK/www/index.html"
srv python3 -m http.server --bind :: --directory "$WORK/www" 80 >>"$WORK/daemons.log" 2>&1 &
srv dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --no-poll --pid-file= \
    --bind-interfaces --listen-address="$SIP" --except-interface=lo \
    --local=/example.test/ --address=/www.example.test/10.82.0.80 \
    --address=/www.example.test/fd82::80 >>"$WORK/daemons.log" 2>&1 &
wait_port tcp 80 && wait_port udp 53

rm -f "$OUT"
srv tcpdump -i "nflog:$GROUP" -s 0 -U --immediate-mode -n -w "$OUT" 2>"$WORK/tcpdump.log" &
TCPDUMP_PID=$!
for _ in $(seq 50); do grep -q 'listening on' "$WORK/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
sleep 0.2

cli dig @"$SIP" +tries=1 +time=2 www.example.test A +short
cli dig @"$SIP" +tries=1 +time=2 www.example.test AAAA +short
cli curl -sS -A "$UA" "http://$SIP/"
cli curl -sS -A "$UA" -o /dev/null "http://[$SIP6]/index.html"

sleep 1     # let the last FIN/ACK land
kill -TERM "$TCPDUMP_PID" 2>/dev/null || true
wait "$TCPDUMP_PID" 2>/dev/null || true
TCPDUMP_PID=
log "wrote $OUT"
