# Shared by record.sh and record-tunnels.sh (sourced, not run): commands inside the two network
# namespaces $NS_S (servers) and $NS_C (clients), and their teardown. Each script names its own
# namespaces and builds its own veth pair (ns_up).

srv() { ip netns exec "$NS_S" "$@"; }
cli() { ip netns exec "$NS_C" "$@"; }

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
