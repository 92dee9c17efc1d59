#!/usr/bin/env bash
# Record labelled captures of real tunnels, so a classifier can learn what an
# encrypted SSH or TLS stream carries from packet sizes, directions and timing.
# Same set-up as record.sh (two network namespaces joined by one veth pair, no
# default route: nothing can leave the pair), its own names and subnet so the
# two scripts never tread on each other:
#
#   pt-srv  veth pt-s  10.79.0.1/24  (sshd on 22 and 443, stunnel, and behind
#                                     them on pt-srv's loopback: nginx,
#                                     opensmtpd, dovecot; tcpdump)
#   pt-cli  veth pt-c  10.79.0.2/24  (ssh/scp/sftp, curl, swaks, stunnel
#                                     client, Xvfb + X clients)
#
# Usage (root):  bash captures/record-tunnels.sh [CLASS[:RUN] ...]   # default: every class, runs 1..RUNS
#                bash captures/record-tunnels.sh --list
#                bash captures/record-tunnels.sh --print-packages
# Environment:   RUNS=N (default 10)   TUNNELS_OUT=DIR (default captures/tunnels)
# Each run writes DIR/CLASS-rN.pcap and replaces that pcap's rows in
# DIR/labels.csv (one row per tunnel flow). Idempotent: every invocation
# rebuilds the namespaces and overwrites the pcaps it records.
#
# Debian 12 packages needed (captures/install-deps.sh installs them):
#   iproute2 iputils-ping tcpdump ethtool procps python3 openssl curl
#   openssh-server openssh-client xauth xvfb x11-apps xterm xfonts-base
#   stunnel4 nginx-light opensmtpd swaks dovecot-pop3d dovecot-imapd ed
#   vim-tiny util-linux passwd
#
# Side effects outside the namespaces, all undone on exit: a throwaway local
# user "pwtun" (no password, key login only) whose home is in the temp dir:
# the interactive shells, scp/sftp and X11 forwarding log in as it so nothing
# is written to /root (sshd runs xauth in the user's home for ssh -X).

set -euo pipefail

need_packages() {
    printf '%s\n' iproute2 iputils-ping tcpdump ethtool procps python3 openssl curl \
        openssh-server openssh-client xauth xvfb x11-apps xterm xfonts-base \
        stunnel4 nginx-light opensmtpd swaks dovecot-pop3d dovecot-imapd ed \
        vim-tiny util-linux passwd
}

CLASSES=(interactive forwarded-http forwarded-mail x11 bulk socks tls-pop3 tls-http)
RUNS=${RUNS:-10}

case "${1:-}" in
    --print-packages) need_packages; exit 0 ;;
    --list) printf '%s\n' "${CLASSES[@]}"; exit 0 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
esac

[ "$(id -u)" = 0 ] || { echo "record-tunnels.sh: run as root" >&2; exit 2; }

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${TUNNELS_OUT:-$HERE/tunnels}
NS_S=pt-srv NS_C=pt-cli
SIP=10.79.0.1 CIP=10.79.0.2
SNAPLEN=160
TUser=pwtun
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
UA="portwatch-capture/1.0 (curl)"
WORK=
TCPDUMP_PID=
FLOWS=()        # one detail string per tunnel connection of the current run, in order

log() { printf '[record-tunnels] %s\n' "$*" >&2; }
# shellcheck source=captures/netns.sh
. "$HERE/netns.sh"

# --- namespaces ---------------------------------------------------------

ns_up() { ns_pair pt-s pt-c wire; }

cleanup() {
    local rc=$?
    [ -n "$TCPDUMP_PID" ] && kill -TERM "$TCPDUMP_PID" 2>/dev/null || true
    ns_down
    if [ -n "$WORK" ] && [ -e "$WORK/created-user" ]; then userdel -f "$TUser" >/dev/null 2>&1 || true; fi
    [ -n "$WORK" ] && [ -z "${KEEP_WORK:-}" ] && rm -rf "$WORK"
    exit $rc
}

# --- helpers --------------------------------------------------------------

wait_port() {   # wait_port PORT [TRIES]: until something in pt-srv listens on tcp/PORT
    local port=$1 tries=${2:-100}
    for _ in $(seq "$tries"); do
        srv ss -ltnH "sport = :$port" | grep -q . && return 0
        sleep 0.1
    done
    log "nothing listens on tcp/$port"; return 1
}

wait_cli_port() {
    local port=$1 tries=${2:-100}
    for _ in $(seq "$tries"); do
        cli ss -ltnH "sport = :$port" | grep -q . && return 0
        sleep 0.1
    done
    log "nothing listens on tcp/$port in $NS_C"; return 1
}

bg_srv() { srv "$@" >>"$WORK/daemons.log" 2>&1 & }
bg_cli() { cli "$@" >>"$WORK/clients.log" 2>&1 & }

# cap_start PCAP PORT: tcpdump on the server side of the pair, tunnel port only
cap_start() {
    local pcap=$1 port=$2
    rm -f "$OUT/$pcap"
    srv tcpdump -i pt-s -Z root -s "$SNAPLEN" -U --immediate-mode -n -w "$OUT/$pcap" \
        tcp port "$port" 2>"$WORK/tcpdump.log" &
    TCPDUMP_PID=$!
    for _ in $(seq 50); do grep -q 'listening on' "$WORK/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
    sleep 0.2
}

cap_stop() {
    sleep 1
    kill -TERM "$TCPDUMP_PID" 2>/dev/null || true
    wait "$TCPDUMP_PID" 2>/dev/null || true
    TCPDUMP_PID=
    ns_reset
}

# pick LIST INDEX: the INDEX-th (1-based, cycling) word of LIST
pick() { local -a a=($1); echo "${a[$(( ($2 - 1) % ${#a[@]} ))]}"; }

# deterministic filler of exactly N bytes (printable, so HTML/mail bodies stay text)
filler() {  # filler N SEED
    "$PY" - "$1" "$2" <<'EOF'
import random, string, sys
n, seed = int(sys.argv[1]), sys.argv[2]
r = random.Random(seed)
words = ["tunnel", "packet", "port", "stream", "cipher", "session", "window", "channel",
         "server", "client", "record", "size", "timing", "direction", "label", "flow"]
out, size = [], 0
while size < n:
    line = " ".join(r.choice(words) for _ in range(r.randint(6, 14))) + "\n"
    out.append(line); size += len(line)
sys.stdout.write("".join(out)[:n])
EOF
}

human_size() { local n=$1; if [ "$n" -ge 1024 ]; then echo "$((n / 1024))k"; else echo "${n}"; fi; }

ensure_user() {
    if id "$TUser" >/dev/null 2>&1; then
        # never take over an account this run did not create (a killed run may leave one behind)
        log "user $TUser already exists; remove it (userdel -f $TUser) if a killed run left it"
        return 1
    fi
    useradd -M -d "$WORK/home" -s /bin/bash "$TUser"
    touch "$WORK/created-user"
    usermod -p '*' "$TUser"     # not locked ("!"), but no password: key login only
    mkdir -p "$WORK/home"
    cat >"$WORK/home/.bashrc" <<'EOF'
PS1='\u@tunnel:\w\$ '
export TERM=${TERM:-xterm}
EOF
    echo '. ~/.bashrc' >"$WORK/home/.profile"
    cat >"$WORK/home/notes.txt" <<'EOF'
Things that ride inside the tunnel:
- keystrokes, one small packet each
- web pages through ssh -L and ssh -D
- mail: SMTP, POP3, IMAP
- X11 drawing requests
- bulk copies (scp, sftp)
EOF
    filler 3000 notes >"$WORK/home/report.txt"
    chown -R "$TUser" "$WORK/home"
    chmod 755 "$WORK"
}

# --- SSH ------------------------------------------------------------------

OBSCURE_SUPPORTED=
ssh -G -o ObscureKeystrokeTiming=no localhost >/dev/null 2>&1 && OBSCURE_SUPPORTED=1 || true
SSH_VERSION=$(ssh -V 2>&1 | awk '{sub(/,$/, "", $1); print $1}')

sshd_start() {   # sshd_start PORT
    local d=$WORK/ssh
    if [ ! -f "$d/id_ed25519" ]; then
        mkdir -p "$d"
        ssh-keygen -q -t ed25519 -N '' -f "$d/host_ed25519" -C portwatch-host
        ssh-keygen -q -t ed25519 -N '' -f "$d/id_ed25519" -C portwatch-client
        cp "$d/id_ed25519.pub" "$d/authorized_keys"
        chmod 755 "$d"; chmod 644 "$d/authorized_keys"
        cat >"$d/sshd_config" <<EOF
HostKey $d/host_ed25519
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding yes
X11Forwarding yes
X11UseLocalhost yes
XAuthLocation /usr/bin/xauth
PrintMotd no
PrintLastLog no
PidFile none
Subsystem sftp internal-sftp
EOF
    fi
    mkdir -p /run/sshd
    bg_srv /usr/sbin/sshd -D -e -f "$d/sshd_config" -o "ListenAddress=$SIP" -o "Port=$1"
    wait_port "$1"
}

# cipher for SSH run N: the AEAD ciphers, and twice a CTR cipher with an ETM MAC
ssh_cipher() { pick "chacha20-poly1305@openssh.com aes128-gcm@openssh.com aes128-gcm@openssh.com chacha20-poly1305@openssh.com aes256-ctr aes256-gcm@openssh.com chacha20-poly1305@openssh.com aes128-gcm@openssh.com aes128-ctr chacha20-poly1305@openssh.com" "$1"; }
ssh_port() { pick "22 443" "$1"; }

# ssh_opts RUN: -c/-m arguments for the run's cipher, one per line
ssh_opts() {
    local c; c=$(ssh_cipher "$1")
    printf '%s\n' -c "$c"
    case $c in *-ctr) printf '%s\n' -o MACs=hmac-sha2-256-etm@openssh.com ;; esac
    return 0
}
cipher_label() {
    local c; c=$(ssh_cipher "$1")
    case $c in *-ctr) c="$c+hmac-sha2-256-etm@openssh.com" ;; esac
    echo "$c"
}

# ssh_cmd TOOL PORT RUN: the client command line (ssh|scp|sftp) for pt-cli
ssh_base() {
    printf '%s\n' -F /dev/null -i "$WORK/ssh/id_ed25519" \
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes \
        -o LogLevel=ERROR
}

ssh_cli() {   # ssh_cli PORT RUN [ssh args...]
    local port=$1 run=$2; shift 2
    local -a o; mapfile -t o < <(ssh_base; ssh_opts "$run")
    cli ssh "${o[@]}" -p "$port" "$@"
}

wait_forward() {   # wait_forward PORT: the ssh client listens on 127.0.0.1:PORT in pt-cli
    wait_cli_port "$1" 150
}

# --- label bookkeeping ----------------------------------------------------

LABEL_HEADER="pcap,client_port,server_port,class,run,carries,cipher,typing_delay_ms,obscure_keystroke_timing,detail"

# write_labels PCAP SERVER_PORT CLASS RUN CARRIES CIPHER DELAYS OBSCURE: one row per SYN in the
# pcap, matched in order with FLOWS (details); replaces the pcap's previous rows
write_labels() {
    local pcap=$1 sport=$2 class=$3 run=$4 carries=$5 cipher=$6 delays=$7 obscure=$8
    local -a ports
    mapfile -t ports < <(tcpdump -nr "$OUT/$pcap" "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn and dst port $sport" 2>/dev/null \
        | awk '{split($3, a, "."); p = a[length(a)]; if (!(p in seen)) { seen[p] = 1; print p }}')
    if [ ${#ports[@]} -ne ${#FLOWS[@]} ]; then
        log "$pcap: ${#ports[@]} tunnel connections captured, ${#FLOWS[@]} expected"
        return 1
    fi
    local f=$OUT/labels.csv tmp i
    tmp=$(mktemp "$OUT/.labels.XXXXXX")
    echo "$LABEL_HEADER" >"$tmp"
    [ -f "$f" ] && tail -n +2 "$f" | awk -F, -v p="$pcap" '$1 != p' >>"$tmp"
    for i in "${!ports[@]}"; do
        printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$pcap" "${ports[$i]}" "$sport" "$class" "$run" \
            "$carries" "$cipher" "$delays" "$obscure" "${FLOWS[$i]//,/;}" >>"$tmp"
    done
    { head -n1 "$tmp"; tail -n +2 "$tmp" | sort -t, -k1,1 -k2,2n; } >"$f"
    rm -f "$tmp"
}

# --- interactive ----------------------------------------------------------

write_ptydrive() {
    cat >"$WORK/ptydrive.py" <<'EOF'
"""Drive an interactive ssh session through a pty like a person would: one key at a time with
random gaps, the odd typo corrected with backspace, a pause to read each command's output.
usage: ptydrive.py SEED MIN_MS MAX_MS -- ssh ARGS..."""
import os, pty, random, re, select, sys, time

seed, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
argv = sys.argv[sys.argv.index("--") + 1:]
r = random.Random(seed)
PROMPT = re.compile(rb"@tunnel:[^\r\n]*\$ $")
rows, cols = r.choice([(24, 80), (40, 120), (50, 160)])
pid, fd = pty.fork()
if pid == 0:
    import fcntl, struct, termios
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    os.environ["TERM"] = "xterm"
    os.execvp(argv[0], argv)
buf = b""

def pump(timeout):
    global buf
    end = time.time() + timeout
    while True:
        left = end - time.time()
        if left <= 0:
            return
        rl, _, _ = select.select([fd], [], [], left)
        if not rl:
            return
        try:
            data = os.read(fd, 65536)
        except OSError:
            raise SystemExit("session closed")
        if not data:
            raise SystemExit("session closed")
        buf += data

def expect(pattern, timeout=20):
    global buf
    end = time.time() + timeout
    while time.time() < end:
        m = re.search(pattern, buf)
        if m:
            buf = buf[m.end():]
            return
        pump(0.05)
    raise SystemExit(f"timeout waiting for {pattern!r}; got {buf[-200:]!r}")

def gap():
    time.sleep(r.uniform(lo, hi) / 1000.0)

def key(b):
    os.write(fd, b)
    pump(0)

def type_text(s, typos=True):
    for ch in s:
        if typos and ch.isalpha() and r.random() < 0.03:
            key(r.choice("asdfghjkl").encode()); gap()
            key(b"\x7f"); gap()
        key(ch.encode()); gap()

def think():
    pump(r.uniform(0.4, 1.6))

def command(cmd):
    type_text(cmd)
    key(b"\r")
    expect(PROMPT)
    think()

def edit_vi():
    type_text("vi notes.txt"); key(b"\r")
    expect(rb"notes\.txt")
    pump(0.5)
    for k in ["G", "o"]:
        key(k.encode()); gap()
    type_text(r.choice(["- and the odd shell command", "- typed one key at a time",
                        "- all of it looks alike on the wire"]), typos=False)
    gap(); key(b"\x1b"); gap()
    for ch in ":wq":
        key(ch.encode()); gap()
    key(b"\r")
    expect(PROMPT); think()

def edit_ed():
    type_text("ed notes.txt"); key(b"\r"); expect(rb"\d+\r?\n")
    for line in ["$a", r.choice(["- edited with ed this time", "- ed is the standard editor"]), ".", "w", "q"]:
        type_text(line, typos=False); key(b"\r"); pump(0.2)
    expect(PROMPT); think()

POOL = ["ls -la", "cat notes.txt", "cat /etc/os-release", "uname -a", "df -h /", "ps aux | head -5",
        "wc -l report.txt", "grep -c tunnel report.txt", "head -20 report.txt", "date", "id",
        "echo $((6 * 7))", "ls /usr/bin | wc -l", "free -m"]
expect(PROMPT)
think()
steps = r.sample(POOL, 4) + [r.choice(["vi", "ed"]), "top -b -n 1 | head -15" if r.random() < 0.5 else "top -n 1"]
r.shuffle(steps)
for s in steps:
    if s == "vi":
        edit_vi()
    elif s == "ed":
        edit_ed()
    else:
        command(s)
type_text("exit"); key(b"\r")
try:
    pump(3)
except SystemExit:
    pass
_, status = os.waitpid(pid, 0)
print("steps:", "|".join(steps))
EOF
}

rec_interactive() {
    local run=$1 port cipher pcap lo hi obscure=unsupported
    port=$(ssh_port "$run"); cipher=$(cipher_label "$run"); pcap="interactive-r$run.pcap"
    local delays; delays=$(pick "80-300 60-180 150-400 80-300 100-250 50-150 120-350 70-220 200-500 90-260" "$run")
    lo=${delays%-*} hi=${delays#*-}
    local -a extra=()
    if [ -n "$OBSCURE_SUPPORTED" ]; then
        # OpenSSH >= 9.5: alternate runs with and without keystroke-timing obfuscation
        obscure=$(pick "no yes" "$run"); extra=(-o "ObscureKeystrokeTiming=$obscure")
    fi
    sshd_start "$port"; write_ptydrive
    local -a o; mapfile -t o < <(ssh_base; ssh_opts "$run")
    cap_start "$pcap" "$port"
    cli "$PY" "$WORK/ptydrive.py" "interactive-$run" "$lo" "$hi" -- \
        ssh "${o[@]}" "${extra[@]}" -tt -p "$port" "$TUser@$SIP" >"$WORK/pty-$run.log" 2>&1 \
        || { tail -5 "$WORK/pty-$run.log" >&2; cap_stop; return 1; }
    cap_stop
    FLOWS=("shell; $(grep '^steps:' "$WORK/pty-$run.log" | cut -d' ' -f2- | tr -d ',')")
    write_labels "$pcap" "$port" interactive "interactive-$run" shell "$cipher" "$delays" "$obscure"
}

# --- forwarded HTTP ---------------------------------------------------------

nginx_start() {   # nginx on pt-srv's loopback:80 serving $WORK/www
    mkdir -p "$WORK/nginx" "$WORK/www"; chmod 755 "$WORK" "$WORK/www"
    cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    default_type text/html;
    server {
        listen 127.0.0.1:80;
        root $WORK/www;
    }
}
EOF
    bg_srv nginx -c "$WORK/nginx/nginx.conf"
    wait_port 80
}

make_page() {   # make_page SIZE SEED -> prints the path
    local n=$1 p="page-$1-$2.html"
    [ -f "$WORK/www/$p" ] || { printf '<html><body><pre>\n'; filler "$((n > 40 ? n - 40 : 1))" "$2"; printf '</pre></body></html>\n'; } >"$WORK/www/$p"
    echo "/$p"
}

rec_forwarded-http() {
    local run=$1 port cipher pcap sizes mode
    port=$(ssh_port "$run"); cipher=$(cipher_label "$run"); pcap="forwarded-http-r$run.pcap"
    sizes=$(pick "1024,12288,61440 3072,30720 800,5120,20480,92160 153600 2048,2048,40960,8192 512,70000 4096,4096,4096 200000 1500,25000,3000 10240,10240,60000" "$run")
    mode=$(pick "separate keepalive separate keepalive separate keepalive separate keepalive separate parallel" "$run")
    # runs 7 and 9: a shell-less remote command beside the forward (ssh -L host 'sleep'), as people
    # often do, instead of -N: the connection then also has a session channel
    local -a session=(-N); [ "$run" = 7 ] || [ "$run" = 9 ] && session=()
    local -a cmd=(); [ ${#session[@]} -eq 0 ] && cmd=("sleep 60")
    sshd_start "$port"; nginx_start
    local -a urls=(); local s
    for s in ${sizes//,/ }; do urls+=("http://127.0.0.1:8080$(make_page "$s" "h$run")"); done
    cap_start "$pcap" "$port"
    ssh_cli "$port" "$run" "${session[@]}" -o ExitOnForwardFailure=yes -L 8080:127.0.0.1:80 "$TUser@$SIP" "${cmd[@]}" >>"$WORK/clients.log" 2>&1 &
    wait_forward 8080
    if [ "$mode" = keepalive ]; then
        local -a outs=(); for u in "${urls[@]}"; do outs+=(-o /dev/null); done
        cli curl -sS -A "$UA" "${urls[@]}" "${outs[@]}"
    elif [ "$mode" = parallel ]; then
        local -a outs=(); for u in "${urls[@]}"; do outs+=(-o /dev/null); done
        cli curl -sS -Z -A "$UA" "${urls[@]}" "${outs[@]}" 2>>"$WORK/clients.log"
    else
        for u in "${urls[@]}"; do cli curl -sS -A "$UA" "$u" -o /dev/null; sleep 0.5; done
    fi
    sleep 0.5
    cap_stop
    local list=""; for s in ${sizes//,/ }; do list+="$(human_size "$s")+"; done
    local with=""; [ ${#cmd[@]} -eq 0 ] || with=" (with a remote command)"
    FLOWS=("ssh -L to nginx$with; GET ${list%+} bytes; curl $mode")
    write_labels "$pcap" "$port" forwarded-http "forwarded-http-$run" http "$cipher" - -
}

# --- forwarded mail -------------------------------------------------------

mail_start() {   # opensmtpd on lo:25, dovecot on 127.0.0.1:110/143 with a few stored messages
    local d=$WORK/dovecot
    mkdir -p "$WORK/smtpd/maildir" "$d/run" "$d/mail/alice/new" "$d/mail/alice/cur" "$d/mail/alice/tmp"
    cat >"$WORK/smtpd/smtpd.conf" <<EOF
listen on lo port 25 hostname mx.example.test
action "local" maildir "$WORK/smtpd/maildir"
match from any for domain "example.test" action "local"
EOF
    chown "$TUser" "$WORK/smtpd/maildir"
    bg_srv smtpd -d -f "$WORK/smtpd/smtpd.conf"
    local i n
    for i in 1 2 3; do
        n=$(pick "1500 9000 26000" "$i")
        { printf 'From: bob@example.test\r\nTo: alice@example.test\r\nSubject: stored message %s\r\nDate: Thu, 01 Jan 2026 10:0%s:00 +0000\r\nMessage-ID: <m%s@example.test>\r\n\r\n' "$i" "$i" "$i"
          filler "$n" "mail$i"; } >"$d/mail/alice/new/170000000$i.M$i.tunnel"
    done
    chown -R nobody:nogroup "$d/mail"; chmod 755 "$WORK" "$d"
    echo "alice:{PLAIN}alice-secret::::::" >"$d/passwd"
    cat >"$d/dovecot.conf" <<EOF
protocols = imap pop3
listen = 127.0.0.1
base_dir = $d/run
log_path = $d/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:$d/mail/%u
login_greeting = portwatch dovecot ready.
passdb {
  driver = passwd-file
  args = $d/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$d/mail/%u
}
EOF
    bg_srv dovecot -F -c "$d/dovecot.conf"
    wait_port 25 && wait_port 110 && wait_port 143
}

send_mail() {   # send_mail SIZE SEED [attach]: swaks through the SMTP forward
    local body="$WORK/body-$2.txt"
    filler "$1" "$2" >"$body"
    if [ "${3:-}" = attach ]; then
        cli swaks --server 127.0.0.1 --port 2525 --ehlo client.example.test --from alice@client.example.test \
            --to "$TUser@example.test" --header "Subject: report $2" --body 'see attachment' \
            --attach-type text/plain --attach "@$body" >/dev/null
    else
        cli swaks --server 127.0.0.1 --port 2525 --ehlo client.example.test --from alice@client.example.test \
            --to "$TUser@example.test" --header "Subject: note $2" --body "@$body" >/dev/null
    fi
}

rec_forwarded-mail() {
    local run=$1 port cipher pcap what
    port=$(ssh_port "$run"); cipher=$(cipher_label "$run"); pcap="forwarded-mail-r$run.pcap"
    sshd_start "$port"; mail_start
    local P="-u alice:alice-secret"
    cap_start "$pcap" "$port"
    ssh_cli "$port" "$run" -N -o ExitOnForwardFailure=yes -L 2525:127.0.0.1:25 \
        -L 1110:127.0.0.1:110 -L 1143:127.0.0.1:143 "$TUser@$SIP" >>"$WORK/clients.log" 2>&1 &
    wait_forward 2525; wait_forward 1110; wait_forward 1143
    case $run in
        1) send_mail 2000 m1;                   sleep 1; cli curl -sS $P pop3://127.0.0.1:1110/ >/dev/null
           cli curl -sS $P pop3://127.0.0.1:1110/1 >/dev/null
           what="smtp 2k body; pop3 LIST+RETR 1.5k" ;;
        2) cli curl -sS $P "imap://127.0.0.1:1143/INBOX;UID=2" >/dev/null; sleep 1
           send_mail 20000 m2 attach
           what="imap FETCH 9k; smtp 20k attachment" ;;
        3) send_mail 800 m3a; sleep 1; send_mail 5000 m3b; sleep 1
           cli curl -sS $P pop3://127.0.0.1:1110/2 >/dev/null; cli curl -sS $P pop3://127.0.0.1:1110/3 >/dev/null
           what="smtp 800+5k; pop3 RETR 9k+26k" ;;
        4) cli curl -sS $P "imap://127.0.0.1:1143/INBOX" >/dev/null
           cli curl -sS $P "imap://127.0.0.1:1143/INBOX;UID=3" >/dev/null; sleep 1
           cli curl -sS $P pop3://127.0.0.1:1110/ >/dev/null
           what="imap LIST+FETCH 26k; pop3 LIST" ;;
        5) send_mail 40000 "m$run" attach; sleep 1
           cli curl -sS $P "imap://127.0.0.1:1143/INBOX;UID=1" >/dev/null
           what="smtp 40k attachment; imap FETCH 1.5k" ;;
        6) cli curl -sS $P pop3://127.0.0.1:1110/ >/dev/null; cli curl -sS $P pop3://127.0.0.1:1110/3 >/dev/null
           sleep 0.7; send_mail 3000 m6
           what="pop3 LIST+RETR 26k; smtp 3k body" ;;
        7) cli curl -sS $P "imap://127.0.0.1:1143/" >/dev/null; sleep 0.5
           cli curl -sS $P "imap://127.0.0.1:1143/INBOX;UID=1" >/dev/null; sleep 1.5; send_mail 1000 m7
           what="imap LIST+FETCH 1.5k; smtp 1k body" ;;
        8) send_mail 10000 m8 attach; sleep 2
           cli curl -sS $P pop3://127.0.0.1:1110/2 >/dev/null
           what="smtp 10k attachment; pop3 RETR 9k" ;;
        9) send_mail 500 m9a; send_mail 700 m9b; send_mail 600 m9c
           what="smtp 500+700+600 back to back" ;;
        *) cli curl -sS $P "imap://127.0.0.1:1143/INBOX;UID=3" >/dev/null; sleep 0.4
           cli curl -sS $P pop3://127.0.0.1:1110/1 >/dev/null; sleep 0.4; send_mail 4000 "m$run"
           what="imap FETCH 26k; pop3 RETR 1.5k; smtp 4k body" ;;
    esac
    sleep 0.5
    cap_stop
    FLOWS=("ssh -L to opensmtpd+dovecot; $what")
    write_labels "$pcap" "$port" forwarded-mail "forwarded-mail-$run" "$(echo "$what" | grep -o 'smtp\|pop3\|imap' | sort -u | paste -sd+)" "$cipher" - -
}

# --- X11 --------------------------------------------------------------------

rec_x11() {
    local run=$1 port cipher pcap flag prog
    port=$(ssh_port "$run"); cipher=$(cipher_label "$run"); pcap="x11-r$run.pcap"
    flag=$(pick "-X -Y -Y -X -Y -Y -X -Y -X -X" "$run")
    prog=$(pick "xclock_-update_1 xeyes xterm_-e_ls_-l_/usr/bin|head_-40;sleep_4 xlogo xcalc xclock_-digital_-update_1 ico_-sleep_0.2 xterm_-e_top_-d_1 xeyes_-geometry_300x300 xbiff" "$run")
    prog=${prog//_/ }
    sshd_start "$port"
    local x=$WORK/x11 disp=:$((40 + run))
    mkdir -p "$x"; rm -f "$x/Xauthority"; touch "$x/Xauthority"
    xauth -f "$x/Xauthority" add "$disp" MIT-MAGIC-COOKIE-1 "$(openssl rand -hex 16)"
    bg_cli Xvfb "$disp" -nolisten tcp -auth "$x/Xauthority" -screen 0 1024x768x24
    for _ in $(seq 100); do [ -S "/tmp/.X11-unix/X${disp#:}" ] && break; sleep 0.1; done
    sleep 0.5
    local -a o; mapfile -t o < <(ssh_base; ssh_opts "$run")
    cap_start "$pcap" "$port"
    cli env DISPLAY="$disp" XAUTHORITY="$x/Xauthority" \
        ssh "${o[@]}" "$flag" -p "$port" "$TUser@$SIP" \
        "timeout -s TERM 6 sh -c '$prog'; true" >>"$WORK/clients.log" 2>&1 || true
    cap_stop
    FLOWS=("ssh $flag; Xvfb on the client; remote $prog for ~6 s")
    write_labels "$pcap" "$port" x11 "x11-$run" x11 "$cipher" - -
}

# --- bulk -------------------------------------------------------------------

rec_bulk() {
    local run=$1 port cipher pcap
    port=$(ssh_port "$run"); cipher=$(cipher_label "$run"); pcap="bulk-r$run.pcap"
    # scp size+direction, sftp size+direction
    local spec; spec=$(pick "65536:up:200000:get 300000:get:40000:put 500000:up:16384:get 120000:get:250000:put 20480:up:450000:get 150000:get:30000:put 40000:up:120000:get 250000:get:8192:get 10240:up:300000:put 90000:get:60000:put" "$run")
    local ss sd fs fd; IFS=: read -r ss sd fs fd <<<"$spec"
    local scpmode; scpmode=$(pick "-O sftp -O sftp -O sftp -O sftp sftp -O" "$run")
    sshd_start "$port"
    local c=$WORK/bulk-cli; mkdir -p "$c"
    head -c "$ss" /dev/urandom >"$c/scp.bin";  cp "$c/scp.bin" "$WORK/home/scp.bin"
    head -c "$fs" /dev/urandom >"$c/sftp.bin"; cp "$c/sftp.bin" "$WORK/home/sftp.bin"
    chown "$TUser" "$WORK/home/"*.bin
    local -a o; mapfile -t o < <(ssh_base; ssh_opts "$run")
    local -a sm=(); [ "$scpmode" = -O ] && sm=(-O)
    cap_start "$pcap" "$port"
    if [ "$sd" = up ]; then cli scp "${o[@]}" "${sm[@]}" -P "$port" "$c/scp.bin" "$TUser@$SIP:scp-up.bin"
    else cli scp "${o[@]}" "${sm[@]}" -P "$port" "$TUser@$SIP:scp.bin" "$c/scp-down.bin"; fi
    sleep 1
    if [ "$fd" = put ]; then echo "put $c/sftp.bin sftp-up.bin" >"$c/batch"
    else printf 'ls -l\nget sftp.bin %s/sftp-down.bin\n' "$c" >"$c/batch"; fi
    cli sftp "${o[@]}" -P "$port" -b "$c/batch" "$TUser@$SIP" >/dev/null
    cap_stop
    local sdesc
    [ "$scpmode" = -O ] && sdesc="scp -O (legacy SCP protocol)" || sdesc="scp (SFTP protocol)"
    FLOWS=("$sdesc; $sd $(human_size "$ss") random bytes" "sftp -b; $fd $(human_size "$fs") random bytes")
    write_labels "$pcap" "$port" bulk "bulk-$run" file-transfer "$cipher" - -
}

# --- SOCKS ------------------------------------------------------------------

rec_socks() {
    local run=$1 port cipher pcap sizes mode
    port=$(ssh_port "$run"); cipher=$(cipher_label "$run"); pcap="socks-r$run.pcap"
    sizes=$(pick "2048,16384,4096 51200,1024,1024,8192 700,700,700,700,700,700 30720,61440 4096,12288,2048,24576,1024 1024,1024 81920 3000,6000,9000,12000 500,40000,500 20480,20480,20480" "$run")
    mode=$(pick "sequential parallel sequential parallel sequential parallel sequential sequential parallel sequential" "$run")
    sshd_start "$port"; nginx_start
    # a second web server on pt-srv's loopback, so the SOCKS client reaches two destinations
    bg_srv "$PY" -m http.server --bind 127.0.0.1 --directory "$WORK/www" 8000
    wait_port 8000
    local -a urls=(); local s i=0 host
    for s in ${sizes//,/ }; do
        i=$((i + 1)); host=$([ $((i % 2)) = 1 ] && echo localhost || echo localhost:8000)
        urls+=("http://$host$(make_page "$s" "s$run")")
    done
    cap_start "$pcap" "$port"
    ssh_cli "$port" "$run" -N -o ExitOnForwardFailure=yes -D 127.0.0.1:1080 "$TUser@$SIP" >>"$WORK/clients.log" 2>&1 &
    wait_forward 1080
    if [ "$mode" = parallel ]; then
        local -a outs=(); for u in "${urls[@]}"; do outs+=(-o /dev/null); done
        cli curl -sS -Z --parallel-max 4 -A "$UA" --socks5-hostname 127.0.0.1:1080 "${urls[@]}" "${outs[@]}" 2>>"$WORK/clients.log"
    else
        for u in "${urls[@]}"; do cli curl -sS -A "$UA" --socks5-hostname 127.0.0.1:1080 "$u" -o /dev/null; sleep 0.4; done
    fi
    sleep 0.5
    cap_stop
    local list=""; for s in ${sizes//,/ }; do list+="$(human_size "$s")+"; done
    FLOWS=("ssh -D; ${#urls[@]} curl --socks5-hostname connections ($mode) to nginx and http.server; pages ${list%+} bytes")
    write_labels "$pcap" "$port" socks "socks-$run" http "$cipher" - -
}

# --- TLS tunnels (stunnel on both ends) ---------------------------------------

make_cert() {   # make_cert CN -> $WORK/CN.crt $WORK/CN.key
    [ -f "$WORK/$1.crt" ] && return 0
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
        -subj "/CN=$1" -addext "subjectAltName=DNS:$1" \
        -keyout "$WORK/$1.key" -out "$WORK/$1.crt" 2>/dev/null
}

# tls_variant RUN -> "VERSION CIPHER": what the stunnel pair is pinned to
tls_variant() {
    pick "TLSv1.3:TLS_AES_128_GCM_SHA256 TLSv1.2:ECDHE-ECDSA-CHACHA20-POLY1305 TLSv1.3:TLS_CHACHA20_POLY1305_SHA256 TLSv1.3:TLS_AES_256_GCM_SHA384 TLSv1.2:ECDHE-ECDSA-AES128-GCM-SHA256" "$1"
}

# stunnel_pair NAME RUN TLSPORT BACKEND LOCALPORT: server stunnel on SIP:TLSPORT -> 127.0.0.1:BACKEND
# in pt-srv, client stunnel on 127.0.0.1:LOCALPORT -> SIP:TLSPORT in pt-cli
stunnel_pair() {
    local name=$1 run=$2 tport=$3 backend=$4 lport=$5 v ver ciph copt
    v=$(tls_variant "$run"); ver=${v%%:*} ciph=${v#*:}
    if [ "$ver" = TLSv1.3 ]; then copt="ciphersuites = $ciph"; else copt="ciphers = $ciph"; fi
    make_cert "$name.example.test"
    cat >"$WORK/stunnel-srv.conf" <<EOF
foreground = yes
pid =
syslog = no
debug = 4
[$name]
accept = $SIP:$tport
connect = 127.0.0.1:$backend
cert = $WORK/$name.example.test.crt
key = $WORK/$name.example.test.key
sslVersionMin = $ver
sslVersionMax = $ver
$copt
EOF
    cat >"$WORK/stunnel-cli.conf" <<EOF
foreground = yes
pid =
syslog = no
debug = 4
[$name]
client = yes
accept = 127.0.0.1:$lport
connect = $SIP:$tport
sni = $name.example.test
verifyChain = no
sslVersionMin = $ver
sslVersionMax = $ver
$copt
EOF
    bg_srv stunnel4 "$WORK/stunnel-srv.conf"
    wait_port "$tport"
    bg_cli stunnel4 "$WORK/stunnel-cli.conf"
    wait_cli_port "$lport"
}

rec_tls-pop3() {
    local run=$1 port pcap v
    port=$(pick "995 443 995 443 995 443 995 443 995 443" "$run"); pcap="tls-pop3-r$run.pcap"; v=$(tls_variant "$run")
    mail_start
    stunnel_pair pop3 "$run" "$port" 110 1110
    local P="-u alice:alice-secret" what
    cap_start "$pcap" "$port"
    FLOWS=()
    case $run in
        1) cli curl -sS $P pop3://127.0.0.1:1110/ >/dev/null; FLOWS+=("stunnel pair; pop3 LIST")
           cli curl -sS $P pop3://127.0.0.1:1110/1 >/dev/null; FLOWS+=("stunnel pair; pop3 RETR 1.5k") ;;
        2) cli curl -sS $P pop3://127.0.0.1:1110/3 >/dev/null; FLOWS+=("stunnel pair; pop3 RETR 26k") ;;
        3) cli curl -sS $P pop3://127.0.0.1:1110/2 >/dev/null; FLOWS+=("stunnel pair; pop3 RETR 9k")
           cli curl -sS $P -X UIDL pop3://127.0.0.1:1110/ >/dev/null; FLOWS+=("stunnel pair; pop3 UIDL") ;;
        4) cli curl -sS $P pop3://127.0.0.1:1110/ >/dev/null; FLOWS+=("stunnel pair; pop3 LIST") ;;
        5) for m in 1 2 3; do cli curl -sS $P "pop3://127.0.0.1:1110/$m" >/dev/null; sleep 0.3; done
           FLOWS+=("stunnel pair; pop3 RETR 1.5k" "stunnel pair; pop3 RETR 9k" "stunnel pair; pop3 RETR 26k") ;;
        6) cli curl -sS $P pop3://127.0.0.1:1110/2 >/dev/null; FLOWS+=("stunnel pair; pop3 RETR 9k") ;;
        7) cli curl -sS $P -X UIDL pop3://127.0.0.1:1110/ >/dev/null; FLOWS+=("stunnel pair; pop3 UIDL")
           cli curl -sS $P pop3://127.0.0.1:1110/3 >/dev/null; FLOWS+=("stunnel pair; pop3 RETR 26k") ;;
        8) cli curl -sS $P pop3://127.0.0.1:1110/ >/dev/null; FLOWS+=("stunnel pair; pop3 LIST")
           cli curl -sS $P pop3://127.0.0.1:1110/1 >/dev/null; FLOWS+=("stunnel pair; pop3 RETR 1.5k") ;;
        9) cli curl -sS $P pop3://127.0.0.1:1110/1 >/dev/null; FLOWS+=("stunnel pair; pop3 RETR 1.5k")
           sleep 0.3; cli curl -sS $P pop3://127.0.0.1:1110/2 >/dev/null; FLOWS+=("stunnel pair; pop3 RETR 9k") ;;
        *) cli curl -sS $P pop3://127.0.0.1:1110/3 >/dev/null; FLOWS+=("stunnel pair; pop3 RETR 26k")
           cli curl -sS $P pop3://127.0.0.1:1110/ >/dev/null; FLOWS+=("stunnel pair; pop3 LIST") ;;
    esac
    sleep 0.5
    cap_stop
    write_labels "$pcap" "$port" tls-pop3 "tls-pop3-$run" pop3 "${v/:/ }" - -
}

rec_tls-http() {
    local run=$1 port pcap v sizes
    port=$(pick "443 8443 443 8443 443 8443 443 8443 443 8443" "$run"); pcap="tls-http-r$run.pcap"; v=$(tls_variant "$run")
    sizes=$(pick "4096,40960 1024 20480,2048,8192 102400 6144,6144 500,15000 60000 3000,3000,3000 12000 2048,70000" "$run")
    nginx_start
    stunnel_pair www "$run" "$port" 80 8081
    local -a urls=(); local s
    for s in ${sizes//,/ }; do urls+=("http://127.0.0.1:8081$(make_page "$s" "t$run")"); done
    cap_start "$pcap" "$port"
    FLOWS=()
    # every curl connection to the client stunnel is its own TLS connection to the server stunnel
    for u in "${urls[@]}"; do
        cli curl -sS -A "$UA" "$u" -o /dev/null
        sleep 0.4
    done
    sleep 0.5
    cap_stop
    for s in ${sizes//,/ }; do FLOWS+=("stunnel pair to nginx; GET $(human_size "$s") page"); done
    write_labels "$pcap" "$port" tls-http "tls-http-$run" http "${v/:/ }" - -
}

# --- main -------------------------------------------------------------------

main() {
    local -a todo=() failed=()
    local a c r
    if [ $# -eq 0 ]; then
        for c in "${CLASSES[@]}"; do for r in $(seq "$RUNS"); do todo+=("$c:$r"); done; done
    else
        for a in "$@"; do
            c=${a%%:*}
            printf '%s\n' "${CLASSES[@]}" | grep -qx -- "$c" || { echo "unknown class: $c (see --list)" >&2; exit 2; }
            if [ "$a" = "$c" ]; then for r in $(seq "$RUNS"); do todo+=("$c:$r"); done
            else r=${a#*:}; [[ $r =~ ^[1-9][0-9]*$ ]] || { echo "bad run: $a" >&2; exit 2; }; todo+=("$c:$r"); fi
        done
    fi
    # one recording at a time: the namespaces and the throwaway user are shared
    exec 9>/run/portwatch-record-tunnels.lock
    flock -w 900 9 || { echo "another record-tunnels.sh is running" >&2; exit 2; }
    mkdir -p "$OUT"
    WORK=$(mktemp -d /tmp/pw-tunnels.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    [ -n "$OBSCURE_SUPPORTED" ] || log "$SSH_VERSION has no ObscureKeystrokeTiming (OpenSSH >= 9.5): interactive runs are recorded without it"
    ensure_user
    ns_up
    for a in "${todo[@]}"; do
        c=${a%%:*} r=${a#*:}
        log "recording $c run $r"
        FLOWS=()
        set +e; ( set -e; "rec_$c" "$r" ); rc=$?; set -e
        if [ $rc -eq 0 ]; then
            log "$c run $r: $(stat -c %s "$OUT/$c-r$r.pcap") bytes"
        else
            log "$c run $r FAILED (see $WORK/daemons.log, $WORK/clients.log; KEEP_WORK=1 keeps them)"
            failed+=("$a"); TCPDUMP_PID=; ns_reset
        fi
    done
    if [ ${#failed[@]} -gt 0 ]; then log "failed: ${failed[*]}"; return 1; fi
}

main "$@"
