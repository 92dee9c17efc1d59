# Shared by record.sh, record-tunnels.sh and record-nflog.sh (sourced, not run): the two network
# namespaces $NS_S (servers, $SIP/$SIP6) and $NS_C (clients, $CIP/$CIP6) joined by one veth pair,
# commands inside them, and their teardown. Each script names its own namespaces, addresses and
# veth ends, so recordings can run side by side.

srv() { ip netns exec "$NS_S" "$@"; }
cli() { ip netns exec "$NS_C" "$@"; }

# ns_pair VETH_S VETH_C [wire]: fresh namespaces and the pair between them, IPv6 too when $SIP6 is
# set; no default route in either, so traffic can only cross the pair. "wire": segmentation
# offloads off, so tcpdump sees wire-sized segments rather than 64 KB TSO/GRO super-packets.
ns_pair() {
    local vs=$1 vc=$2 wire=${3:-} i
    ns_down
    ip netns add "$NS_S"
    ip netns add "$NS_C"
    ip link add "$vs" netns "$NS_S" type veth peer name "$vc" netns "$NS_C"
    srv ip link set lo up; cli ip link set lo up
    srv ip addr add "$SIP/24" dev "$vs"
    cli ip addr add "$CIP/24" dev "$vc"
    if [ -n "${SIP6:-}" ]; then
        srv ip -6 addr add "$SIP6/64" dev "$vs" nodad
        cli ip -6 addr add "$CIP6/64" dev "$vc" nodad
    fi
    if [ -n "$wire" ]; then
        if command -v ethtool >/dev/null; then
            srv ethtool -K "$vs" tso off gso off gro off >/dev/null 2>&1 || true
            cli ethtool -K "$vc" tso off gso off gro off >/dev/null 2>&1 || true
        else
            echo "ethtool missing: segmentation offloads stay on (packet sizes will be off)" >&2
        fi
    fi
    srv ip link set "$vs" up; cli ip link set "$vc" up
    for i in $(seq 50); do cli ping -c1 -W1 -q "$SIP" >/dev/null 2>&1 && break; sleep 0.1; done
    if [ -n "${SIP6:-}" ]; then
        for i in $(seq 50); do cli ping -6 -c1 -W1 -q "$SIP6" >/dev/null 2>&1 && break; sleep 0.1; done
    fi
}

ns_down() {
    local ns pid
    for ns in "$NS_S" "$NS_C"; do
        ip netns list 2>/dev/null | grep -qw "$ns" || continue
        # every process still inside one of our namespaces is ours
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
        sleep 0.3
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
}

# Stop every process in both namespaces (politely, then not), keeping the namespaces.
ns_reset() {
    local ns pid
    for ns in "$NS_S" "$NS_C"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    done
    for _ in $(seq 30); do
        [ -z "$(ip netns pids "$NS_S")$(ip netns pids "$NS_C")" ] && return 0
        sleep 0.1
    done
    for ns in "$NS_S" "$NS_C"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    done
    sleep 0.2
}
