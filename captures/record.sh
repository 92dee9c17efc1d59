#!/usr/bin/env bash
# Record portwatch's reference captures: real daemons talking to real clients
# between two network namespaces joined by one veth pair (no other interface,
# no default route: nothing can leave the pair).
#
#   pw-srv  veth pw-s  10.77.0.1/24  fd77::1/64   (daemons, tcpdump)
#   pw-cli  veth pw-c  10.77.0.2/24  fd77::2/64   (clients)
#
# Usage (root):  bash captures/record.sh [NAME ...]     # default: all
#                bash captures/record.sh --list
#                bash captures/record.sh --print-packages
# Each NAME writes captures/NAME.pcap. Idempotent: every run rebuilds the
# namespaces and overwrites the pcaps it records.
#
# Debian 12 packages needed (captures/install-deps.sh installs them):
#   iproute2 iputils-ping tcpdump procps python3 openssl curl bind9-dnsutils
#   openssh-server openssh-client nginx-light dnsmasq-base opensmtpd swaks
#   inetutils-inetd inetutils-telnetd inetutils-telnet expect vsftpd iodine
#   redis-server redis-tools postgresql postgresql-client mariadb-server
#   mariadb-client mosquitto mosquitto-clients dovecot-imapd dovecot-pop3d
#   chrony snmpd snmp tftpd-hpa tftp-hpa rsync rsyslog bsdutils sip-tester
#   fingerd finger whois ngircd rsh-client rsh-server xrdp freerdp2-x11 xvfb
#   freeradius freeradius-utils python3-venv openvpn coturn krb5-kdc krb5-admin-server krb5-user
#   samba smbclient isc-dhcp-client avahi-daemon slapd ldap-utils dante-server prosody sendxmpp llmnrd minidlna miniupnpc git strongswan-charon strongswan-swanctl strongswan-pki charon-cmd libstrongswan-standard-plugins
#   memcached libmemcached-tools nats-server zabbix-agent libcoap3-bin yaz bird2 linuxptp tigervnc-standalone-server tigervnc-tools vncsnapshot xdm samba-common-bin x11-utils xauth
#   wireguard-go wireguard-tools rabbitmq-server amqp-tools munin-node leafnode pptpd pptp-linux unbound knot-dnsutils
#   nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils
#   mbpoll python3-pymodbus python3-serial python3-serial-asyncio python3-libtorrent
#   ffmpeg libnginx-mod-rtmp
#   tinyproxy
#   libcharon-extra-plugins nftables
#   knot python3-httpx python3-h2 python3-websockets
#   frr
#   miredo miredo-server
#   freediameterd freediameter-extensions
#   osmo-ggsn
# and, in throwaway venvs from PyPI where Debian 12 packages no implementation: aioquic for
# quic-443 (no QUIC server), python-snap7 for s7comm-102, c104 for iec104-2404, bacpypes3 for
# bacnet-47808 and yadnp3 (opendnp3) for dnp3-20000.
#
# Side effects outside the namespaces, all undone on exit: a throwaway local
# user "pwcap" (password "pwcap-secret") for the telnet and FTP logins; vsftpd
# and telnetd authenticate through PAM, so they need a real account.

set -euo pipefail

need_packages() {
    printf '%s\n' iproute2 iputils-ping tcpdump procps python3 openssl curl bind9-dnsutils \
        openssh-server openssh-client nginx-light dnsmasq-base opensmtpd swaks \
        inetutils-inetd inetutils-telnetd inetutils-telnet expect vsftpd iodine \
        redis-server redis-tools postgresql postgresql-client mariadb-server \
        mariadb-client mosquitto mosquitto-clients dovecot-imapd dovecot-pop3d \
        chrony snmpd snmp tftpd-hpa tftp-hpa rsync rsyslog bsdutils sip-tester \
        fingerd finger whois ngircd rsh-client rsh-server xrdp freerdp2-x11 xvfb \
        freeradius freeradius-utils python3-venv openvpn coturn krb5-kdc krb5-admin-server krb5-user \
        samba smbclient isc-dhcp-client avahi-daemon slapd ldap-utils dante-server prosody sendxmpp llmnrd minidlna miniupnpc git strongswan-charon strongswan-swanctl strongswan-pki charon-cmd libstrongswan-standard-plugins \
        memcached libmemcached-tools nats-server zabbix-agent libcoap3-bin yaz bird2 linuxptp tigervnc-standalone-server tigervnc-tools vncsnapshot xdm samba-common-bin x11-utils xauth \
        wireguard-go wireguard-tools rabbitmq-server amqp-tools munin-node leafnode pptpd pptp-linux unbound knot-dnsutils \
        nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils \
        mbpoll python3-pymodbus python3-serial python3-serial-asyncio python3-libtorrent \
        ffmpeg libnginx-mod-rtmp \
        tinyproxy \
        libcharon-extra-plugins nftables \
        knot python3-httpx python3-h2 python3-websockets \
        frr \
        miredo miredo-server \
        freediameterd freediameter-extensions \
        osmo-ggsn
}

ALL=(ssh-22 ssh-443 https-443 smtp-25 dns-53 http-80 http-basic-80 tls-22 telnet-23 ftp-21
     dns-tunnel http-8443 http-on-443 redis-6379 postgresql-5432 postgresql-password-5432 mysql-3306
     mqtt-1883 pop3-110 imap-143 ntp-123 snmp-161 tftp-69 rsync-873
     syslog-514 sip-5060 finger-79 whois-43 irc-6667 http-privport-80 rsh-514 rdp-3389
     ftp-pasv-21 ftp-active-21 ftp-anonymous-21 sip-call-5060 radius-1812 quic-443 openvpn-1194
     stun-3478 dtls-4433 kerberos-88 smb-445 dhcp-67 mdns-5353 ldap-389 socks-1080 xmpp-5222 llmnr-5355 ssdp-1900 git-9418 ike-500
     memcached-11211 nats-4222 zabbix-10050 coap-5683 z3950-210 bgp-179 ptp-319 vnc-5900 vnc-noauth-5900
     xdmcp-177 netbios-137 x11-6000 wireguard-51820 amqp-5672 stomp-61613 munin-4949 nntp-119
     pptp-1723 dot-853 redis-auth-6379 ftps-21 mqtt-8883 nfs-2049
     modbus-502 bittorrent-6881 bittorrent-utp-6881 rtsp-554 rtmp-1935 smb-139 http-proxy-3128
     snmpv3-161 syslog-tcp-514 nts-4460 ipsec-4500
     ldaps-636 smtp-587 dns-tcp-53 http2-80 websocket-8080 mysql-tls-3306 ldp-646 teredo-3544
     s7comm-102 iec104-2404 bacnet-47808 dnp3-20000 diameter-3868 dcerpc-135 gtp-2152)

case "${1:-}" in
    --print-packages) need_packages; exit 0 ;;
    --list) printf '%s\n' "${ALL[@]}"; exit 0 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
esac

[ "$(id -u)" = 0 ] || { echo "record.sh: run as root" >&2; exit 2; }

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE
NS_S=${PW_NS_S:-pw-srv} NS_C=${PW_NS_C:-pw-cli}   # override to record beside another run
SIP=10.77.0.1 CIP=10.77.0.2 SIP6=fd77::1 CIP6=fd77::2
UA="portwatch-capture/1.0 (curl)"
CAPUSER=pwcap CAPPASS=pwcap-secret
WORK=
TCPDUMP_PID=

log() { printf '[record] %s\n' "$*" >&2; }
# shellcheck source=captures/netns.sh
. "$HERE/netns.sh"

# --- namespaces ---------------------------------------------------------

ns_up() { ns_pair pw-s pw-c; }

# kill everything in the namespaces between captures (daemons, clients)
cleanup() {
    local rc=$?
    [ -n "$TCPDUMP_PID" ] && kill -TERM "$TCPDUMP_PID" 2>/dev/null || true
    ns_down
    if [ -n "$WORK" ] && [ -e "$WORK/created-user" ]; then userdel -f "$CAPUSER" >/dev/null 2>&1 || true; fi
    [ -n "$WORK" ] && rm -rf "$WORK"
    exit $rc
}

# --- helpers --------------------------------------------------------------

# wait_port tcp|udp PORT [TRIES]: until something in pw-srv listens on PORT
wait_port() {
    local proto=$1 port=$2 tries=${3:-100} flag=-ltnH
    [ "$proto" = udp ] && flag=-lunH
    for _ in $(seq "$tries"); do
        srv ss $flag "sport = :$port" | grep -q . && return 0
        sleep 0.1
    done
    log "nothing listens on $proto/$port"; return 1
}

# cap_start NAME FILTER...: tcpdump on the server side of the pair
cap_start() {
    local name=$1; shift
    rm -f "$OUT/$name.pcap"
    srv tcpdump -i pw-s -s 0 -U --immediate-mode -n -w "$OUT/$name.pcap" "$@" 2>"$WORK/tcpdump-$name.log" &
    TCPDUMP_PID=$!
    for _ in $(seq 50); do grep -q 'listening on' "$WORK/tcpdump-$name.log" 2>/dev/null && break; sleep 0.1; done
    sleep 0.2
}

cap_stop() {
    sleep 1     # let the last FIN/ACK land
    kill -TERM "$TCPDUMP_PID" 2>/dev/null || true
    wait "$TCPDUMP_PID" 2>/dev/null || true
    TCPDUMP_PID=
    ns_reset
}

bg_srv() { srv "$@" >>"$WORK/daemons.log" 2>&1 & }

# pypi_venv NAME SPEC...: a throwaway venv $WORK/NAME with SPEC from PyPI, for what Debian 12
# packages no implementation of; prints the venv's python
pypi_venv() {
    local dir=$WORK/$1; shift
    /usr/bin/python3 -m venv "$dir"
    "$dir/bin/pip" install -q "$@" >&2
    echo "$dir/bin/python"
}

# write_inetd1: $WORK/inetd1.py ADDR PORT DAEMON ARGV0 [ARGS...], a one-service inetd (nowait,
# the connection as the daemon's stdin, stdout and stderr) for daemons Debian runs from inetd.
write_inetd1() {
    cat >"$WORK/inetd1.py" <<'PY'
import os, signal, socket, sys
addr, port, daemon = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # no zombies, as inetd's nowait
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(8)
while True:
    c, _ = s.accept()
    if os.fork() == 0:
        for fd in (0, 1, 2):
            os.dup2(c.fileno(), fd)
        os.execv(daemon[0], daemon[1:])
    c.close()
PY
}

# samba_dirs D: the smb.conf [global] lines that keep every directory Samba writes under D
samba_dirs() {
    local d=$1
    printf '    %s\n' "lock directory = $d/lock" "state directory = $d/state" \
        "cache directory = $d/cache" "private dir = $d/private" "pid directory = $d/run" \
        "ncalrpc dir = $d/run/ncalrpc"
}

make_cert() {   # make_cert CN -> $WORK/CN.crt $WORK/CN.key
    [ -f "$WORK/$1.crt" ] && return 0
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
        -subj "/CN=$1" -addext "subjectAltName=DNS:$1" \
        -keyout "$WORK/$1.key" -out "$WORK/$1.crt" 2>/dev/null
}

ensure_user() {
    if ! id "$CAPUSER" >/dev/null 2>&1; then
        useradd -M -d "$WORK/home" -s /bin/bash "$CAPUSER"
        touch "$WORK/created-user"   # the EXIT trap removes the user
    fi
    mkdir -p "$WORK/home"; chown "$CAPUSER" "$WORK/home"
    echo "$CAPUSER:$CAPPASS" | chpasswd
}

# --- SSH ------------------------------------------------------------------

sshd_start() {   # sshd_start PORT
    local d=$WORK/ssh
    if [ ! -f "$d/id_ed25519" ]; then
        mkdir -p "$d"
        ssh-keygen -q -t ed25519 -N '' -f "$d/host_ed25519" -C portwatch-host
        ssh-keygen -q -t ed25519 -N '' -f "$d/id_ed25519" -C portwatch-client
        cp "$d/id_ed25519.pub" "$d/authorized_keys"
        cat >"$d/sshd_config" <<EOF
HostKey $d/host_ed25519
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding yes
PidFile none
Subsystem sftp internal-sftp
EOF
    fi
    mkdir -p /run/sshd
    bg_srv /usr/sbin/sshd -D -e -f "$d/sshd_config" -o "ListenAddress=$SIP" -o "Port=$1"
    wait_port tcp "$1"
}

ssh_cli() {   # ssh_cli PORT [ssh args...]
    local port=$1; shift
    cli ssh -F /dev/null -i "$WORK/ssh/id_ed25519" -p "$port" \
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes \
        -o LogLevel=ERROR "$@"
}

rec_ssh-22() {
    sshd_start 22
    cap_start ssh-22 tcp port 22
    ssh_cli 22 "root@$SIP" 'echo hello'
    cap_stop
}

rec_ssh-443() {
    sshd_start 443
    # the service behind the forward, on pw-srv's own loopback
    mkdir -p "$WORK/www"; echo "hello through the tunnel" >"$WORK/www/index.html"
    srv python3 -m http.server --bind 127.0.0.1 --directory "$WORK/www" 80 >>"$WORK/daemons.log" 2>&1 &
    wait_port tcp 80
    cap_start ssh-443 tcp port 443
    ssh_cli 443 -o ExitOnForwardFailure=yes -L 8080:127.0.0.1:80 "root@$SIP" 'echo hello; sleep 4' &
    local sshpid=$!
    for _ in $(seq 50); do cli ss -ltnH 'sport = :8080' | grep -q . && break; sleep 0.1; done
    cli curl -sS -A "$UA" http://127.0.0.1:8080/
    cli curl -sS -A "$UA" -o /dev/null http://127.0.0.1:8080/index.html
    wait "$sshpid"
    cap_stop
}

# --- HTTP / TLS -----------------------------------------------------------

nginx_start() {   # nginx_start "listen lines..." [ssl]
    mkdir -p "$WORK/www" "$WORK/nginx"
    printf '<html><body><h1>portwatch test page</h1></body></html>\n' >"$WORK/www/index.html"
    printf 'User-agent: *\nDisallow:\n' >"$WORK/www/robots.txt"
    make_cert www.example.test
    cat >"$WORK/nginx/nginx.conf" <<EOF
user root;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 64; }
http {
    access_log $WORK/nginx/access.log;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    default_type text/html;
    server {
        $1
        server_name www.example.test;
        ssl_certificate $WORK/www.example.test.crt;
        ssl_certificate_key $WORK/www.example.test.key;
        root $WORK/www;
    }
}
EOF
    bg_srv nginx -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" -g 'daemon off;'
}

rec_https-443() {
    nginx_start "listen $SIP:443 ssl http2; listen [$SIP6]:443 ssl http2;"
    wait_port tcp 443
    cap_start https-443 tcp port 443
    cli curl -sS -k -A "$UA" --http1.1 --resolve "www.example.test:443:$SIP" https://www.example.test/ -o /dev/null
    cli curl -sS -k -A "$UA" --resolve "www.example.test:443:$SIP" https://www.example.test/robots.txt -o /dev/null
    cli curl -sS -k -A "$UA" --resolve "www.example.test:443:[$SIP6]" https://www.example.test/ -o /dev/null
    cap_stop
}

rec_http-80() {
    nginx_start "listen $SIP:80; listen [$SIP6]:80;"
    wait_port tcp 80
    cap_start http-80 tcp port 80
    cli curl -sS -A "$UA" -H 'Host: www.example.test' "http://$SIP/" -o /dev/null
    cli curl -sS -A "$UA" -H 'Host: www.example.test' "http://$SIP/robots.txt" -o /dev/null
    cli curl -sS -A "$UA" -H 'Host: www.example.test' "http://$SIP/missing" -o /dev/null
    cli curl -sS -A "$UA" -H 'Host: www.example.test' "http://[$SIP6]/" -o /dev/null
    cap_stop
}

# HTTP Basic authentication (RFC 7617) in clear: nginx auth_basic on /private/
rec_http-basic-80() {
    ensure_user
    mkdir -p "$WORK/www/private"
    printf '<html><body>private page</body></html>\n' >"$WORK/www/private/index.html"
    printf '%s:%s\n' "$CAPUSER" "$(openssl passwd -apr1 "$CAPPASS")" >"$WORK/htpasswd"
    nginx_start "listen $SIP:80; location /private/ { auth_basic portwatch; auth_basic_user_file $WORK/htpasswd; }"
    wait_port tcp 80
    cap_start http-basic-80 tcp port 80
    cli curl -sS -A "$UA" -u "$CAPUSER:$CAPPASS" "http://$SIP/private/" -o /dev/null             # Basic at once
    cli curl -sS -A "$UA" --anyauth -u "$CAPUSER:$CAPPASS" "http://$SIP/private/" -o /dev/null   # 401, then Basic
    cli curl -sS -A "$UA" "http://$SIP/private/" -o /dev/null                                    # 401, no login
    cap_stop
}

http_py() {   # http_py PORT: python's http.server on pw-srv's veth address
    mkdir -p "$WORK/www"
    printf '<html><body>plain http</body></html>\n' >"$WORK/www/index.html"
    srv python3 -m http.server --bind "$SIP" --directory "$WORK/www" "$1" >>"$WORK/daemons.log" 2>&1 &
    wait_port tcp "$1"
}

rec_http-8443() {
    http_py 8443
    cap_start http-8443 tcp port 8443
    cli curl -sS -A "$UA" "http://$SIP:8443/" -o /dev/null
    cli curl -sS -A "$UA" "http://$SIP:8443/index.html" -o /dev/null
    cap_stop
}

rec_http-on-443() {
    http_py 443
    cap_start http-on-443 tcp port 443
    cli curl -sS -A "$UA" "http://$SIP:443/" -o /dev/null
    cli curl -sS -A "$UA" "http://$SIP:443/index.html" -o /dev/null
    cap_stop
}

rec_tls-22() {
    make_cert secure.example.test
    cd "$WORK"
    bg_srv openssl s_server -accept "$SIP:22" -cert "$WORK/secure.example.test.crt" \
        -key "$WORK/secure.example.test.key" -www -quiet
    cd - >/dev/null
    wait_port tcp 22
    cap_start tls-22 tcp port 22
    cli curl -sS -k -A "$UA" --resolve "secure.example.test:22:$SIP" https://secure.example.test:22/ -o /dev/null
    printf 'GET / HTTP/1.0\r\n\r\n' | cli timeout 5 openssl s_client -quiet -connect "$SIP:22" \
        -servername secure.example.test >/dev/null 2>&1 || true
    cap_stop
}

# --- mail -----------------------------------------------------------------

rec_smtp-25() {
    mkdir -p "$WORK/smtpd/maildir"
    cat >"$WORK/smtpd/smtpd.conf" <<EOF
listen on $SIP port 25 hostname mx.example.test
action "local" maildir "$WORK/smtpd/maildir"
match from any for domain "example.test" action "local"
EOF
    bg_srv smtpd -d -f "$WORK/smtpd/smtpd.conf"
    wait_port tcp 25
    cap_start smtp-25 tcp port 25
    cli swaks --server "$SIP" --port 25 --ehlo client.example.test \
        --from alice@client.example.test --to root@example.test \
        --header 'Subject: portwatch test' --body 'Hello from the portwatch capture script.' >/dev/null
    cap_stop
}

dovecot_start() {
    local d=$WORK/dovecot
    make_cert mail.example.test
    mkdir -p "$d/run" "$d/mail"
    chown nobody:nogroup "$d/mail"
    chmod 755 "$WORK" "$d"
    echo "alice:{PLAIN}alice-secret::::::" >"$d/passwd"
    cat >"$d/dovecot.conf" <<EOF
protocols = imap pop3
listen = $SIP
base_dir = $d/run
log_path = $d/dovecot.log
ssl = yes
ssl_cert = <$WORK/mail.example.test.crt
ssl_key = <$WORK/mail.example.test.key
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
    wait_port tcp 143 && wait_port tcp 110
}

rec_pop3-110() {
    dovecot_start
    cap_start pop3-110 tcp port 110
    cli curl -sS "pop3://$SIP/" -u alice:alice-secret >/dev/null          # AUTH PLAIN in clear
    cli curl -sS -k --ssl-reqd "pop3://$SIP/" -u alice:alice-secret >/dev/null   # STLS
    cap_stop
}

rec_imap-143() {
    dovecot_start
    cap_start imap-143 tcp port 143
    cli curl -sS "imap://$SIP/INBOX" -u alice:alice-secret >/dev/null   # AUTHENTICATE PLAIN in clear
    cli curl -sS -k --ssl-reqd "imap://$SIP/" -u alice:alice-secret >/dev/null   # STARTTLS
    cap_stop
}

# --- DNS ------------------------------------------------------------------

rec_dns-53() {
    bg_srv dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --no-poll --pid-file= \
        --bind-interfaces --listen-address="$SIP" --listen-address="$SIP6" --except-interface=lo \
        --local=/example.test/ --domain=example.test \
        --address=/www.example.test/10.77.0.80 --address=/www.example.test/fd77::80 \
        --host-record=mail.example.test,10.77.0.25 \
        --mx-host=example.test,mail.example.test,10 \
        --txt-record=example.test,"v=spf1 mx -all" \
        --srv-host=_sip._udp.example.test,sip.example.test,5060 \
        --cname=web.example.test,www.example.test \
        --log-queries --log-facility=-
    wait_port udp 53 && wait_port tcp 53
    cap_start dns-53 port 53
    local d="cli dig @$SIP +tries=1 +time=2"
    $d www.example.test A +short
    $d www.example.test AAAA +short
    $d example.test MX +short
    $d example.test TXT +short
    $d _sip._udp.example.test SRV +short
    $d web.example.test A +short
    $d nosuch.example.test A +noall +comments | grep -o 'status: [A-Z]*'
    $d +tcp www.example.test A +short
    $d +tcp example.test MX +short
    cli dig @"$SIP6" +tries=1 +time=2 mail.example.test A +short
    cap_stop
}

rec_dns-tunnel() {
    # iodine: the tunnel inside DNS queries; -r forbids the raw-UDP shortcut so
    # every byte really travels as DNS (NULL/TXT records under t.example.test)
    bg_srv iodined -f -c -P pw-tunnel -l "$SIP" -p 53 10.78.0.1/27 t.example.test
    wait_port udp 53
    cap_start dns-tunnel udp port 53
    cli iodine -f -r -P pw-tunnel "$SIP" t.example.test >"$WORK/iodine.log" 2>&1 &
    local ok=
    for _ in $(seq 300); do grep -q 'Connection setup complete' "$WORK/iodine.log" && { ok=1; break; }; sleep 0.1; done
    [ -n "$ok" ] || { cat "$WORK/iodine.log" >&2; cap_stop; return 1; }
    cli ping -c 5 -i 0.5 -W 3 10.78.0.1
    cap_stop
}

# --- cleartext logins -----------------------------------------------------

inetd_start() {   # inetd_start "conf line"
    printf '%s\n' "$1" >"$WORK/inetd.conf"
    bg_srv inetutils-inetd -d "$WORK/inetd.conf"
}

rec_telnet-23() {
    ensure_user
    inetd_start "$SIP:telnet stream tcp nowait root /usr/sbin/telnetd telnetd"
    wait_port tcp 23
    cap_start telnet-23 tcp port 23
    cat >"$WORK/telnet.exp" <<EOF
set timeout 15
spawn ip netns exec $NS_C telnet $SIP 23
expect "login: "
send "$CAPUSER\r"
expect "assword: "
send "$CAPPASS\r"
expect -re {[\$#] $}
send "echo hello-from-telnet\r"
expect -re {[\$#] $}
send "exit\r"
expect eof
EOF
    expect "$WORK/telnet.exp" >/dev/null
    cap_stop
}

# vsftpd on 21, passive data connections pinned to tcp/50000, active ones from tcp/20.
# vsftpd_start [PORT [CONFIG-LINE...]]: another port (its own config) and extra vsftpd.conf lines
vsftpd_start() {
    ensure_user
    local port=${1:-21} d=$WORK/ftp
    [ $# -gt 0 ] && shift
    [ "$port" = 21 ] || d=$WORK/ftp-$port
    mkdir -p "$d/empty"; chmod 755 "$WORK"
    echo "portwatch ftp test file" >"$WORK/home/readme.txt"; chown "$CAPUSER" "$WORK/home/readme.txt"
    cat >"$d/vsftpd.conf" <<EOF
listen=YES
listen_ipv6=NO
listen_address=$SIP
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=NO
pam_service_name=vsftpd
secure_chroot_dir=$d/empty
seccomp_sandbox=NO
pasv_enable=YES
pasv_min_port=50000
pasv_max_port=50000
port_enable=YES
connect_from_port_20=YES
ftpd_banner=portwatch vsftpd ready.
xferlog_enable=NO
listen_port=$port
EOF
    [ $# -gt 0 ] && printf '%s\n' "$@" >>"$d/vsftpd.conf"
    bg_srv vsftpd "$d/vsftpd.conf"
    wait_port tcp "$port"
}

rec_ftp-21() {
    vsftpd_start
    cap_start ftp-21 tcp port 21 or tcp port 50000
    cli curl -sS "ftp://$CAPUSER:$CAPPASS@$SIP/" >/dev/null              # LIST
    cli curl -sS "ftp://$CAPUSER:$CAPPASS@$SIP/readme.txt" >/dev/null    # RETR
    cap_stop
}

# PASV (227 with the address) instead of EPSV
rec_ftp-pasv-21() {
    vsftpd_start
    cap_start ftp-pasv-21 tcp port 21 or tcp port 50000
    cli curl -sS --disable-epsv "ftp://$CAPUSER:$CAPPASS@$SIP/" >/dev/null
    cli curl -sS --disable-epsv "ftp://$CAPUSER:$CAPPASS@$SIP/readme.txt" >/dev/null
    cap_stop
}

# active mode: the client says where to connect (PORT, then EPRT); the server connects from
# tcp/20 to the client's port
rec_ftp-active-21() {
    vsftpd_start
    cap_start ftp-active-21 tcp port 21 or tcp port 20
    cli curl -sS --ftp-port "$CIP" --disable-eprt "ftp://$CAPUSER:$CAPPASS@$SIP/" >/dev/null   # PORT
    cli curl -sS --ftp-port "$CIP" "ftp://$CAPUSER:$CAPPASS@$SIP/readme.txt" >/dev/null      # EPRT
    cap_stop
}

# anonymous FTP (RFC 1635): USER anonymous and an e-mail address as the password, no secret
rec_ftp-anonymous-21() {
    mkdir -p "$WORK/anon"; echo "portwatch public file" >"$WORK/anon/pub.txt"; chmod 755 "$WORK/anon"
    vsftpd_start 21 anonymous_enable=YES "anon_root=$WORK/anon"
    cap_start ftp-anonymous-21 tcp port 21 or tcp port 50000
    cli curl -sS "ftp://$SIP/" >/dev/null               # LIST, as curl's default anonymous user
    cli curl -sS "ftp://$SIP/pub.txt" >/dev/null        # RETR
    cap_stop
}

# --- databases, brokers, misc daemons -------------------------------------

rec_redis-6379() {
    bg_srv redis-server --port 6379 --bind "$SIP" --protected-mode no --save '' \
        --appendonly no --dir "$WORK" --daemonize no
    wait_port tcp 6379
    cap_start redis-6379 tcp port 6379
    cli redis-cli -h "$SIP" PING
    cli redis-cli -h "$SIP" SET portwatch:key "hello"
    cli redis-cli -h "$SIP" GET portwatch:key
    cap_stop
}

# pg_start HBA-LINE...: a throwaway cluster on SIP:5432 with TLS, the lines added to pg_hba.conf
pg_start() {
    local bin d=$WORK/pg line
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    mkdir -p "$d"; chmod 755 "$WORK"; chown postgres "$d"
    echo pw-secret >"$d/pwfile"; chown postgres "$d/pwfile"
    srv runuser -u postgres -- "$bin/initdb" -D "$d/data" -U postgres --pwfile="$d/pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    for line in "$@"; do echo "$line" >>"$d/data/pg_hba.conf"; done
    make_cert "$SIP"
    cp "$WORK/$SIP.crt" "$WORK/$SIP.key" "$d/"; chown postgres "$d/$SIP.crt" "$d/$SIP.key"; chmod 600 "$d/$SIP.key"
    srv runuser -u postgres -- "$bin/postgres" -D "$d/data" -c "listen_addresses=$SIP" \
        -c port=5432 -c "unix_socket_directories=$d" -c ssl=on -c "ssl_cert_file=$d/$SIP.crt" \
        -c "ssl_key_file=$d/$SIP.key" >>"$WORK/daemons.log" 2>&1 &
    wait_port tcp 5432
}

rec_postgresql-5432() {
    pg_start "host all all 10.77.0.0/24 scram-sha-256"
    cap_start postgresql-5432 tcp port 5432
    # in clear (the startup message first), then libpq's SSLRequest, the server's S and TLS
    PGPASSWORD=pw-secret cli psql "host=$SIP port=5432 user=postgres dbname=postgres sslmode=disable" \
        -Atc 'select version();' -c 'select 1+1;'
    PGPASSWORD=pw-secret cli psql "host=$SIP port=5432 user=postgres dbname=postgres sslmode=require" \
        -Atc 'select 1+1;'
    cap_stop
}

# pg_hba's "password" method: the server asks for the password in clear (AuthenticationCleartextPassword)
# and the client sends it so; then md5 and SCRAM, which send none
rec_postgresql-password-5432() {
    pg_start "host all pwclear 10.77.0.0/24 password" "host all pwmd5 10.77.0.0/24 md5" \
        "host all all 10.77.0.0/24 scram-sha-256"
    srv runuser -u postgres -- psql -h "$WORK/pg" -U postgres -qAtc \
        "SET password_encryption = 'md5'; CREATE ROLE pwmd5 LOGIN PASSWORD 'pw-secret';
         SET password_encryption = 'scram-sha-256'; CREATE ROLE pwclear LOGIN PASSWORD 'pw-secret';"
    cap_start postgresql-password-5432 tcp port 5432
    for user in pwclear pwmd5 postgres; do
        PGPASSWORD=pw-secret cli psql "host=$SIP port=5432 user=$user dbname=postgres sslmode=disable" -Atc 'select 1+1;'
    done
    cap_stop
}

rec_mysql-3306() {
    local d=$WORK/mysql
    mkdir -p "$d"
    mariadb-install-db --no-defaults --datadir="$d/data" --user=root \
        --auth-root-authentication-method=socket >/dev/null 2>&1
    bg_srv mariadbd --no-defaults --datadir="$d/data" --user=root --bind-address="$SIP" \
        --port=3306 --socket="$d/sock" --pid-file="$d/pid" --skip-log-bin --skip-name-resolve
    wait_port tcp 3306 300
    srv mariadb --no-defaults -S "$d/sock" -u root \
        -e "CREATE USER 'pw'@'%' IDENTIFIED BY 'pw-secret'; CREATE DATABASE pwdb; GRANT ALL ON pwdb.* TO 'pw'@'%';"
    cap_start mysql-3306 tcp port 3306
    cli mariadb --no-defaults -h "$SIP" -P 3306 -u pw -ppw-secret --skip-ssl pwdb \
        -e 'SELECT VERSION(); CREATE TABLE t (id INT); INSERT INTO t VALUES (42); SELECT * FROM t;'
    cap_stop
}

rec_mqtt-1883() {
    printf 'listener 1883 %s\nallow_anonymous true\npersistence false\nlog_dest stderr\n' "$SIP" >"$WORK/mosquitto.conf"
    bg_srv mosquitto -c "$WORK/mosquitto.conf"
    wait_port tcp 1883
    cap_start mqtt-1883 tcp port 1883
    cli mosquitto_sub -h "$SIP" -t portwatch/test -C 1 -W 10 -i pw-sub &
    local sub=$!
    sleep 0.5
    cli mosquitto_pub -h "$SIP" -t portwatch/test -m 'hello mqtt' -q 1 -i pw-pub
    wait "$sub"
    cap_stop
}

rec_ntp-123() {
    cat >"$WORK/chrony-srv.conf" <<EOF
local stratum 8
allow 10.77.0.0/24
bindaddress $SIP
cmdport 0
pidfile $WORK/chronyd-srv.pid
EOF
    # -x: never touch the host clock
    bg_srv chronyd -d -x -f "$WORK/chrony-srv.conf"
    wait_port udp 123
    cap_start ntp-123 udp port 123
    cli chronyd -Q -t 20 -f /dev/null "server $SIP iburst maxsamples 4" "pidfile $WORK/chronyd-cli.pid" "cmdport 0" 2>&1 || true
    cap_stop
}

rec_snmp-161() {
    printf 'rocommunity public 10.77.0.0/24\nsysLocation portwatch-lab\nsysContact noc@example.test\n' >"$WORK/snmpd.conf"
    bg_srv snmpd -f -Lo -C -c "$WORK/snmpd.conf" -p "$WORK/snmpd.pid" "udp:$SIP:161"
    wait_port udp 161
    cap_start snmp-161 udp port 161
    cli snmpget -v2c -c public -On "$SIP" 1.3.6.1.2.1.1.1.0 1.3.6.1.2.1.1.5.0 1.3.6.1.2.1.1.6.0
    cli snmpwalk -v2c -c public -On "$SIP" 1.3.6.1.2.1.1 >/dev/null
    cli snmpget -v1 -c public -On "$SIP" 1.3.6.1.2.1.1.3.0
    cap_stop
}

rec_tftp-69() {
    mkdir -p "$WORK/tftp"; echo "portwatch tftp test file" >"$WORK/tftp/hello.txt"
    chmod 755 "$WORK" "$WORK/tftp"; chmod 644 "$WORK/tftp/hello.txt"
    bg_srv in.tftpd -L -s -a "$SIP:69" "$WORK/tftp"
    wait_port udp 69
    cap_start tftp-69 udp
    (cd "$WORK" && cli tftp -m octet "$SIP" -c get hello.txt "$WORK/hello.got")
    cap_stop
}

rec_rsync-873() {
    mkdir -p "$WORK/rsync/pub"; echo "portwatch rsync test file" >"$WORK/rsync/pub/hello.txt"
    cat >"$WORK/rsync/rsyncd.conf" <<EOF
use chroot = no
uid = root
gid = root
pid file = $WORK/rsync/rsyncd.pid
[pub]
    path = $WORK/rsync/pub
    read only = yes
    comment = portwatch test module
EOF
    bg_srv rsync --daemon --no-detach --config="$WORK/rsync/rsyncd.conf" --address="$SIP" --port=873
    wait_port tcp 873
    cap_start rsync-873 tcp port 873
    cli rsync "rsync://$SIP/"
    cli rsync -a "rsync://$SIP/pub/" "$WORK/rsync-out/"
    cap_stop
}

rec_syslog-514() {
    cat >"$WORK/rsyslog.conf" <<EOF
module(load="imudp")
input(type="imudp" address="$SIP" port="514")
*.* $WORK/syslog.log
EOF
    bg_srv rsyslogd -n -f "$WORK/rsyslog.conf" -i "$WORK/rsyslogd.pid"
    wait_port udp 514
    cap_start syslog-514 udp port 514
    cli logger --server "$SIP" --port 514 --udp --rfc3164 -t portwatch -p auth.notice "test message rfc3164"
    cli logger --server "$SIP" --port 514 --udp --rfc5424 -t portwatch -p user.info "test message rfc5424"
    cli logger --server "$SIP" --port 514 --udp -t portwatch -p authpriv.warning "test message, default format"
    cap_stop
}

rec_radius-1812() {
    # The package's configuration, copied: logs, accounting detail files and the pid file stay
    # in $WORK, the server keeps root's rights (it reads $WORK), and one client and one user.
    cp -a /etc/freeradius/3.0 "$WORK/raddb"
    mkdir -p "$WORK/radlog" "$WORK/radrun"
    sed -i -e "s|^logdir = .*|logdir = $WORK/radlog|" -e "s|^run_dir = .*|run_dir = $WORK/radrun|" \
        -e 's/^\(\s*\)\(user\|group\) = freerad/\1# \2 = freerad/' "$WORK/raddb/radiusd.conf"
    printf 'client pwlab {\n\tipaddr = 10.77.0.0/24\n\tsecret = portwatch-secret\n}\n' >>"$WORK/raddb/clients.conf"
    { echo 'pwuser Cleartext-Password := "pwpass"'; cat /etc/freeradius/3.0/mods-config/files/authorize; } \
        >"$WORK/raddb/mods-config/files/authorize"
    bg_srv freeradius -f -l stdout -d "$WORK/raddb"
    wait_port udp 1812
    wait_port udp 1813
    cap_start radius-1812 udp port 1812 or udp port 1813
    local secret=portwatch-secret
    # PAP accepted, a wrong password rejected (after FreeRADIUS's 1 s reject delay), CHAP accepted,
    # accounting Start and Stop, and a Status-Server.
    echo 'User-Name = pwuser, User-Password = pwpass, NAS-Port = 3' | cli radclient -x "$SIP:1812" auth "$secret"
    echo 'User-Name = pwuser, User-Password = wrong' | cli radclient -x "$SIP:1812" auth "$secret" || true
    echo 'User-Name = pwuser, CHAP-Password = pwpass' | cli radclient -x "$SIP:1812" auth "$secret"
    echo 'User-Name = pwuser, Acct-Status-Type = Start, Acct-Session-Id = 4d2e01, NAS-Port = 3' \
        | cli radclient -x "$SIP:1813" acct "$secret"
    echo 'User-Name = pwuser, Acct-Status-Type = Stop, Acct-Session-Id = 4d2e01, Acct-Session-Time = 42' \
        | cli radclient -x "$SIP:1813" acct "$secret"
    echo 'Message-Authenticator = 0x00' | cli radclient -x "$SIP:1812" status "$secret"
    cap_stop
}

# HTTP/3 over QUIC: Debian 12 packages no QUIC server or client, so aioquic (PyPI, installed in a
# throwaway venv outside the namespaces) runs both ends (quic_h3.py)
rec_quic-443() {
    local py name=quic.example.test
    py=$(pypi_venv aioquic 'aioquic>=1.2')
    make_cert "$name"
    bg_srv "$py" "$HERE/quic_h3.py" serve --cert "$WORK/$name.crt" --key "$WORK/$name.key" "$SIP" "$SIP6"
    wait_port udp 443
    cap_start quic-443 udp port 443
    cli "$py" "$HERE/quic_h3.py" get "$SIP" "$name" / /missing
    cli "$py" "$HERE/quic_h3.py" get "$SIP6" "$name" /
    cap_stop
}

# OpenVPN 2.6 in TLS mode between two peers with no tun device (--dev null): the control channel's
# hard resets and TLS handshake, then the data channel's keepalive pings. Five sessions: UDP plain,
# with tls-crypt and with tls-auth (HMAC-SHA256); TCP plain and with tls-crypt.
ovpn_pki() {
    [ -f "$WORK/ovpn/ca.crt" ] && return 0
    mkdir -p "$WORK/ovpn"
    local d=$WORK/ovpn n
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
        -subj "/CN=portwatch-capture-ca" -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
    for n in server client; do
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=ovpn-$n" \
            -keyout "$d/$n.key" -out "$d/$n.csr" 2>/dev/null
        printf 'keyUsage=digitalSignature\nextendedKeyUsage=%s\n' \
            "$([ $n = server ] && echo serverAuth || echo clientAuth)" >"$d/$n.ext"
        openssl x509 -req -in "$d/$n.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 30 \
            -extfile "$d/$n.ext" -out "$d/$n.crt" 2>/dev/null
    done
    openvpn --genkey tls-crypt "$d/tc.key"
    openvpn --genkey secret "$d/ta.key"
}

# ovpn_session PROTO [EXTRA...]: one server and one client, about three seconds of keepalives
ovpn_session() {
    local proto=$1; shift
    local d=$WORK/ovpn common=(--dev null --verb 3 --ping 1 --ca "$WORK/ovpn/ca.crt" --cipher AES-256-GCM)
    bg_srv openvpn "${common[@]}" --tls-server --dh none --cert "$d/server.crt" --key "$d/server.key" \
        --local "$SIP" --lport 1194 --proto "${proto/tcp/tcp-server}" "$@"
    wait_port "${proto}" 1194
    (cli timeout 4 openvpn "${common[@]}" --tls-client --cert "$d/client.crt" --key "$d/client.key" \
        --remote "$SIP" 1194 --proto "${proto/tcp/tcp-client}" --nobind --remote-cert-tls server "$@" \
        >>"$WORK/daemons.log" 2>&1) || true
    srv_kill openvpn
}

# srv_kill COMM: stop the processes named COMM in the server namespace (tcpdump, there too, runs on)
srv_kill() {
    local pid
    for pid in $(ip netns pids "$NS_S"); do
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && kill "$pid" 2>/dev/null || true
    done
    sleep 0.5
}

rec_openvpn-1194() {
    ovpn_pki
    cap_start openvpn-1194 port 1194
    ovpn_session udp
    ovpn_session udp --tls-crypt "$WORK/ovpn/tc.key"
    ovpn_session udp --tls-auth "$WORK/ovpn/ta.key" --auth SHA256
    ovpn_session tcp
    ovpn_session tcp --tls-crypt "$WORK/ovpn/tc.key"
    cap_stop
}

# STUN and TURN: coturn with long-term credentials; a STUN Binding, then TURN allocations over UDP
# and TCP relaying to a peer (turnutils_peer) on the server's own address
rec_stun-3478() {
    bg_srv turnserver -n --listening-ip "$SIP" --relay-ip "$SIP" --listening-port 3478 --no-tls --no-dtls \
        --lt-cred-mech --user pwuser:pwpass --realm example.test --allow-loopback-peers --no-cli \
        --log-file stdout --simple-log --pidfile "$WORK/turnserver.pid"
    bg_srv turnutils_peer -L "$SIP" -p 3480
    wait_port udp 3478
    wait_port tcp 3478
    cap_start stun-3478 port 3478
    cli turnutils_stunclient "$SIP" >/dev/null
    cli timeout 10 turnutils_uclient -u pwuser -w pwpass -e "$SIP" -r 3480 -n 5 -m 1 "$SIP" >/dev/null 2>&1 || true
    cli timeout 10 turnutils_uclient -t -u pwuser -w pwpass -e "$SIP" -r 3480 -n 5 -m 1 "$SIP" >/dev/null 2>&1 || true
    cap_stop
}

# DTLS 1.2: openssl s_server -dtls and s_client, a cookie exchange (HelloVerifyRequest) first
rec_dtls-4433() {
    make_cert dtls.example.test
    bg_srv openssl s_server -dtls -accept "$SIP:4433" -cert "$WORK/dtls.example.test.crt" \
        -key "$WORK/dtls.example.test.key" -quiet
    wait_port udp 4433
    cap_start dtls-4433 udp port 4433
    echo hello | cli timeout 3 openssl s_client -dtls -connect "$SIP:4433" -servername dtls.example.test \
        -quiet >/dev/null 2>&1 || true
    cap_stop
}

# Kerberos: an MIT KDC with a throwaway realm EXAMPLE.TEST (pre-authentication required); kinit,
# kvno for a service ticket and a wrong password over UDP, then kinit over TCP
rec_kerberos-88() {
    local k=$WORK/krb
    mkdir -p "$k"
    cat >"$k/krb5.conf" <<EOF
[libdefaults]
    default_realm = EXAMPLE.TEST
    dns_lookup_kdc = false
[realms]
    EXAMPLE.TEST = {
        kdc = $SIP
    }
EOF
    # the same realm over TCP: any request longer than one byte goes by TCP
    sed 's/^\[libdefaults\]$/&\n    udp_preference_limit = 1/' "$k/krb5.conf" >"$k/krb5-tcp.conf"
    cat >"$k/kdc.conf" <<EOF
[kdcdefaults]
    kdc_listen = $SIP:88
    kdc_tcp_listen = $SIP:88
[realms]
    EXAMPLE.TEST = {
        database_name = $k/principal
        key_stash_file = $k/stash
        acl_file = $k/kadm5.acl
    }
EOF
    local env=(env KRB5_CONFIG="$k/krb5.conf" KRB5_KDC_PROFILE="$k/kdc.conf" KRB5CCNAME="$k/ccache")
    "${env[@]}" kdb5_util create -s -r EXAMPLE.TEST -P "$CAPPASS-master" >/dev/null
    "${env[@]}" kadmin.local -q "addprinc +requires_preauth -pw $CAPPASS $CAPUSER" >/dev/null 2>&1
    "${env[@]}" kadmin.local -q "addprinc -randkey host/srv.example.test" >/dev/null 2>&1
    bg_srv "${env[@]}" krb5kdc -n
    wait_port udp 88
    wait_port tcp 88
    cap_start kerberos-88 port 88
    echo "$CAPPASS" | cli "${env[@]}" kinit "$CAPUSER" >/dev/null
    cli "${env[@]}" kvno host/srv.example.test >/dev/null
    echo wrong | cli "${env[@]}" kinit "$CAPUSER" >/dev/null 2>&1 || true
    echo "$CAPPASS" | cli "${env[@]}" KRB5_CONFIG="$k/krb5-tcp.conf" kinit "$CAPUSER" >/dev/null
    cap_stop
}

# samba_share DIR [GLOBAL_LINE]: DIR/smb.conf for a standalone smbd with one read-only guest share
# holding hello.txt (smb-445, smb-139), GLOBAL_LINE added to [global] after the interfaces.
samba_share() {
    local d=$1 extra=${2:+$'\n'"    $2"}
    mkdir -p "$d"/{share,lock,state,cache,private,run,log}
    echo hello >"$d/share/hello.txt"
    cat >"$d/smb.conf" <<EOF
[global]
    workgroup = PWLAB
    netbios name = PWSRV
    server role = standalone server
    map to guest = Bad User
    interfaces = $SIP/24
    bind interfaces only = yes$extra
$(samba_dirs "$d")
    log file = $d/log/%m.log
[share]
    path = $d/share
    guest ok = yes
    read only = yes
    # the guest maps to nobody, who cannot enter $WORK (mode 700)
    force user = root
EOF
}

# SMB and NetBIOS: Samba's smbd and nmbd with one guest share; smbclient lists the shares and
# reads a file over SMB2/3 on 445 and on 139 (NetBIOS session service), asks for SMB1 (refused),
# and nmblookup queries a name and a node status
rec_smb-445() {
    local d=$WORK/smb
    samba_share "$d"
    # each in a session of its own: on exit they signal their whole process group
    bg_srv setsid smbd -F --no-process-group -s "$d/smb.conf"
    bg_srv setsid nmbd -F --no-process-group -s "$d/smb.conf"
    wait_port tcp 445
    wait_port udp 137
    cap_start smb-445 port 445 or port 139 or port 137 or port 138
    cli smbclient -L "//$SIP" -N -s "$d/smb.conf" >/dev/null 2>&1
    cli smbclient "//$SIP/share" -N -s "$d/smb.conf" -c 'get hello.txt /dev/null' >/dev/null 2>&1
    cli smbclient "//$SIP/share" -N -p 139 -s "$d/smb.conf" -c 'ls' >/dev/null 2>&1
    cli smbclient "//$SIP/share" -N -m NT1 --option='client min protocol=NT1' -s "$d/smb.conf" -c ls \
        >/dev/null 2>&1 || true
    cli nmblookup -U "$SIP" --recursion PWSRV >/dev/null
    cli nmblookup -A "$SIP" >/dev/null
    cap_stop
}

# DHCP and DHCPv6: dnsmasq's server on the pair, dhclient for one lease of each (no script runs:
# the client's address is not configured, only leased)
rec_dhcp-67() {
    bg_srv dnsmasq -k --conf-file=/dev/null --port=0 --interface=pw-s --bind-interfaces --pid-file= \
        --dhcp-authoritative --dhcp-leasefile="$WORK/dnsmasq.leases" \
        --dhcp-range=10.77.0.100,10.77.0.150,1h --dhcp-range=fd77::100,fd77::1ff,64,1h --enable-ra
    wait_port udp 67
    wait_port udp 547
    cap_start dhcp-67 udp port 67 or udp port 68 or udp port 546 or udp port 547
    cli timeout 10 dhclient -1 -d -sf /bin/true -lf "$WORK/dhclient.leases" -pf "$WORK/dhclient.pid" pw-c \
        >/dev/null 2>&1 || true
    cli timeout 10 dhclient -6 -1 -d -sf /bin/true -lf "$WORK/dhclient6.leases" -pf "$WORK/dhclient6.pid" pw-c \
        >/dev/null 2>&1 || true
    cap_stop
}

# mDNS: avahi-daemon publishing pwsrv.local (no D-Bus); dig asks over multicast and unicast
# (RFC 6762 5.1 one-shot queries); multicast routes on both ends for 224.0.0.251
rec_mdns-5353() {
    printf '[server]\nhost-name=pwsrv\ndomain-name=local\nallow-interfaces=pw-s\nenable-dbus=no\n[publish]\npublish-workstation=yes\n' \
        >"$WORK/avahi.conf"
    srv ip route add 224.0.0.0/4 dev pw-s
    cli ip route add 224.0.0.0/4 dev pw-c
    cap_start mdns-5353 udp port 5353
    bg_srv avahi-daemon --no-drop-root --no-chroot --no-rlimits --no-proc-title -f "$WORK/avahi.conf"
    wait_port udp 5353
    sleep 3     # the daemon's probes and announcements
    cli dig +time=2 +tries=1 @224.0.0.251 -p 5353 pwsrv.local A >/dev/null || true
    cli dig +time=2 +tries=1 @"$SIP" -p 5353 pwsrv.local AAAA >/dev/null || true
    cli dig +time=2 +tries=1 @224.0.0.251 -p 5353 _workstation._tcp.local PTR >/dev/null || true
    cap_stop
}

# llmnrd answering for the name pwsrv (RFC 4795); llmnr-query asks the IPv4 group for A and ANY,
# the IPv6 group for AAAA, and the IPv4 group for a name nobody has (no answer)
rec_llmnr-5355() {
    srv ip route add 224.0.0.0/4 dev pw-s
    cli ip route add 224.0.0.0/4 dev pw-c
    cap_start llmnr-5355 udp port 5355
    bg_srv llmnrd -H pwsrv -i pw-s -6
    wait_port udp 5355
    cli llmnr-query -I pw-c -T A pwsrv >/dev/null || true
    cli llmnr-query -I pw-c pwsrv >/dev/null || true
    cli llmnr-query -6 -I pw-c -T AAAA pwsrv >/dev/null || true
    cli llmnr-query -I pw-c -T A nosuchhost >/dev/null || true
    cap_stop
}

# minidlna (a UPnP MediaServer) announcing itself with NOTIFY to 239.255.255.250; upnpc's
# discovery sends M-SEARCH to the group and gets the server's answers by unicast
rec_ssdp-1900() {
    mkdir -p "$WORK/dlna/media" "$WORK/dlna/db"
    cat >"$WORK/dlna/minidlna.conf" <<EOF
network_interface=pw-s
listening_ip=$SIP
port=8200
media_dir=$WORK/dlna/media
db_dir=$WORK/dlna/db
log_dir=$WORK/dlna
friendly_name=pwsrv
notify_interval=5
EOF
    srv ip route add 224.0.0.0/4 dev pw-s
    cli ip route add 224.0.0.0/4 dev pw-c
    cap_start ssdp-1900 udp port 1900 or udp src port 1900 or udp dst port 1900
    bg_srv minidlnad -f "$WORK/dlna/minidlna.conf" -P "$WORK/dlna/minidlna.pid" -d
    wait_port tcp 8200
    sleep 2     # its first NOTIFY announcements
    cli upnpc -m pw-c -l >/dev/null 2>&1 || true
    cap_stop
}

# git daemon exporting one bare repository; git clones it over git:// with protocol version 0
# (the upload-pack request, then the refs advertisement) and version 2 (ls-refs and fetch commands)
rec_git-9418() {
    local g=$WORK/git
    mkdir -p "$g"
    git init -q --bare --initial-branch=main "$g/repo.git"
    git init -q "$g/work"
    echo "portwatch git test" >"$g/work/README"
    git -C "$g/work" add README
    git -C "$g/work" -c user.name=pw -c user.email=pw@example.test commit -q -m "first"
    git -C "$g/work" push -q "$g/repo.git" HEAD:refs/heads/main
    bg_srv git daemon --reuseaddr --listen="$SIP" --port=9418 --base-path="$g" --export-all "$g"
    wait_port tcp 9418
    cap_start git-9418 tcp port 9418
    cli git -c protocol.version=0 clone -q "git://$SIP/repo.git" "$g/clone0"
    cli git -c protocol.version=2 clone -q "git://$SIP/repo.git" "$g/clone2"
    cap_stop
}

# strongSwan: charon with a swanctl connection (certificates from a throwaway CA, a pool of
# virtual addresses) answers charon-cmd's IKEv2 exchange: IKE_SA_INIT on 500, then (both support
# MOBIKE) IKE_AUTH encrypted on 4500 behind the non-ESP marker. A kernel without XFRM refuses the
# child SA; the IKE SA is established, then deleted when charon-cmd stops.
rec_ike-500() {
    local d=$WORK/ike
    mkdir -p "$d"
    pki --gen --type ecdsa --size 256 --outform pem >"$d/ca.key"
    pki --self --ca --lifetime 30 --in "$d/ca.key" --dn "CN=portwatch test CA" --outform pem >"$d/ca.crt"
    local who
    for who in srv cli; do
        pki --gen --type rsa --size 2048 --outform pem >"$d/$who.key"
        local id=$SIP
        [ "$who" = cli ] && id=client.example.test
        pki --pub --in "$d/$who.key" | pki --issue --lifetime 30 --cacert "$d/ca.crt" --cakey "$d/ca.key" \
            --dn "CN=$id" --san "$id" --outform pem >"$d/$who.crt"
    done
    cat >"$d/strongswan.conf" <<EOF
charon {
    install_routes = no
    plugins {
        vici {
            socket = unix://$d/charon.vici
        }
        kernel-libipsec {
            load = no
        }
        forecast {
            load = no
        }
    }
    filelog {
        log {
            path = $d/charon.log
            default = 1
            flush_line = yes
        }
    }
}
EOF
    # the client: IKE and ESP through the kernel (xfrm), not a TUN device of its own
    cat >"$d/client.conf" <<EOF
charon-cmd {
    port = 500
    port_nat_t = 4500
    install_routes = no
    plugins {
        kernel-libipsec {
            load = no
        }
    }
}
EOF
    cat >"$d/swanctl.conf" <<EOF
connections {
    pw {
        version = 2
        local_addrs = $SIP
        local {
            auth = pubkey
            certs = $d/srv.crt
            id = $SIP
        }
        remote {
            auth = pubkey
            cacerts = $d/ca.crt
        }
        pools = pw
        children {
            pw {
                local_ts = $SIP/32
            }
        }
    }
}
pools {
    pw {
        addrs = 10.78.0.0/24
    }
}
EOF
    # swanctl reads private keys from private/ beside the swanctl.conf it loads
    mkdir -p "$d/private"
    cp "$d/srv.key" "$d/private/srv.key"
    STRONGSWAN_CONF=$d/strongswan.conf bg_srv /usr/lib/ipsec/charon
    wait_port udp 500
    for _ in $(seq 50); do [ -S "$d/charon.vici" ] && break; sleep 0.1; done
    srv swanctl --load-all --uri "unix://$d/charon.vici" --file "$d/swanctl.conf" >/dev/null
    cap_start ike-500 udp port 500 or udp port 4500
    (STRONGSWAN_CONF=$d/client.conf cli timeout 8 charon-cmd --host "$SIP" --identity client.example.test --remote-identity "$SIP" \
        --cert "$d/ca.crt" --cert "$d/cli.crt" --rsa "$d/cli.key" --profile ikev2-pub \
        >>"$WORK/daemons.log" 2>&1 &)
    sleep 9     # charon-cmd ends at its timeout and deletes the SAs
    cap_stop
}

# LDAP: slapd with one database (rootdn and password in slapd.conf); an anonymous search of the
# root DSE, then simple binds in clear: the right password and a wrong one
rec_ldap-389() {
    mkdir -p "$WORK/ldap/db"
    cat >"$WORK/ldap/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $WORK/ldap/slapd.pid
database mdb
suffix "dc=example,dc=test"
rootdn "cn=admin,dc=example,dc=test"
rootpw $CAPPASS
directory $WORK/ldap/db
EOF
    bg_srv slapd -d 0 -h "ldap://$SIP/" -f "$WORK/ldap/slapd.conf"
    wait_port tcp 389
    cap_start ldap-389 tcp port 389
    cli ldapsearch -x -H "ldap://$SIP" -b '' -s base namingContexts >/dev/null
    cli ldapwhoami -x -H "ldap://$SIP" -D cn=admin,dc=example,dc=test -w "$CAPPASS" >/dev/null
    cli ldapwhoami -x -H "ldap://$SIP" -D cn=admin,dc=example,dc=test -w wrong >/dev/null 2>&1 || true
    cap_stop
}

# dante between a client and a small HTTP server: SOCKS 5 without authentication, SOCKS 5 with an
# RFC 1929 username/password login (the throwaway user), and SOCKS 4
rec_socks-1080() {
    ensure_user
    mkdir -p "$WORK/socks/www"
    echo "through socks" >"$WORK/socks/www/index.html"
    bg_srv python3 -m http.server 8080 --bind "$SIP" --directory "$WORK/socks/www"
    cat >"$WORK/socks/danted.conf" <<EOF
logoutput: $WORK/socks/danted.log
internal: $SIP port = 1080
external: $SIP
clientmethod: none
socksmethod: username none
user.privileged: root
user.unprivileged: nobody
client pass { from: 10.77.0.0/24 to: 0.0.0.0/0 }
socks pass { from: 10.77.0.0/24 to: 0.0.0.0/0 }
EOF
    bg_srv danted -f "$WORK/socks/danted.conf" -p "$WORK/socks/danted.pid"
    wait_port tcp 1080
    wait_port tcp 8080
    cap_start socks-1080 tcp port 1080
    cli curl -sS --socks5 "$SIP:1080" "http://$SIP:8080/" >/dev/null
    cli curl -sS --proxy "socks5://$CAPUSER:$CAPPASS@$SIP:1080" "http://$SIP:8080/" >/dev/null
    cli curl -sS --socks4 "$SIP:1080" "http://$SIP:8080/" >/dev/null
    cap_stop
}

# prosody, its domain the server's address (no DNS in the pair), a throwaway account; sendxmpp
# logs in and sends a message to itself: once with STARTTLS, once in clear (the server allows
# SASL PLAIN without TLS, as a misconfigured one would)
rec_xmpp-5222() {
    mkdir -p "$WORK/prosody/data"
    make_cert "$SIP"
    cat >"$WORK/prosody/prosody.cfg.lua" <<EOF
run_as_root = true
pidfile = "$WORK/prosody/prosody.pid"
data_path = "$WORK/prosody/data"
log = { info = "$WORK/prosody/prosody.log" }
interfaces = { "$SIP" }
c2s_ports = { 5222 }
s2s_ports = { }
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping" }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
VirtualHost "$SIP"
    ssl = { key = "$WORK/$SIP.key"; certificate = "$WORK/$SIP.crt" }
EOF
    srv prosodyctl --config "$WORK/prosody/prosody.cfg.lua" register "$CAPUSER" "$SIP" "$CAPPASS" >/dev/null
    bg_srv prosody --config "$WORK/prosody/prosody.cfg.lua" -F
    wait_port tcp 5222
    cap_start xmpp-5222 tcp port 5222
    # (sendxmpp's XML::Stream warns about uninitialised values on every run: its log, not ours)
    echo "over starttls" | cli sendxmpp -u "$CAPUSER" -p "$CAPPASS" -j "$SIP" -t -n "$CAPUSER@$SIP" \
        2>>"$WORK/daemons.log"
    echo "in clear" | cli sendxmpp -u "$CAPUSER" -p "$CAPPASS" -j "$SIP" "$CAPUSER@$SIP" 2>>"$WORK/daemons.log"
    cap_stop
}

rec_sip-5060() {
    (cd "$WORK" && srv sipp -sn uas -i "$SIP" -p 5060 -bg -nostdin >/dev/null 2>&1) || true
    wait_port udp 5060
    cap_start sip-5060 udp port 5060
    (cd "$WORK" && cli sipp -sn uac "$SIP:5060" -i "$CIP" -p 5060 -m 1 -nostdin -timeout 15 >/dev/null 2>&1) || true
    cap_stop
}

# a call with media: sipp's uac_pcap scenario offers RTP in its INVITE's SDP and plays G.711
# (sipp's own g711a.pcap) to the answer's address; the UAS (-rtp_echo) sends it back
rec_sip-call-5060() {
    mkdir -p "$WORK/sipp/pcap"
    ln -sf /usr/share/sip-tester/*.pcap "$WORK/sipp/pcap/"   # the scenario plays g711a and DTMF
    (cd "$WORK/sipp" && srv sipp -sn uas -i "$SIP" -p 5060 -mp 7000 -rtp_echo -bg -nostdin >/dev/null 2>&1) || true
    wait_port udp 5060
    cap_start sip-call-5060 udp
    (cd "$WORK/sipp" && cli sipp -sn uac_pcap "$SIP:5060" -i "$CIP" -p 5060 -mp 6000 -m 1 -nostdin -timeout 30 \
        >/dev/null 2>&1) || true
    cap_stop
}

rec_finger-79() {
    inetd_start "$SIP:finger stream tcp nowait nobody /usr/sbin/in.fingerd in.fingerd"
    wait_port tcp 79
    cap_start finger-79 tcp port 79
    cli finger "nobody@$SIP"
    cli finger "@$SIP" || true
    cap_stop
}

rec_whois-43() {
    # Debian has no whois daemon: a tiny line-oriented server stands in
    cat >"$WORK/whoisd.py" <<'EOF'
import socketserver, sys
class H(socketserver.StreamRequestHandler):
    def handle(self):
        q = self.rfile.readline(512).decode("ascii", "replace").strip()
        self.wfile.write((
            "% portwatch test whois server\r\n\r\n"
            f"domain:       {q}\r\nstatus:       active\r\n"
            "registrar:    Example Registrar\r\nnserver:      ns1.example.test\r\n").encode())
socketserver.TCPServer.allow_reuse_address = True
socketserver.TCPServer((sys.argv[1], 43), H).serve_forever()
EOF
    bg_srv python3 "$WORK/whoisd.py" "$SIP"
    wait_port tcp 43
    cap_start whois-43 tcp port 43
    cli whois -h "$SIP" example.test
    cli whois -h "$SIP" portwatch.example.test >/dev/null
    cap_stop
}

rec_irc-6667() {
    cat >"$WORK/ngircd.conf" <<EOF
[Global]
    Name = irc.example.test
    Info = portwatch test ircd
    Listen = $SIP
    Ports = 6667
    PidFile = $WORK/ngircd.pid
    MotdPhrase = "portwatch test server"
    ServerUID = nobody
    ServerGID = nogroup
[Options]
    DNS = no
    Ident = no
    PAM = no
EOF
    bg_srv ngircd -n -f "$WORK/ngircd.conf"
    wait_port tcp 6667
    cat >"$WORK/ircclient.py" <<'EOF'
import socket, sys, time
s = socket.create_connection((sys.argv[1], 6667), timeout=10)
f = s.makefile("rb")
def send(line): s.sendall(line.encode() + b"\r\n")
send("NICK pwtest"); send("USER pwtest 0 * :portwatch test client")
while True:
    line = f.readline().decode(errors="replace")
    if not line: sys.exit("closed")
    if line.startswith("PING"): send("PONG" + line[4:].rstrip())
    if " 376 " in line or " 422 " in line: break   # end of MOTD
send("JOIN #portwatch"); send("PRIVMSG #portwatch :hello from the capture script")
send("QUIT :bye")
while f.readline(): pass
print("irc ok")
EOF
    cap_start irc-6667 tcp port 6667
    cli python3 "$WORK/ircclient.py" "$SIP"
    cap_stop
}

# --- trusted source ports (privileged-source-port) --------------------------

# An ordinary HTTP client that binds port 999 (root only, as `nc -p 999` would), then the same
# client from an ephemeral port: only the first is a finding.
rec_http-privport-80() {
    nginx_start "listen $SIP:80;"
    wait_port tcp 80
    cap_start http-privport-80 tcp port 80
    cli curl -sS -A "$UA" -H 'Host: www.example.test' --local-port 999 "http://$SIP/" -o /dev/null
    cli curl -sS -A "$UA" -H 'Host: www.example.test' "http://$SIP/robots.txt" -o /dev/null
    cap_stop
}

# netkit in.rshd (rsh-server) behind a one-file inetd (accept, fork, socket on 0/1/2, exec: what
# inetd's "nowait" does), authenticating by .rhosts only: the package's PAM file, bound over
# /etc/pam.d (and a hosts file naming the two addresses over /etc/hosts) in the daemon's own mount
# namespace, so the host's setup neither matters nor changes. Clients: netkit rsh, which binds a reserved port as rcmd(3) does and gets a stderr
# connection back from the server's reserved port; then a python client sending rsh's first bytes
# ("stderr-port\0locuser\0remuser\0command\0", rshd(8)) from an unprivileged port, which in.rshd
# refuses. RSH_ROOT: where rsh-server's and rsh-client's files are (default: the installed
# packages; a `dpkg-deb -x` of both .debs works too).
rec_rsh-514() {
    local root=${RSH_ROOT:-} f
    for f in usr/sbin/in.rshd usr/bin/netkit-rsh etc/pam.d/rsh; do
        [ -e "$root/$f" ] || { log "missing $root/$f (apt-get install rsh-server rsh-client)"; return 1; }
    done
    ensure_user
    printf '%s root\n' "$CIP" >"$WORK/home/.rhosts"
    chown "$CAPUSER" "$WORK/home/.rhosts"; chmod 600 "$WORK/home/.rhosts"
    chmod 711 "$WORK"   # ruserok(3) reads ~/.rhosts as the user: the home must be reachable
    mkdir -p "$WORK/pam.d"; cp -a /etc/pam.d/. "$WORK/pam.d/"; cp "$root/etc/pam.d/rsh" "$WORK/pam.d/rsh"
    # in.rshd names its client (getnameinfo) before anything else; no DNS in the namespaces
    printf '127.0.0.1 localhost\n%s pw-srv.example.test\n%s pw-cli.example.test\n' "$SIP" "$CIP" >"$WORK/hosts"
    write_inetd1
    cat >"$WORK/rshclient.py" <<'PY'
import socket, sys
# rsh's first bytes from an unprivileged port: no stderr port, local user, remote user, command
s = socket.create_connection((sys.argv[1], 514))
s.sendall(b"0\0root\0" + sys.argv[2].encode() + b"\0id\0")
reply = b""
try:
    while chunk := s.recv(4096):
        reply += chunk
except ConnectionResetError:  # in.rshd exits at once on an unprivileged port, our bytes unread
    reply += b" (reset)"
print("rshd answered", reply)
PY
    bg_srv unshare -m sh -c "mount --bind '$WORK/pam.d' /etc/pam.d && mount --bind '$WORK/hosts' /etc/hosts &&
        exec python3 '$WORK/inetd1.py' $SIP 514 '$root/usr/sbin/in.rshd' in.rshd"
    wait_port tcp 514
    cap_start rsh-514 tcp
    cli "$root/usr/bin/netkit-rsh" -l "$CAPUSER" "$SIP" id
    cli "$root/usr/bin/netkit-rsh" -l "$CAPUSER" "$SIP" 'echo to stderr >&2'
    cli python3 "$WORK/rshclient.py" "$SIP" "$CAPUSER"
    cap_stop
}

rec_rdp-3389() {
    # xrdp's own login screen is as far as a session needs to go: X.224 Connection Request and
    # Confirm, then TLS (or standard RDP security) and MCS. No session manager, no X server on
    # the server side. The client draws into an Xvfb of its own namespace.
    cp /etc/xrdp/xrdp.ini "$WORK/xrdp.ini"
    mkdir -p /run/xrdp/sockdir
    bg_srv xrdp --nodaemon --port 3389 --config "$WORK/xrdp.ini"
    wait_port tcp 3389
    local dpy=:77
    cli Xvfb "$dpy" -nolisten tcp -screen 0 800x600x24 >>"$WORK/daemons.log" 2>&1 &
    for _ in $(seq 50); do [ -e "/tmp/.X11-unix/X${dpy#:}" ] && break; sleep 0.1; done
    cap_start rdp-3389 tcp port 3389
    # two FreeRDP sessions (it always sends a cookie: the user name, or the login name); then
    # the Connection Requests FreeRDP cannot be made to send, from a few lines of Python, to see
    # what the real server answers: an RDP_NEG_REQ with no cookie (mstsc with no user name hint),
    # and a bare CR (pre-5.0 clients: neither cookie nor RDP_NEG_REQ)
    local args
    for args in "/u:$CAPUSER /sec:tls" "/sec:tls"; do
        # shellcheck disable=SC2086
        DISPLAY=$dpy timeout 4 ip netns exec "$NS_C" xfreerdp /v:"$SIP":3389 /cert:ignore $args \
            /size:320x240 /bpp:8 /log-level:ERROR >>"$WORK/daemons.log" 2>&1 || true
    done
    cat >"$WORK/x224cr.py" <<'EOF'
import socket, sys
NEG_REQ = bytes([1, 0, 8, 0, 3, 0, 0, 0])   # TLS | CredSSP
for variable in (NEG_REQ, b""):
    tpdu = bytes([6 + len(variable), 0xE0, 0, 0, 0, 0, 0]) + variable
    s = socket.create_connection((sys.argv[1], 3389), timeout=5)
    s.sendall(bytes([3, 0]) + (4 + len(tpdu)).to_bytes(2, "big") + tpdu)
    print(s.recv(4096).hex())
    s.close()
EOF
    cli python3 "$WORK/x224cr.py" "$SIP" >>"$WORK/daemons.log" 2>&1 || true
    cap_stop
}

# memcached (UDP off, dropping to nobody) and libmemcached-tools: in the text protocol memcstat
# (stats), memccp (set), memccat (get), memcflush (flush_all); then memccp and memccat again with
# --binary (binary protocol: magic 0x80 requests, 0x81 responses)
rec_memcached-11211() {
    mkdir -p "$WORK/memc"; echo "portwatch memcached test value" >"$WORK/memc/pwkey"
    bg_srv memcached -u nobody -l "$SIP" -p 11211 -U 0 -m 16 -c 64 -t 1
    wait_port tcp 11211
    cap_start memcached-11211 tcp port 11211
    cli memcstat --servers="$SIP:11211" >/dev/null
    cli memccp --servers="$SIP:11211" --set "$WORK/memc/pwkey"
    cli memccat --servers="$SIP:11211" pwkey
    cli memcflush --servers="$SIP:11211"
    cli memccp --binary --servers="$SIP:11211" --set "$WORK/memc/pwkey"
    cli memccat --binary --servers="$SIP:11211" pwkey
    cap_stop
}

# nats-server (config under $WORK) and, as Debian packages no NATS client, a stand-in python3
# client speaking the NATS text protocol per its spec: a subscriber connection (INFO, CONNECT,
# SUB, PING/PONG) and a publisher connection (INFO, CONNECT, PUB, PING/PONG), then the
# subscriber reads the MSG the server delivers and UNSUBs
rec_nats-4222() {
    printf 'listen: "%s:4222"\nserver_name: portwatch-nats\n' "$SIP" >"$WORK/nats.conf"
    bg_srv nats-server -c "$WORK/nats.conf"
    wait_port tcp 4222
    cat >"$WORK/natscli.py" <<'EOF'
# Stand-in NATS client (Debian has no NATS client): the client protocol, per
# https://docs.nats.io/reference/reference-protocols/nats-protocol
import json, socket, sys
HOST, SUBJ = sys.argv[1], "portwatch.test"
CONNECT = json.dumps({"verbose": False, "pedantic": False, "name": "portwatch-capture"},
                     separators=(",", ":"))

def line(f):
    l = f.readline()
    if not l:
        raise SystemExit("nats: connection closed")
    return l.decode().rstrip("\r\n")

def session():   # INFO from the server, then CONNECT
    s = socket.create_connection((HOST, 4222), timeout=5)
    f = s.makefile("rb")
    info = line(f)
    assert info.startswith("INFO "), info
    s.sendall(f"CONNECT {CONNECT}\r\n".encode())
    return s, f

def ping(s, f):  # PING; skip anything else until PONG (-ERR aborts)
    s.sendall(b"PING\r\n")
    while True:
        l = line(f)
        if l == "PONG":
            return
        if l.startswith("-ERR"):
            raise SystemExit(l)

sub, subf = session()
sub.sendall(f"SUB {SUBJ} 1\r\n".encode())
ping(sub, subf)                   # the subscription is registered once PONG is back

pub, pubf = session()
payload = b"hello nats"
pub.sendall(f"PUB {SUBJ} {len(payload)}\r\n".encode() + payload + b"\r\n")
ping(pub, pubf)
pubf.close(); pub.close()

while True:                       # MSG <subject> <sid> <#bytes>, then the payload
    l = line(subf)
    if l.startswith("MSG "):
        n = int(l.split()[-1])
        print(l, subf.read(n + 2)[:n].decode())
        break
    if l == "PING":
        sub.sendall(b"PONG\r\n")
sub.sendall(b"UNSUB 1\r\n")
ping(sub, subf)
subf.close(); sub.close()
EOF
    cap_start nats-4222 tcp port 4222
    cli python3 "$WORK/natscli.py" "$SIP"
    cap_stop
}

# zabbix_agentd (passive checks only, config under $WORK) and, as Debian packages no zabbix_get,
# a stand-in python3 client sending the passive-check request per the Zabbix protocol
# ("ZBXD", flags 0x01, 4-byte little-endian data length + 4 reserved bytes, then the key),
# one connection per key; the agent answers in the same framing and closes
rec_zabbix-10050() {
    cat >"$WORK/zabbix_agentd.conf" <<EOF
Server=$CIP
ServerActive=
ListenIP=$SIP
ListenPort=10050
Hostname=portwatch-agent
LogFile=$WORK/zabbix_agentd.log
PidFile=$WORK/zabbix_agentd.pid
AllowRoot=1
StartAgents=2
EOF
    bg_srv zabbix_agentd -f -c "$WORK/zabbix_agentd.conf"
    wait_port tcp 10050
    cat >"$WORK/zbxget.py" <<'EOF'
# Stand-in zabbix_get (Debian has no zabbix_get): a passive check per the Zabbix protocol,
# https://www.zabbix.com/documentation/6.0/en/manual/appendix/protocols/header_datalen
import socket, struct, sys
host, keys = sys.argv[1], sys.argv[2:]
for key in keys:
    data = key.encode()
    s = socket.create_connection((host, 10050), timeout=5)
    s.sendall(b"ZBXD\x01" + struct.pack("<II", len(data), 0) + data)
    buf = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    s.close()
    assert buf[:5] == b"ZBXD\x01", buf[:16]
    n = struct.unpack("<I", buf[5:9])[0]
    print(key, "=", buf[13:13 + n].decode(errors="replace"))
EOF
    cap_start zabbix-10050 tcp port 10050
    cli python3 "$WORK/zbxget.py" "$SIP" agent.ping agent.version agent.hostname
    cap_stop
}

# libcoap's example server (coap-server-notls), one instance per address (-A takes one): GETs of
# /.well-known/core (RFC 6690 link format), / and /time over IPv4, /example_data (about 1.5 KB:
# a two-block Block2 transfer, RFC 7959) before and after a PUT to it (the example server
# refuses POST with 4.05), then /time over IPv6. Each coap-client run is a new source port, so
# one flow each.
rec_coap-5683() {
    bg_srv coap-server-notls -A "$SIP" -p 5683 -v 4
    bg_srv coap-server-notls -A "$SIP6" -p 5683 -v 4
    wait_port udp 5683
    for _ in $(seq 50); do srv ss -lunH "sport = :5683" | grep -q "$SIP6" && break; sleep 0.1; done
    cap_start coap-5683 udp port 5683
    local u
    for u in .well-known/core "" time example_data; do
        cli timeout 5 coap-client-notls -B 3 "coap://$SIP/$u" >/dev/null
    done
    cli timeout 5 coap-client-notls -B 3 -m put -e "portwatch coap test" "coap://$SIP/example_data"
    cli timeout 5 coap-client-notls -B 3 "coap://$SIP/example_data" >/dev/null
    cli timeout 5 coap-client-notls -B 3 "coap://[$SIP6]/time" >/dev/null
    cap_stop
}

# YAZ's test Z39.50 server (yaz-ztest; its hit count is the term when the term is a number, else
# derived from it, so the same on every run) and two yaz-client sessions: Init, Search, Present
# of one record, Close. The first gets the target on the command line and its commands on stdin
# and fetches record 7 as USMARC (ISO 2709); the second opens the target from a command file (-f)
# and fetches record 1 as MARCXML. (Not record 1 as USMARC: its data fields are not stored in
# directory order, which MARC 21 allows but Wireshark's MARC dissector misreads as malformed.)
rec_z3950-210() {
    bg_srv yaz-ztest "tcp:$SIP:210"
    wait_port tcp 210
    printf 'open tcp:%s:210/Default\nformat xml\nfind @attr 1=4 water\nshow 1\nclose\nquit\n' "$SIP" \
        >"$WORK/yaz-client.cmd"
    cap_start z3950-210 tcp port 210
    printf 'find computer\nshow 7\nclose\nquit\n' |
        cli timeout 10 yaz-client -m "$WORK/z3950.marc" "tcp:$SIP:210/Default" >/dev/null
    cli timeout 10 yaz-client -f "$WORK/yaz-client.cmd" </dev/null >/dev/null
    cap_stop
}

# BGP: two BIRD 2 speakers, eBGP between AS 65001 (pw-srv, passive: it only listens on 179) and
# AS 65002 (pw-cli, connects). OPEN, KEEPALIVE, UPDATEs for the server's two static prefixes and
# the End-of-RIB markers, keepalives every 3 s (hold time 9), then the client disables its
# session: NOTIFICATION Cease / Administrative Shutdown with a shutdown message (RFC 8203).
rec_bgp-179() {
    local d=$WORK/bird who me myas peer peeras extra statics
    mkdir -p "$d"
    for who in srv cli; do
        me=$SIP myas=65001 peer=$CIP peeras=65002 extra="passive on;"
        statics="protocol static announce { ipv4; route 192.0.2.0/24 blackhole; route 198.51.100.0/24 blackhole; }"
        if [ "$who" = cli ]; then
            me=$CIP myas=65002 peer=$SIP peeras=65001 extra="connect delay time 1;" statics=
        fi
        cat >"$d/$who.conf" <<EOF
log "$d/$who.log" all;
router id $me;
protocol device { }
$statics
protocol bgp peer {
    local $me as $myas;
    neighbor $peer as $peeras;
    $extra
    hold time 9;
    keepalive time 3;
    ipv4 { import all; export all; };
}
EOF
    done
    bg_srv bird -f -c "$d/srv.conf" -s "$d/srv.ctl" -P "$d/srv.pid"
    wait_port tcp 179
    cap_start bgp-179 tcp port 179
    cli bird -f -c "$d/cli.conf" -s "$d/cli.ctl" -P "$d/cli.pid" >>"$WORK/daemons.log" 2>&1 &
    for _ in $(seq 100); do
        cli birdc -s "$d/cli.ctl" show route 2>/dev/null | grep -q 198.51.100.0/24 && break
        sleep 0.1
    done
    cli birdc -s "$d/cli.ctl" show route 2>/dev/null | grep -q 198.51.100.0/24
    sleep 7     # two keepalive rounds
    cli birdc -s "$d/cli.ctl" disable peer '"portwatch capture done"' >/dev/null
    sleep 1
    cap_stop
}

# PTP: two linuxptp ptp4l over the veth, UDP/IPv4 and software timestamps, E2E delay mechanism,
# multicast to 224.0.1.129. pw-srv's instance (priority1 10) wins the BMCA and becomes master:
# Announce and Sync+Follow_Up (two-step) from it, Delay_Req from the slaveOnly instance in pw-cli
# answered by Delay_Resp; event messages on 319, general ones on 320. Both run free_running, so
# neither touches the host clock.
rec_ptp-319() {
    local d=$WORK/ptp who role
    mkdir -p "$d"
    for who in srv cli; do
        role="priority1 10"
        [ "$who" = cli ] && role=$'priority1 128\nslaveOnly 1'
        cat >"$d/$who.cfg" <<EOF
[global]
$role
free_running 1
network_transport UDPv4
time_stamping software
delay_mechanism E2E
logAnnounceInterval 0
announceReceiptTimeout 2
logSyncInterval 0
logMinDelayReqInterval 0
uds_address $d/$who.uds
EOF
    done
    srv ip route add 224.0.0.0/4 dev pw-s
    cli ip route add 224.0.0.0/4 dev pw-c
    cap_start ptp-319 udp port 319 or udp port 320
    bg_srv ptp4l -f "$d/srv.cfg" -i pw-s -S -4 -m
    cli ptp4l -f "$d/cli.cfg" -i pw-c -S -4 -m >>"$WORK/daemons.log" 2>&1 &
    sleep 8
    cap_stop
}

# VNC: TigerVNC's Xvnc (called as Xtigervnc: tightvncserver provides an Xvnc too), a 64x48
# depth-16 desktop named pwsrv with VncAuth, on 10.77.0.1:5900; vncsnapshot (a TightVNC 1.2.8 /
# RFB 3.3 client) connects three times: two snapshots in one session (RFB version
# exchange 3.8/3.3, VNC authentication challenge/response, ClientInit/ServerInit, SetPixelFormat,
# SetEncodings, FramebufferUpdateRequest/FramebufferUpdate in Hextile), one snapshot in Raw, and
# one with a wrong password (SecurityResult "failed"). vncsnapshot never finishes on Xvnc's
# default Tight (it does not count a Tight solid-fill rectangle as received), hence -encodings.
# The X display number (:37) is a lock file in the shared /tmp, so it only has to differ from the
# other recorders'; X11 over TCP is off.
rec_vnc-5900() {
    local d=$WORK/vnc
    mkdir -p "$d"
    echo pwcap-vnc | tigervncpasswd -f >"$d/passwd"
    echo wrong-pw | tigervncpasswd -f >"$d/badpasswd"
    chmod 600 "$d/passwd" "$d/badpasswd"
    bg_srv Xtigervnc :37 -rfbport 5900 -interface "$SIP" -localhost no -SecurityTypes VncAuth \
        -rfbauth "$d/passwd" -geometry 64x48 -depth 16 -desktop pwsrv \
        -nolisten tcp -AlwaysShared
    wait_port tcp 5900
    cap_start vnc-5900 tcp port 5900
    cli timeout 10 vncsnapshot -quiet -allowblank -encodings hextile -passwd "$d/passwd" \
        -count 2 -fps 1 "$SIP:0" "$d/snap.jpg" >/dev/null 2>&1
    cli timeout 10 vncsnapshot -quiet -allowblank -encodings raw -passwd "$d/passwd" \
        "$SIP:0" "$d/snap-raw.jpg" >/dev/null 2>&1
    cli timeout 10 vncsnapshot -quiet -allowblank -encodings raw -passwd "$d/badpasswd" \
        "$SIP:0" "$d/snap-bad.jpg" >/dev/null 2>&1 || true
    cap_stop
}

# VNC with security type None (RFC 6143 7.2.1): no authentication at all; vncsnapshot speaks
# RFB 3.3, so the server picks None for it
rec_vnc-noauth-5900() {
    bg_srv Xtigervnc :39 -rfbport 5900 -interface "$SIP" -localhost no -SecurityTypes None \
        -geometry 64x48 -depth 16 -desktop pwopen -nolisten tcp -AlwaysShared
    wait_port tcp 5900
    cap_start vnc-noauth-5900 tcp port 5900
    cli timeout 10 vncsnapshot -quiet -allowblank -encodings raw "$SIP:0" "$WORK/snap-open.jpg" >/dev/null 2>&1
    cap_stop
}

# XDMCP: xdm as the display manager on 177/udp (no local X servers: an empty Xservers file;
# Xaccess lets any host in), and an Xvfb in pw-cli asking it for a login session (-query), over
# IPv4 then IPv6: Query, Willing, Request, Accept, Manage (XDMCP 1.1 sections 10-11). xdm then
# opens its X11 connections back to the Xvfb (6038/tcp: its greeter, ~150 KB, not captured).
# The Willing status comes from a fixed echo rather than Debian's Xwilling (uptime, load), so
# the capture stays stable. Display :38 is a lock file in the shared /tmp: it only has to differ
# from the other recorders'. (-broadcast sends nothing here: the pair's addresses have no brd.)
rec_xdmcp-177() {
    local d=$WORK/xdm
    mkdir -p "$d/auth"
    : >"$d/Xservers"
    echo '*' >"$d/Xaccess"
    cat >"$d/xdm-config" <<EOF2
DisplayManager.authDir: $d/auth
DisplayManager.errorLogFile: $d/xdm.log
DisplayManager.pidFile: $d/xdm.pid
DisplayManager.keyFile: $d/xdm-keys
DisplayManager.servers: $d/Xservers
DisplayManager.accessFile: $d/Xaccess
DisplayManager.willing: echo portwatch xdm
DisplayManager.requestPort: 177
DisplayManager*resources: /etc/X11/xdm/Xresources
DisplayManager*authorize: true
DisplayManager*startup: /bin/true
DisplayManager*session: /bin/true
DisplayManager*setup: /bin/true
DisplayManager*reset: /bin/true
EOF2
    # in a UTS namespace of its own: Willing carries the host name, make it pwsrv, not the recorder's
    bg_srv unshare --uts sh -c 'hostname pwsrv && exec xdm -nodaemon -config "$1"' xdm "$d/xdm-config"
    wait_port udp 177
    cap_start xdmcp-177 udp port 177
    local host
    for host in "$SIP" "$SIP6"; do
        cli timeout 4 Xvfb :38 -query "$host" -once -screen 0 64x48x16 >>"$WORK/daemons.log" 2>&1 || true
    done
    cap_stop
}

# NetBIOS name service (RFC 1001/1002): Samba's nmbd (netbios name PWSRV, workgroup PWLAB, only
# on the pair) registers its five names by broadcast as it starts (NAME REGISTRATION REQUEST,
# repeated every 2 s until nobody objects, RFC 1001 15.2.2.1 / 1002 4.2.2); then nmblookup from pw-cli: a unicast name query with recursion desired,
# a node status query (NBSTAT, the name table), and a broadcast name query to 10.77.0.255.
# nmblookup's -R is --name-resolve in Samba 4.17, not recursion: --recursion is spelt out.
# Only 137/udp is captured (nmbd's browse announcements and election go to 138/udp).
rec_netbios-137() {
    local d=$WORK/nmb
    mkdir -p "$d"/{lock,state,cache,private,run,log}
    local who ip
    for who in srv cli; do
        ip=$SIP; [ "$who" = cli ] && ip=$CIP
        cat >"$d/$who.conf" <<EOF
[global]
    workgroup = PWLAB
    netbios name = PW${who^^}
    server role = standalone server
    interfaces = $ip/24
    bind interfaces only = yes
$(samba_dirs "$d")
    log file = $d/log/nmbd-%m.log
EOF
    done
    cap_start netbios-137 udp port 137
    # in a session of its own: on exit it signals its whole process group
    bg_srv setsid nmbd -F --no-process-group -s "$d/srv.conf"
    wait_port udp 137
    sleep 5     # its name registrations: broadcast again every 2 s until nobody objects (~4 s)
    cli nmblookup -s "$d/cli.conf" -U "$SIP" --recursion PWSRV >/dev/null
    cli nmblookup -s "$d/cli.conf" -A "$SIP" >/dev/null
    cli nmblookup -s "$d/cli.conf" -B 10.77.0.255 PWSRV >/dev/null
    cap_stop
}

# X11 over TCP: two Xvfb servers in pw-srv listening on TCP (-listen tcp), display :0 on 6000
# with access control off (-ac) and display :1 on 6001 with it on and no client allowed; from
# pw-cli, xdpyinfo and xlsclients open :0 (the setup request with no authorization, the server's
# Success with its vendor string), xdpyinfo with an MIT-MAGIC-COOKIE-1 from a throwaway
# XAUTHORITY is refused by :1 (Failed, "Authorization required...").
rec_x11-6000() {
    local d=$WORK/x11
    mkdir -p "$d"
    bg_srv Xvfb :0 -listen tcp -ac -nolock -screen 0 64x48x16
    bg_srv Xvfb :1 -listen tcp -nolock -screen 0 64x48x16
    wait_port tcp 6000
    wait_port tcp 6001
    XAUTHORITY=$d/xauth xauth -q add "$SIP:1" MIT-MAGIC-COOKIE-1 "$(openssl rand -hex 16)"
    cap_start x11-6000 tcp portrange 6000-6001
    cli env -u XAUTHORITY xdpyinfo -display "$SIP:0" >/dev/null
    cli env -u XAUTHORITY xlsclients -display "$SIP:0" >/dev/null
    cli env XAUTHORITY="$d/xauth" xdpyinfo -display "$SIP:1" >/dev/null 2>&1 || true
    cap_stop
}

# WireGuard: wireguard-go (the userspace implementation, not the kernel module) on both sides,
# configured with wg; the client pings the server's tunnel address three times (handshake
# initiation and response, then transport data), then a second client with PersistentKeepalive = 1
# (a new handshake and empty keepalive data messages). wireguard-go's control sockets live in
# the shared /var/run/wireguard/NAME.sock, so the interfaces get names unique to this run.
wg_up() {   # wg_up srv|cli IFACE CONF INNER-ADDR: start wireguard-go in that namespace, configure it
    local ns=$1 ifc=$2 conf=$3 addr=$4
    local netns=$NS_S
    [ "$ns" = cli ] && netns=$NS_C
    ip netns exec "$netns" wireguard-go -f "$ifc" >>"$WORK/daemons.log" 2>&1 &
    WG_PID=$!   # wireguard-go itself (ip netns exec execs it)
    for _ in $(seq 50); do [ -S "/var/run/wireguard/$ifc.sock" ] && break; sleep 0.1; done
    $ns wg setconf "$ifc" "$conf"
    $ns ip addr add "$addr" dev "$ifc"
    $ns ip link set "$ifc" up
}

rec_wireguard-51820() {
    local d=$WORK/wg who
    mkdir -p "$d"; chmod 700 "$d"
    for who in srv cli; do
        (umask 077; wg genkey >"$d/$who.key")
        wg pubkey <"$d/$who.key" >"$d/$who.pub"
    done
    local ws=wg-${NS_S:0:8} wc=wg-${NS_C:0:8}   # interface names (<= 15 bytes), one socket each
    cat >"$d/srv.conf" <<EOF
[Interface]
PrivateKey = $(cat "$d/srv.key")
ListenPort = 51820

[Peer]
PublicKey = $(cat "$d/cli.pub")
AllowedIPs = 10.99.0.2/32
EOF
    cat >"$d/cli.conf" <<EOF
[Interface]
PrivateKey = $(cat "$d/cli.key")

[Peer]
PublicKey = $(cat "$d/srv.pub")
AllowedIPs = 10.99.0.0/24
Endpoint = $SIP:51820
EOF
    { cat "$d/cli.conf"; echo "PersistentKeepalive = 1"; } >"$d/cli-ka.conf"
    wg_up srv "$ws" "$d/srv.conf" 10.99.0.1/24
    wait_port udp 51820
    cap_start wireguard-51820 udp port 51820
    # session 1: handshake initiation/response, then pings as transport data
    wg_up cli "$wc" "$d/cli.conf" 10.99.0.2/24
    cli ping -q -c 3 -i 0.2 -W 2 10.99.0.1 >/dev/null
    kill "$WG_PID"; wait "$WG_PID" 2>/dev/null || true
    # session 2: a new client process (new source port): a keepalive at once, which needs a new
    # handshake, then one keepalive (empty transport data) per idle second
    wg_up cli "$wc" "$d/cli-ka.conf" 10.99.0.2/24
    sleep 2.5
    cli ping -q -c 1 -W 2 10.99.0.1 >/dev/null
    sleep 1.5
    kill "$WG_PID"; wait "$WG_PID" 2>/dev/null || true
    cap_stop
}

# --- RabbitMQ: AMQP 0-9-1, STOMP ---------------------------------------------

# rabbitmq_start [stomp]: RabbitMQ in the foreground as root, started through its own script
# rather than Debian's /usr/sbin wrapper (which su's to the rabbitmq user and runs from
# /var/lib/rabbitmq): node pw@localhost with its config, enabled-plugins file, Mnesia dir, logs,
# pid file, HOME (the Erlang cookie) all under $WORK; epmd and the Erlang distribution port
# only on pw-srv's loopback; AMQP on $SIP:5672 and, with "stomp", the rabbitmq_stomp plugin's
# STOMP on $SIP:61613.
# loopback_users = none: the default guest/guest account may log in from pw-cli; cluster_name
# fixed (Connection.Start's server properties carry it; its default names the recorder's host).
rabbitmq_start() {   # rabbitmq_start [stomp]
    local d=$WORK/rabbitmq
    rm -rf "$d"; mkdir -p "$d/home" "$d/log" "$d/mnesia"
    : >"$d/rabbitmq-env.conf"    # not /etc/rabbitmq/rabbitmq-env.conf
    printf 'loopback_users = none\nlisteners.tcp.1 = %s:5672\ncluster_name = portwatch\n' "$SIP" >"$d/rabbitmq.conf"
    if [ "${1:-}" = stomp ]; then
        echo "[rabbitmq_stomp]." >"$d/enabled_plugins"
        echo "stomp.listeners.tcp.1 = $SIP:61613" >>"$d/rabbitmq.conf"
    else
        echo "[]." >"$d/enabled_plugins"
    fi
    srv env ERL_EPMD_ADDRESS=127.0.0.1 epmd -daemon
    bg_srv env HOME="$d/home" ERL_EPMD_ADDRESS=127.0.0.1 \
        RABBITMQ_CONF_ENV_FILE="$d/rabbitmq-env.conf" \
        RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" \
        RABBITMQ_ADVANCED_CONFIG_FILE="$d/advanced.config" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" \
        RABBITMQ_MNESIA_BASE="$d/mnesia" RABBITMQ_LOG_BASE="$d/log" \
        RABBITMQ_PID_FILE="$d/rabbitmq.pid" \
        RABBITMQ_NODENAME=pw@localhost RABBITMQ_NODE_IP_ADDRESS="$SIP" RABBITMQ_NODE_PORT=5672 \
        RABBITMQ_DIST_PORT=25672 \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        /usr/lib/rabbitmq/bin/rabbitmq-server
    wait_port tcp 5672 400     # it takes several seconds to boot
    if [ "${1:-}" = stomp ]; then wait_port tcp 61613 200; fi
}

# AMQP 0-9-1: RabbitMQ (rabbitmq_start) and amqp-tools (rabbitmq-c), four connections as guest
# on vhost "/", each protocol header "AMQP\0\0\x09\x01", Connection.Start/StartOk/Tune/TuneOk/
# Open/OpenOk, Channel.Open, the method, Channel.Close, Connection.Close: Queue.Declare of
# "pw", Basic.Publish of a message to it (default exchange), Basic.Get of it (GetOk with its
# header and body frames), Queue.Delete
rec_amqp-5672() {
    rabbitmq_start
    local url="amqp://guest:guest@$SIP:5672"
    cap_start amqp-5672 tcp port 5672
    cli amqp-declare-queue --url "$url" -q pw >/dev/null
    cli amqp-publish --url "$url" -r pw -C text/plain -b "portwatch amqp test message"
    cli amqp-get --url "$url" -q pw >/dev/null
    cli amqp-delete-queue --url "$url" -q pw >/dev/null
    cap_stop
}

# STOMP 1.2: RabbitMQ (rabbitmq_start) with its rabbitmq_stomp plugin on 61613 and, as Debian
# packages no STOMP client, a stand-in python3 client speaking STOMP 1.2 per its spec: a sender
# (CONNECT, CONNECTED, SEND to /queue/pw with a receipt, RECEIPT, DISCONNECT, RECEIPT), a
# subscriber (CONNECT, CONNECTED, SUBSCRIBE, the MESSAGE, UNSUBSCRIBE, DISCONNECT, RECEIPT),
# then a CONNECT with a wrong passcode (ERROR; the client closes)
rec_stomp-61613() {
    rabbitmq_start stomp
    cat >"$WORK/stompcli.py" <<'EOF'
# Stand-in STOMP client (Debian has no STOMP client): STOMP 1.2 frames, per
# https://stomp.github.io/stomp-specification-1.2.html
import socket, sys
HOST, QUEUE = sys.argv[1], "/queue/pw"

def frame(cmd, headers, body=b""):
    h = "".join(f"{k}:{v}\n" for k, v in headers)
    return f"{cmd}\n{h}\n".encode() + body + b"\0"

class Conn:
    def __init__(self, passcode="guest"):
        self.s = socket.create_connection((HOST, 61613), timeout=5)
        self.buf = b""
        self.s.sendall(frame("CONNECT", [("accept-version", "1.2"), ("host", "/"),
                                         ("login", "guest"), ("passcode", passcode),
                                         ("heart-beat", "0,0")]))
        self.connected = self.read()

    def read(self):     # one frame: command, headers, body (skips heart-beat EOLs)
        while True:
            self.buf = self.buf.lstrip(b"\r\n")
            if b"\n\n" in self.buf:
                head, rest = self.buf.split(b"\n\n", 1)
                lines = head.decode().split("\n")
                hdrs = dict(l.split(":", 1) for l in lines[1:])
                n = int(hdrs["content-length"]) if "content-length" in hdrs else None
                end = rest.find(b"\0") if n is None else n
                if end >= 0 and len(rest) > end:
                    self.buf = rest[end + 1:]
                    return lines[0], hdrs, rest[:end]
            data = self.s.recv(4096)
            if not data:
                raise SystemExit("stomp: connection closed")
            self.buf += data

    def send(self, cmd, headers, body=b""):
        self.s.sendall(frame(cmd, headers, body))

    def disconnect(self, receipt):
        self.send("DISCONNECT", [("receipt", receipt)])
        cmd, h, _ = self.read()
        assert cmd == "RECEIPT" and h["receipt-id"] == receipt, (cmd, h)
        self.s.close()

body = b"portwatch stomp test message"
tx = Conn()
assert tx.connected[0] == "CONNECTED", tx.connected
tx.send("SEND", [("destination", QUEUE), ("content-type", "text/plain"),
                 ("content-length", len(body)), ("receipt", "sent-1")], body)
cmd, h, _ = tx.read()
assert cmd == "RECEIPT" and h["receipt-id"] == "sent-1", (cmd, h)
tx.disconnect("bye-1")

rx = Conn()
assert rx.connected[0] == "CONNECTED", rx.connected
rx.send("SUBSCRIBE", [("id", "0"), ("destination", QUEUE), ("ack", "auto")])
cmd, h, got = rx.read()
assert cmd == "MESSAGE" and got == body, (cmd, h, got)
rx.send("UNSUBSCRIBE", [("id", "0")])
rx.disconnect("bye-2")

# RabbitMQ keeps the connection ~10 s after this ERROR (the spec says the server closes it
# just after): the client closes it
bad = Conn(passcode="wrong")
assert bad.connected[0] == "ERROR", bad.connected
bad.s.close()
EOF
    cap_start stomp-61613 tcp port 61613
    cli python3 "$WORK/stompcli.py" "$SIP"
    cap_stop
}

# --- munin / NNTP / PPTP ------------------------------------------------------

# munin-node (Net::Server, foreground, config and log/pid under $WORK; its plugin directory
# /etc/munin/plugins is fixed at build time, so a private mount namespace binds $WORK's own over
# it: load, uptime and cpu only; plugin-conf.d and the plugin state dir too) and, as Debian's
# munin master (munin-update with its cron/rrd machinery) is heavy, a stand-in python3 client
# speaking the munin node protocol like munin-update: read the "# munin node at" banner, then
# "cap multigraph", "nodes", "list", "fetch load", "config uptime", "quit"; a second connection
# "list", "fetch cpu", "quit"
rec_munin-4949() {
    local d=$WORK/munin p
    mkdir -p "$d/plugins" "$d/plugin-conf.d" "$d/state"
    for p in load uptime cpu; do ln -s "/usr/share/munin/plugins/$p" "$d/plugins/$p"; done
    cat >"$d/munin-node.conf" <<EOF
log_level 4
log_file $d/munin-node.log
pid_file $d/munin-node.pid
background 0
setsid 0
user root
group root
host_name pw-srv.example.test
allow ^10\\.77\\.0\\.2\$
host $SIP
port 4949
EOF
    bg_srv unshare -m sh -c "mount --bind '$d/plugins' /etc/munin/plugins &&
        mount --bind '$d/plugin-conf.d' /etc/munin/plugin-conf.d &&
        mount --bind '$d/state' /var/lib/munin-node/plugin-state &&
        exec munin-node --config '$d/munin-node.conf' --foreground"
    wait_port tcp 4949
    cat >"$d/muninclient.py" <<'PY'
# Stand-in munin master (Debian's munin-update is heavy): the munin node protocol as munin-update
# speaks it, per https://guide.munin-monitoring.org/en/latest/master/network-protocol.html --
# one command a line; "cap" and "list" answer one line, "nodes", "fetch", "config" a block
# ending in a lone "."
import socket, sys
HOST = sys.argv[1]

def session(cmds):
    s = socket.create_connection((HOST, 4949), timeout=10)
    f = s.makefile("rb")
    banner = f.readline().decode().rstrip()
    assert banner.startswith("# munin node at "), banner
    print(banner)
    for cmd, block in cmds:
        s.sendall(cmd.encode() + b"\n")
        if cmd == "quit":
            break
        while True:
            line = f.readline().decode().rstrip("\n")
            print(f"{cmd}: {line}")
            if not block or line == ".":
                break
    s.close()

session([("cap multigraph", False), ("nodes", True), ("list", False),
         ("fetch load", True), ("config uptime", True), ("quit", False)])
session([("list", False), ("fetch cpu", True), ("quit", False)])
PY
    cap_start munin-4949 tcp port 4949
    cli python3 "$d/muninclient.py" "$SIP"
    cap_stop
}

# leafnode (1.x: an inetd-style NNTP server, here under a tiny python3 inetd like rsh-514's). Its
# config dir /etc/news/leafnode and spool /var/spool/news are fixed at build time, so a private
# mount namespace binds $WORK's over them. Leafnode 1 has no local groups: the group pw.test is
# seeded by hand as fetchnews would have left it (leaf.node/groupinfo "name high low ctime desc",
# two articles, marked interesting). Python 3.11's nntplib (deprecated, still in the stdlib)
# reads it: welcome, CAPABILITIES (leafnode 1 answers 500), MODE READER, LIST, GROUP, HEAD,
# ARTICLE, XOVER, POST (queued in out.going for an upstream that never comes), QUIT
rec_nntp-119() {
    local d=$WORK/news s n
    mkdir -p "$d/etc" "$d/spool/pw/test"
    for s in leaf.node interesting.groups out.going failed.postings message.id temp.files; do
        mkdir -p "$d/spool/$s"
    done
    # leafnode insists on a unique FQDN and refuses the example.* names: home.arpa (RFC 8375)
    printf 'server = news.portwatch.home.arpa\nexpire = 20\nhostname = pw-srv.portwatch.home.arpa\n' \
        >"$d/etc/config"
    printf 'pw.test 2 1 1700000000 portwatch test group\n' >"$d/spool/leaf.node/groupinfo"
    for n in 1 2; do
        printf '%s\n' "Path: pw-srv.portwatch.home.arpa!not-for-mail" \
            "From: Portwatch Lab <noc@pw-srv.portwatch.home.arpa>" "Newsgroups: pw.test" \
            "Subject: portwatch test article $n" "Date: Mon, 1 Jan 2024 00:00:0$n +0000" \
            "Message-ID: <pw-test-$n@pw-srv.portwatch.home.arpa>" "Lines: 1" "" \
            "portwatch nntp test article $n" >"$d/spool/pw/test/$n"
    done
    touch "$d/spool/interesting.groups/pw.test"
    chown -R news:news "$d/spool"; chgrp news "$d/etc/config"; chmod 640 "$d/etc/config"
    write_inetd1
    cat >"$d/nntpclient.py" <<'PY'
import sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)
import nntplib
from email.message import EmailMessage
with nntplib.NNTP(sys.argv[1], 119, readermode=True, timeout=10) as s:
    print(s.getwelcome())
    resp, groups = s.list()
    print(resp, [g.group for g in groups])
    resp, count, first, last, name = s.group("pw.test")
    print(resp)
    print(s.head(first)[0])
    print(s.article(last)[0])
    print(s.over((first, last))[0])
    m = EmailMessage()
    m["From"] = "Portwatch Client <pw@pw-cli.portwatch.home.arpa>"
    m["Newsgroups"] = "pw.test"
    m["Subject"] = "portwatch test post"
    m.set_content("posted by the portwatch capture\n")
    print(s.post(m.as_bytes()))
PY
    bg_srv unshare -m sh -c "mount --bind '$d/etc' /etc/news/leafnode &&
        mount --bind '$d/spool' /var/spool/news &&
        exec python3 '$WORK/inetd1.py' $SIP 119 /usr/sbin/leafnode leafnode"
    wait_port tcp 119
    cap_start nntp-119 tcp port 119
    cli python3 "$d/nntpclient.py" "$SIP"
    cap_stop
}

# PPTP (RFC 2637): pptpd (foreground, config and pppd options under $WORK, private /run) and the
# pptp-linux client (private /run for its call-manager socket, no host route). The control
# connection on tcp/1723 is real: Start-Control-Connection-Request/Reply, Outgoing-Call-Request/
# Reply. This kernel has no PPP (no /dev/ppp), so both pppds die at once: pptpctrl then just
# closes the control connection (FIN; no Call-Disconnect-Notify, no Stop-Control-Connection-
# Request), the client's Call-Clear-Request lands on the closed socket and draws an RST. No GRE.
rec_pptp-1723() {
    local d=$WORK/pptp
    mkdir -p "$d"
    printf 'option %s\nlocalip 192.168.77.1\nremoteip 192.168.77.10-19\nconnections 4\n' \
        "$d/options.pptpd" >"$d/pptpd.conf"
    printf 'name pptpd\nrefuse-pap\nrefuse-chap\nrefuse-mschap\nrequire-mschap-v2\nnodefaultroute\nnobsdcomp\nnovj\nnovjccomp\nnologfd\n' \
        >"$d/options.pptpd"
    printf 'noauth\nnodefaultroute\nname pwcap\nremotename pptpd\nnologfd\n' >"$d/options.pptp"
    bg_srv unshare -m sh -c "mount -t tmpfs tmpfs /run &&
        exec pptpd --fg -c '$d/pptpd.conf' -o '$d/options.pptpd' -p '$d/pptpd.pid' -l $SIP"
    wait_port tcp 1723
    cap_start pptp-1723 tcp port 1723 or ip proto 47
    cli unshare -m sh -c "mount -t tmpfs tmpfs /run &&
        exec pptp $SIP --nohostroute --loglevel 2 --debug file '$d/options.pptp'" >>"$WORK/daemons.log" 2>&1 &
    sleep 3     # SCCRQ, then OCRQ a second later; both pppds fail within milliseconds
    cap_stop
}

# DNS over TLS (RFC 7858): unbound (foreground, no chroot, config under $WORK, a self-signed cert
# from make_cert, one local zone so nothing goes upstream) on 10.77.0.1@853, and kdig. Two DoT
# queries in two connections: opportunistic (+tls, no SNI) and strict (+tls-ca, +tls-hostname:
# SNI and certificate name check).
rec_dot-853() {
    local d=$WORK/unbound n=pwsrv.example.test
    mkdir -p "$d"
    make_cert "$n"
    cat >"$d/unbound.conf" <<EOC
server:
    verbosity: 1
    use-syslog: no
    logfile: ""
    chroot: ""
    username: ""
    directory: "$d"
    pidfile: ""
    do-daemonize: no
    do-ip6: no
    interface: $SIP@853
    tls-port: 853
    tls-service-key: "$WORK/$n.key"
    tls-service-pem: "$WORK/$n.crt"
    access-control: 10.77.0.0/24 allow
    do-not-query-localhost: yes
    module-config: "iterator"
    local-zone: "example.test." static
    local-data: "pwsrv.example.test. 300 IN A 10.77.0.1"
    local-data: 'pwsrv.example.test. 300 IN TXT "portwatch dot test"'
remote-control:
    control-enable: no
EOC
    bg_srv unbound -d -p -c "$d/unbound.conf"
    wait_port tcp 853
    cap_start dot-853 tcp port 853
    cli kdig @"$SIP" +tls +timeout=3 +retry=0 "$n" A
    cli kdig @"$SIP" +tls-ca="$WORK/$n.crt" +tls-hostname="$n" +timeout=3 +retry=0 "$n" TXT
    cap_stop
}

# Redis with a password (requirepass): redis-server (foreground, config under $WORK, no
# persistence) and redis-cli. Five connections: the right password (AUTH pw-secret as a RESP
# array, then PING, SET or GET), a wrong one (-WRONGPASS; redis-cli still sends its PING:
# -NOAUTH) and none (GET: -NOAUTH).
rec_redis-auth-6379() {
    cat >"$WORK/redis.conf" <<EOC
bind $SIP
port 6379
protected-mode no
requirepass pw-secret
save ""
appendonly no
dir $WORK
daemonize no
EOC
    bg_srv redis-server "$WORK/redis.conf"
    wait_port tcp 6379
    cap_start redis-auth-6379 tcp port 6379
    # one command a connection: interactive redis-cli (commands on stdin) first fetches the
    # whole COMMAND DOCS table (~170 KB) for its hints
    local r="cli redis-cli -h $SIP -a pw-secret --no-auth-warning"
    $r PING
    $r SET portwatch:key hello
    $r GET portwatch:key
    cli redis-cli -h "$SIP" -a wrong-secret --no-auth-warning PING || true
    cli redis-cli -h "$SIP" GET portwatch:key || true
    cap_stop
}

# explicit FTPS (RFC 4217): vsftpd with ssl_enable=YES on 21; curl --ssl-reqd sends AUTH SSL
# (vsftpd: 234) before USER, so USER/PASS, LIST and RETR (and the PROT P data connections on
# tcp/50000) are all inside TLS; openssl s_client -starttls ftp (AUTH TLS) logs in the same way.
# Then a vsftpd without TLS on 2121: curl --ssl (TLS if possible) gets AUTH SSL and AUTH TLS
# refused (530) and logs in in clear.
rec_ftps-21() {
    make_cert ftp.example.test
    vsftpd_start 21 ssl_enable=YES "rsa_cert_file=$WORK/ftp.example.test.crt" \
        "rsa_private_key_file=$WORK/ftp.example.test.key" force_local_logins_ssl=NO \
        force_local_data_ssl=NO require_ssl_reuse=NO
    vsftpd_start 2121 pasv_min_port=50001 pasv_max_port=50001
    cap_start ftps-21 tcp port 21 or tcp port 2121 or tcp portrange 50000-50001
    cli curl -sS -k --ssl-reqd "ftp://$CAPUSER:$CAPPASS@$SIP/" >/dev/null              # LIST
    cli curl -sS -k --ssl-reqd "ftp://$CAPUSER:$CAPPASS@$SIP/readme.txt" >/dev/null    # RETR
    # openssl's client says AUTH TLS (curl says AUTH SSL first), then the login inside TLS
    { sleep 0.5; printf 'USER %s\nPASS %s\nPWD\nQUIT\n' "$CAPUSER" "$CAPPASS"; sleep 1; } |
        cli openssl s_client -starttls ftp -connect "$SIP:21" -crlf -quiet -ign_eof >/dev/null 2>&1 ||
        true   # exits 1: vsftpd closes after 221 without a TLS close_notify
    cli curl -sS --ssl "ftp://$CAPUSER:$CAPPASS@$SIP:2121/readme.txt" >/dev/null      # AUTH refused
    cap_stop
}

# mosquitto with only a TLS listener on 8883 (MQTT over TLS, the IANA secure-mqtt port);
# mosquitto_sub then mosquitto_pub (QoS 1) with --cafile and --insecure (the cert names
# mqtt.example.test, the clients dial the address), one message.
rec_mqtt-8883() {
    make_cert mqtt.example.test
    cat >"$WORK/mosquitto-tls.conf" <<EOF
listener 8883 $SIP
cafile $WORK/mqtt.example.test.crt
certfile $WORK/mqtt.example.test.crt
keyfile $WORK/mqtt.example.test.key
allow_anonymous true
persistence false
log_dest stderr
EOF
    chmod 644 "$WORK/mqtt.example.test.key"; chmod 755 "$WORK"
    bg_srv mosquitto -c "$WORK/mosquitto-tls.conf"
    wait_port tcp 8883
    cap_start mqtt-8883 tcp port 8883
    cli mosquitto_sub -h "$SIP" -p 8883 --cafile "$WORK/mqtt.example.test.crt" --insecure \
        -t portwatch/test -C 1 -W 10 -i pw-sub &
    local sub=$!
    sleep 0.5
    cli mosquitto_pub -h "$SIP" -p 8883 --cafile "$WORK/mqtt.example.test.crt" --insecure \
        -t portwatch/test -m 'hello mqtts' -q 1 -i pw-pub
    wait "$sub"
    cap_stop
}

# NFS: nfs-ganesha (userspace, FSAL VFS) exporting a small directory RW as /export for NFSv3 and
# NFSv4, with rpcbind for v3; both run in a private mount namespace with their own tmpfs /run
# (rpcbind.sock, ganesha's run dir), so nothing meets a host rpcbind. libnfs's tools as clients:
# NFSv4 (COMPOUNDs on tcp/2049 only) ls, cat and cp (write), then NFSv3: portmapper GETPORT on
# tcp/111, MOUNT on tcp/20048 (MNT_Port), then NFS on tcp/2049.
rec_nfs-2049() {
    local d=$WORK/nfs
    mkdir -p "$d/export" "$d/recov"
    echo "portwatch nfs test file" >"$d/export/hello.txt"
    printf 'second file\n' >"$d/export/notes.txt"
    chmod 777 "$d/export"; chmod 755 "$WORK" "$d"
    echo "uploaded over nfs" >"$d/up.txt"
    cat >"$d/ganesha.conf" <<EOF
NFS_CORE_PARAM {
    Protocols = 3,4;
    Bind_addr = $SIP;
    NFS_Port = 2049;
    MNT_Port = 20048;
    Enable_NLM = false;
    Enable_UDP = false;
    mount_path_pseudo = true;
}
NFSv4 {
    Graceless = true;
    RecoveryRoot = "$d/recov";
    Minor_Versions = 0,1;
}
EXPORT {
    Export_Id = 1;
    Path = "$d/export";
    Pseudo = "/export";
    Protocols = 3,4;
    Access_Type = RW;
    Squash = No_Root_Squash;
    SecType = sys;
    FSAL { Name = VFS; }
}
LOG { Default_Log_Level = EVENT; }
EOF
    # rpcbind then ganesha, sharing a private /run (rpcbind.sock) and nothing else of the host's
    cat >"$d/run.sh" <<EOF
mount -t tmpfs -o mode=755 pwrun /run
mkdir -p /run/rpcbind /run/ganesha
chown _rpc /run/rpcbind 2>/dev/null || true
rpcbind -f -h $SIP &
sleep 0.5
exec ganesha.nfsd -F -f $d/ganesha.conf -L $d/ganesha.log -p $d/ganesha.pid -N NIV_EVENT
EOF
    bg_srv unshare -m --propagation private sh "$d/run.sh"
    wait_port tcp 2049 150
    wait_port tcp 20048
    cap_start nfs-2049 tcp port 2049 or tcp port 111 or tcp port 20048
    cli nfs-ls "nfs://$SIP/export?version=4"
    cli nfs-cat "nfs://$SIP/export/hello.txt?version=4"
    cli nfs-cp "$d/up.txt" "nfs://$SIP/export/up.txt?version=4"
    cli nfs-ls "nfs://$SIP/export?version=3"
    cli nfs-cat "nfs://$SIP/export/notes.txt?version=3"
    cap_stop
}

# pymodbus's Modbus/TCP server (Debian python3-pymodbus 3.0: StartTcpServer, one unit, a
# 100-value datastore per table) answers Debian's mbpoll, one TCP flow per run: read holding
# registers (FC 3), coils (FC 1), input registers (FC 4), write one holding register (FC 6),
# then a read far outside the datastore, answered by exception 0x83 / code 2 (illegal data address).
rec_modbus-502() {
    cat >"$WORK/modbusd.py" <<'EOF'
# The Debian pymodbus (python3-pymodbus 3.0) Modbus/TCP server with a small datastore.
import sys
from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server import StartTcpServer
unit = ModbusSlaveContext(
    di=ModbusSequentialDataBlock(0, [i % 2 for i in range(100)]),
    co=ModbusSequentialDataBlock(0, [(i + 1) % 2 for i in range(100)]),
    hr=ModbusSequentialDataBlock(0, [1000 + i for i in range(100)]),
    ir=ModbusSequentialDataBlock(0, [2000 + i for i in range(100)]))
StartTcpServer(context=ModbusServerContext(slaves=unit, single=True), address=(sys.argv[1], 502))
EOF
    bg_srv /usr/bin/python3 "$WORK/modbusd.py" "$SIP"
    wait_port tcp 502
    cap_start modbus-502 tcp port 502
    cli mbpoll -m tcp -a 1 -r 1 -c 4 -1 "$SIP" >/dev/null
    cli mbpoll -m tcp -a 1 -t 0 -r 1 -c 8 -1 "$SIP" >/dev/null
    cli mbpoll -m tcp -a 1 -t 3 -r 1 -c 4 -1 "$SIP" >/dev/null
    cli mbpoll -m tcp -a 1 -r 1 -1 "$SIP" 123 >/dev/null
    cli mbpoll -m tcp -a 1 -r 5000 -c 2 -1 "$SIP" >/dev/null 2>&1 || true   # the exception response
    cap_stop
}

# BitTorrent peer wire protocol (BEP 3) between two python3-libtorrent sessions (Debian's
# libtorrent-rasterbar 2.0, the library behind deluge and qbittorrent): a seeder on $SIP:6881
# with a 64 KiB file and its v1 .torrent (create_torrent, no tracker), and a leecher on $CIP:6881
# that adds the torrent, is told the seeder's address (connect_peer) and downloads the file.
# DHT, LSD, UPnP and NAT-PMP off; protocol encryption off (the plain "\x13BitTorrent protocol"
# handshake); uTP off, so the one flow is TCP (rec_bittorrent-6881 below).
bt_session() {   # bt_session: $WORK/bt.py, the python3-libtorrent .torrent maker, seeder and leecher
    cat >"$WORK/bt.py" <<'EOF'
# python3-libtorrent (Debian libtorrent-rasterbar 2.0, the library behind deluge/qbittorrent):
#   bt.py make FILE TORRENT                  v1 .torrent of FILE, no tracker
#   bt.py seed|leech TORRENT DIR ADDR:PORT TRANSPORT [PEER_ADDR:PORT]
import sys, time
import libtorrent as lt

def session(listen, transport):
    utp, tcp = transport == "utp", transport == "tcp"
    return lt.session({
        "listen_interfaces": listen, "enable_dht": False, "enable_lsd": False,
        "enable_upnp": False, "enable_natpmp": False, "enable_ip_notifier": False,
        "dht_bootstrap_nodes": "", "out_enc_policy": lt.enc_policy.disabled,
        "in_enc_policy": lt.enc_policy.disabled,
        "enable_outgoing_utp": utp, "enable_incoming_utp": utp,
        "enable_outgoing_tcp": tcp, "enable_incoming_tcp": tcp,
        "alert_mask": lt.alert.category_t.status_notification | lt.alert.category_t.error_notification})

cmd = sys.argv[1]
if cmd == "make":
    fs = lt.file_storage()
    lt.add_files(fs, sys.argv[2])
    t = lt.create_torrent(fs, 16384, flags=lt.create_torrent.v1_only)
    t.set_creator("portwatch-capture")
    lt.set_piece_hashes(t, sys.argv[2].rsplit("/", 1)[0])
    open(sys.argv[3], "wb").write(lt.bencode(t.generate()))
    sys.exit(0)
torrent, save, listen, transport = sys.argv[2:6]
ses = session(listen, transport)
h = ses.add_torrent({"ti": lt.torrent_info(torrent), "save_path": save})
if cmd == "seed":
    while True:
        time.sleep(1)
peer = sys.argv[6].rsplit(":", 1)
h.connect_peer((peer[0], int(peer[1])))
deadline = time.time() + 15
while time.time() < deadline and not h.status().is_seeding:
    time.sleep(0.1)
ok = h.status().is_seeding
print("leech:", "complete" if ok else "incomplete", h.status().total_payload_download, "bytes")
ses.remove_torrent(h)
time.sleep(0.5)
del ses
sys.exit(0 if ok else 1)
EOF
}

bt_record() {   # bt_record NAME tcp|utp FILTER...
    local name=$1 transport=$2; shift 2
    local d=$WORK/bt
    mkdir -p "$d/seed" "$d/leech"
    bt_session
    # 64 KiB of seeded pseudo-random bytes: the same file, so the same info hash, on every run
    /usr/bin/python3 -c 'import random, sys; sys.stdout.buffer.write(random.Random(6881).randbytes(65536))' \
        >"$d/seed/portwatch-64k.bin"
    rm -f "$d/leech/portwatch-64k.bin"
    /usr/bin/python3 "$WORK/bt.py" make "$d/seed/portwatch-64k.bin" "$d/pw.torrent"
    bg_srv /usr/bin/python3 "$WORK/bt.py" seed "$d/pw.torrent" "$d/seed" "$SIP:6881" "$transport"
    wait_port "${transport/utp/udp}" 6881
    sleep 1     # the seeder checks its file before it serves it
    cap_start "$name" "$@"
    cli /usr/bin/python3 "$WORK/bt.py" leech "$d/pw.torrent" "$d/leech" "$CIP:6881" "$transport" "$SIP:6881"
    cmp "$d/seed/portwatch-64k.bin" "$d/leech/portwatch-64k.bin"
    cap_stop
}

rec_bittorrent-6881() { bt_record bittorrent-6881 tcp tcp port 6881; }

# The same exchange over uTP (BEP 29, UDP): both sessions with TCP off and uTP on.
rec_bittorrent-utp-6881() { bt_record bittorrent-utp-6881 utp udp port 6881; }

# ffmpeg as the RTSP server (Debian packages no RTSP media server): in listen mode it takes one
# ANNOUNCE/SETUP/RECORD session (RFC 2326 sections 10.3, 10.4, 10.11) and reads the stream; a
# second ffmpeg in pw-cli pushes a 3 s 160x120 MPEG-4 test pattern (OPTIONS, ANNOUNCE with SDP,
# SETUP, RECORD, TEARDOWN), first over RTP/AVP/UDP (RTP to server_port 5000, an RTCP sender
# report to 5001), then over RTP/AVP/TCP (RTP and RTCP interleaved in $-frames on the RTSP
# connection, section 10.12). The server exits after each session, so it is started twice.
rec_rtsp-554() {
    local t s
    cap_start rtsp-554 tcp port 554 or udp
    for t in udp tcp; do
        srv timeout 20 ffmpeg -nostdin -hide_banner -loglevel warning -rtsp_flags listen -timeout 10 \
            -i "rtsp://$SIP:554/live" -f null - >>"$WORK/daemons.log" 2>&1 &
        s=$!
        wait_port tcp 554
        cli timeout 20 ffmpeg -nostdin -hide_banner -loglevel warning -re -f lavfi \
            -i testsrc=size=160x120:rate=10 -t 3 -c:v mpeg4 -b:v 64k \
            -rtsp_transport "$t" -f rtsp "rtsp://$SIP:554/live"
        wait "$s"
    done
    cap_stop
}

# nginx with the RTMP module (libnginx-mod-rtmp; config under $WORK) serves a live application
# on 1935: ffmpeg in pw-cli publishes a 4 s 160x120 FLV test pattern (handshake, connect,
# releaseStream/FCPublish, createStream, publish, then video messages), and while it runs a
# second ffmpeg plays the stream back (handshake, connect, createStream, play) for 1 s
rec_rtmp-1935() {
    local d=$WORK/rtmp pub
    mkdir -p "$d"
    cat >"$d/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
user root;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections 64; }
rtmp {
    access_log $d/access.log;
    server {
        listen $SIP:1935;
        application live {
            live on;
            record off;
        }
    }
}
EOF
    bg_srv nginx -p "$d/" -e "$d/error.log" -c "$d/nginx.conf" -g 'daemon off;'
    wait_port tcp 1935
    cap_start rtmp-1935 tcp port 1935
    cli timeout 20 ffmpeg -nostdin -hide_banner -loglevel warning -re -f lavfi \
        -i testsrc=size=160x120:rate=10 -t 4 -c:v flv1 -b:v 64k -flvflags no_duration_filesize \
        -f flv "rtmp://$SIP/live/test" &
    pub=$!
    sleep 1
    # a short probe: the default 5 s would outlast the publisher and the player would wait forever
    cli timeout 20 ffmpeg -nostdin -hide_banner -loglevel warning -analyzeduration 500000 \
        -i "rtmp://$SIP/live/test" -t 1 -f null -
    wait "$pub"
    cap_stop
}

# SMB over the NetBIOS session service only: Samba's smbd with "smb ports = 139" (nothing on 445,
# no nmbd) and one guest share; smbclient (as NetBIOS name PWCLI) on 139 lists the shares, then
# lists the share and reads a file. Each connection opens with a NetBIOS Session Request (0x81,
# called and calling names) and its Positive Session Response (0x82), then SMB2/3 inside NetBIOS
# session messages (RFC 1002 4.3).
rec_smb-139() {
    local d=$WORK/smb139
    samba_share "$d" "smb ports = 139"
    # in a session of its own: on exit it signals its whole process group
    bg_srv setsid smbd -F --no-process-group -s "$d/smb.conf"
    wait_port tcp 139
    cap_start smb-139 tcp port 139
    cli smbclient -L "//$SIP" -p 139 -n PWCLI -N -s "$d/smb.conf" >/dev/null 2>&1
    cli smbclient "//$SIP/share" -p 139 -n PWCLI -N -s "$d/smb.conf" -c 'ls; get hello.txt /dev/null' >/dev/null 2>&1
    cap_stop
}

# An HTTP forward proxy: tinyproxy on 10.77.0.1:3128 (CONNECT allowed to 443 and 8443 only) in
# front of nginx on 10.77.0.1:80 and :443 (the proxy reaches it inside pw-srv, off the pair).
# From pw-cli, curl through the proxy: a GET with an absolute URI (RFC 9110 7.1, RFC 9112 3.2.2),
# a CONNECT 10.77.0.1:443 and TLS inside the tunnel (RFC 9110 9.3.6), and a CONNECT to port 25 that
# the proxy refuses (403). Only the client-proxy leg, tcp/3128, is recorded.
rec_http-proxy-3128() {
    nginx_start "listen $SIP:80; listen $SIP:443 ssl;"
    wait_port tcp 80
    wait_port tcp 443
    local d=$WORK/tinyproxy
    mkdir -p "$d"
    cat >"$d/tinyproxy.conf" <<EOF
User root
Group root
Port 3128
Listen $SIP
Timeout 30
MaxClients 16
Allow 10.77.0.0/24
ConnectPort 443
ConnectPort 8443
ViaProxyName "tinyproxy"
LogLevel Info
LogFile "$d/tinyproxy.log"
PidFile "$d/tinyproxy.pid"
DefaultErrorFile "$d/error.html"
EOF
    # an empty error page: the 403 is its header alone, so curl (which reads no body after a refused
    # CONNECT) never closes on unread bytes, and the teardown is the same FIN exchange on every run
    : >"$d/error.html"
    bg_srv tinyproxy -d -c "$d/tinyproxy.conf"
    wait_port tcp 3128
    cap_start http-proxy-3128 tcp port 3128
    cli curl -sS -A "$UA" -x "http://$SIP:3128" "http://$SIP/" -o /dev/null
    cli curl -sS -k -A "$UA" -x "http://$SIP:3128" "https://$SIP/" -o /dev/null
    cli curl -sS -A "$UA" -x "http://$SIP:3128" "https://$SIP:25/" -o /dev/null 2>/dev/null || true
    cap_stop
}

# SNMPv3 (RFC 3414 USM, RFC 3826 AES): net-snmp snmpd with its own config (-C -c) and persistent
# directory under $WORK, a fixed engine ID (text, so the same on every run), an authPriv user
# (HMAC-SHA-96 and AES-128-CFB) and a noAuthNoPriv user. net-snmp clients, each request its own
# flow and each starting with engine discovery (RFC 3414 §4: noAuthNoPriv, empty engine ID,
# answered by a Report of usmStatsUnknownEngineIDs): an authPriv get and GetBulk walk, a
# noAuthNoPriv get, the authPriv user with a wrong passphrase (Report usmStatsWrongDigests) and an
# unknown user (Report usmStatsUnknownUserNames).
rec_snmpv3-161() {
    local d=$WORK/snmpv3 a=(-On -r 0 -t 2)
    mkdir -p "$d/srv" "$d/cli"
    echo 'mibs :' >"$d/cli/snmp.conf"     # numeric OIDs only: no MIB files to load
    cat >"$d/snmpd.conf" <<EOF
engineID pwlab-snmpd
[snmp] mibs :
createUser pwadmin SHA "pw-auth-secret" AES "pw-priv-secret"
createUser pwguest
rouser pwadmin priv
rouser pwguest noauth
sysLocation portwatch-lab
sysDescr portwatch-lab net-snmp agent
sysName pwsrv
sysContact noc@example.test
EOF
    bg_srv env SNMP_PERSISTENT_DIR="$d/srv" snmpd -f -Lo -C -c "$d/snmpd.conf" -p "$d/snmpd.pid" "udp:$SIP:161"
    wait_port udp 161
    cap_start snmpv3-161 udp port 161
    local c=(env SNMPCONFPATH="$d/cli" SNMP_PERSISTENT_DIR="$d/cli")
    local v3=(-v3 -l authPriv -u pwadmin -a SHA -A pw-auth-secret -x AES -X pw-priv-secret)
    cli "${c[@]}" snmpget "${v3[@]}" "${a[@]}" "$SIP" 1.3.6.1.2.1.1.1.0 1.3.6.1.2.1.1.5.0 1.3.6.1.2.1.1.6.0
    cli "${c[@]}" snmpbulkwalk -Cr8 "${v3[@]}" "${a[@]}" "$SIP" 1.3.6.1.2.1.1 >/dev/null
    cli "${c[@]}" snmpget -v3 -l noAuthNoPriv -u pwguest "${a[@]}" "$SIP" 1.3.6.1.2.1.1.5.0
    cli "${c[@]}" snmpget -v3 -l authPriv -u pwadmin -a SHA -A wrong-auth-secret -x AES -X wrong-priv-secret \
        "${a[@]}" "$SIP" 1.3.6.1.2.1.1.5.0 || true
    cli "${c[@]}" snmpget -v3 -l noAuthNoPriv -u nosuchuser "${a[@]}" "$SIP" 1.3.6.1.2.1.1.5.0 || true
    cap_stop
}

# Syslog over TCP (RFC 6587): rsyslogd with imtcp on 514 and no other input (its own config, pid
# file and work directory), and util-linux logger, one TCP connection each: RFC 3164 and RFC 5424
# (with structured data) messages with LF-terminated framing (RFC 6587 §3.4.2, logger's default
# on TCP), then RFC 5424 and two RFC 3164 messages in one connection with octet counting (§3.4.1).
rec_syslog-tcp-514() {
    local d=$WORK/rsyslog-tcp l=(logger --tcp --server "$SIP" --port 514 -t portwatch)
    mkdir -p "$d"
    cat >"$d/rsyslog.conf" <<EOF
global(workDirectory="$d")
module(load="imtcp")
input(type="imtcp" address="$SIP" port="514")
*.* action(type="omfile" file="$d/syslog.log")
EOF
    bg_srv rsyslogd -n -f "$d/rsyslog.conf" -i "$d/rsyslogd.pid"
    wait_port tcp 514
    cap_start syslog-tcp-514 tcp port 514
    cli "${l[@]}" --rfc3164 -p auth.notice "test message rfc3164 over tcp"
    cli "${l[@]}" --rfc5424 -p user.info --msgid PWTEST --sd-id portwatch@32473 --sd-param 'flow="2"' \
        "test message rfc5424 over tcp"
    cli "${l[@]}" --rfc5424 --octet-count -p daemon.warning "test message rfc5424, octet-counted"
    printf 'first of two rfc3164 lines\nsecond of two rfc3164 lines\n' \
        | cli "${l[@]}" --rfc3164 --octet-count -p local0.info
    cap_stop
    log "rsyslogd wrote $(grep -c portwatch "$d/syslog.log" || true) of 5 messages"
}

# Network Time Security (RFC 8915): chronyd in pw-srv as an NTS server (NTS-KE on tcp/4460 with a
# self-signed certificate for pwsrv.example.test, NTP on udp/123, local stratum 8) and chronyd -Q
# in pw-cli as an NTS client trusting that certificate. The client resolves the name from a hosts
# file bound over /etc/hosts in its own mount namespace, so its TLS ClientHello carries SNI. One
# NTS-KE session (TLS 1.3, ALPN "ntske/1", records Next Protocol / AEAD / cookies), then three
# NTPv4 client/server exchanges with NTS extension fields (Unique Identifier, NTS Cookie, NTS
# Authenticator and Encrypted Extension Fields), each from a new source port. -x: the clock is
# never touched; -u root: no switch to _chrony, which could not read $WORK.
rec_nts-4460() {
    local d=$WORK/chrony-nts n=pwsrv.example.test
    mkdir -p "$d/srv-dump"
    make_cert "$n"
    printf '127.0.0.1 localhost\n%s %s\n' "$SIP" "$n" >"$d/hosts"
    cat >"$d/srv.conf" <<EOF
local stratum 8
allow 10.77.0.0/24
bindaddress $SIP
port 123
ntsport 4460
ntsserverkey $WORK/$n.key
ntsservercert $WORK/$n.crt
ntsdumpdir $d/srv-dump
driftfile $d/srv.drift
pidfile $d/srv.pid
cmdport 0
EOF
    cat >"$d/cli.conf" <<EOF
server $n iburst nts maxsamples 4
ntstrustedcerts $WORK/$n.crt
pidfile $d/cli.pid
cmdport 0
EOF
    bg_srv chronyd -d -x -u root -f "$d/srv.conf"
    wait_port udp 123
    wait_port tcp 4460
    cap_start nts-4460 tcp port 4460 or udp port 123
    cli unshare -m sh -c "mount --bind '$d/hosts' /etc/hosts && exec chronyd -Q -x -u root -t 20 -f '$d/cli.conf'" 2>&1 || true
    cap_stop
}

# ipsec_swanctl WHO LOCAL_ADDR REMOTE_ADDR ME PEER LOCAL_TS REMOTE_TS: $d/WHO/swanctl.conf of
# rec_ipsec-4500 (PSK "portwatch-ipsec-psk", ids ME/PEER.example.test, encap = yes); no
# remote_addrs when REMOTE_ADDR is empty (the responder takes any).
ipsec_swanctl() {
    local who=$1 local_addr=$2 remote_addr=$3 me=$4 peer=$5 local_ts=$6 remote_ts=$7
    {
        printf 'connections {\n    pw {\n        version = 2\n        local_addrs = %s\n' "$local_addr"
        if [ -n "$remote_addr" ]; then printf '        remote_addrs = %s\n' "$remote_addr"; fi
        cat <<EOF
        encap = yes
        local {
            auth = psk
            id = $me.example.test
        }
        remote {
            auth = psk
            id = $peer.example.test
        }
        children {
            pw {
                local_ts = $local_ts/32
                remote_ts = $remote_ts/32
                esp_proposals = aes128gcm16
            }
        }
    }
}
secrets {
    ike-pw {
        id-1 = srv.example.test
        id-2 = cli.example.test
        secret = "portwatch-ipsec-psk"
    }
}
EOF
    } >"$d/$who/swanctl.conf"
}

# strongSwan IKEv2 with NAT traversal forced (encap = yes on both peers, RFC 7296 2.23): two
# charon daemons (swanctl configs, PSK), the responder in pw-srv, the initiator in pw-cli. Neither
# kernel ESP (XFRM) is needed: the kernel-libipsec plugin does ESP in user space over a TUN device,
# always UDP-encapsulated (RFC 3948). IKE_SA_INIT on 500, then IKE_AUTH on 4500 behind the non-ESP
# marker; three pings between 10.79.0.2 and 10.79.0.1 (addresses on lo, the child SA's traffic
# selectors) as ESP-in-UDP on 4500, NAT-T keepalives (0xff) from the initiator, then the delete.
# A fake NAT (encap = yes) makes no keepalives, so nft in pw-cli translates the initiator's port
# 500 to 1500 and it finds itself behind a real NAT.
# Each charon runs in a mount namespace of its own with a private /run (its pid file is fixed).
rec_ipsec-4500() {
    local d=$WORK/ipsec who
    mkdir -p "$d"
    srv ip addr add 10.79.0.1/32 dev lo
    cli ip addr add 10.79.0.2/32 dev lo
    # a real NAT in front of the initiator (its IKE port 500 leaves as 1500, 4500 stays): the
    # NAT_DETECTION hashes then show it behind a NAT, so it sends the keepalives (RFC 3948 2.3)
    cli nft add table ip pwnat
    cli nft add chain ip pwnat post '{ type nat hook postrouting priority srcnat; }'
    cli nft add rule ip pwnat post udp sport 500 snat to "$CIP:1500"
    for who in srv cli; do
        mkdir -p "$d/$who"
        cat >"$d/$who/strongswan.conf" <<EOF
charon {
    port = 500
    port_nat_t = 4500
    keep_alive = 2s
    plugins {
        vici {
            socket = unix://$d/$who/charon.vici
        }
        kernel-libipsec {
            load = yes
        }
        forecast {
            load = no
        }
        bypass-lan {
            load = no
        }
    }
    filelog {
        log {
            path = $d/$who/charon.log
            default = 1
            flush_line = yes
        }
    }
}
EOF
    done
    # PSK both ways, UDP encapsulation forced, a host-to-host child SA; the initiator's is the
    # responder's seen from the other side, with the address it connects to
    ipsec_swanctl srv "$SIP" "" srv cli 10.79.0.1 10.79.0.2
    ipsec_swanctl cli "$CIP" "$SIP" cli srv 10.79.0.2 10.79.0.1
    STRONGSWAN_CONF=$d/srv/strongswan.conf bg_srv unshare -m --propagation private \
        sh -c 'mount -t tmpfs pwrun /run && exec /usr/lib/ipsec/charon'
    (STRONGSWAN_CONF=$d/cli/strongswan.conf cli unshare -m --propagation private \
        sh -c 'mount -t tmpfs pwrun /run && exec /usr/lib/ipsec/charon' >>"$WORK/daemons.log" 2>&1 &)
    wait_port udp 4500
    for _ in $(seq 50); do [ -S "$d/srv/charon.vici" ] && [ -S "$d/cli/charon.vici" ] && break; sleep 0.1; done
    srv swanctl --load-all --uri "unix://$d/srv/charon.vici" --file "$d/srv/swanctl.conf" >/dev/null
    cli swanctl --load-all --uri "unix://$d/cli/charon.vici" --file "$d/cli/swanctl.conf" >/dev/null
    cap_start ipsec-4500 udp port 500 or udp port 4500
    cli swanctl --initiate --child pw --uri "unix://$d/cli/charon.vici" >/dev/null
    cli ping -c 3 -i 0.5 -W 2 -I 10.79.0.2 10.79.0.1 >/dev/null
    sleep 5     # two NAT-T keepalives (keep_alive = 2s)
    cli swanctl --terminate --ike pw --uri "unix://$d/cli/charon.vici" >/dev/null
    cap_stop
}

# slapd with one certificate on 389 (StartTLS, RFC 4511 section 4.14) and 636 (LDAPS).
# ldapsearch of the root DSE over ldaps (anonymous), ldapwhoami with a simple bind over ldaps,
# ldapsearch -ZZ (StartTLS extended operation, then a simple bind and the root DSE inside TLS).
rec_ldaps-636() {
    local d=$WORK/ldaps
    make_cert ldap.example.test
    mkdir -p "$d/db"
    cat >"$d/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $d/slapd.pid
TLSCertificateFile $WORK/ldap.example.test.crt
TLSCertificateKeyFile $WORK/ldap.example.test.key
database mdb
suffix "dc=example,dc=test"
rootdn "cn=admin,dc=example,dc=test"
rootpw $CAPPASS
directory $d/db
EOF
    bg_srv slapd -d 0 -h "ldap://$SIP/ ldaps://$SIP/" -f "$d/slapd.conf"
    wait_port tcp 389
    wait_port tcp 636
    cap_start ldaps-636 tcp port 389 or tcp port 636
    export LDAPTLS_REQCERT=never   # self-signed, and its name is not 10.77.0.1
    cli ldapsearch -x -H "ldaps://$SIP" -b '' -s base namingContexts >/dev/null
    cli ldapwhoami -x -H "ldaps://$SIP" -D cn=admin,dc=example,dc=test -w "$CAPPASS" >/dev/null
    cli ldapsearch -x -ZZ -H "ldap://$SIP" -D cn=admin,dc=example,dc=test -w "$CAPPASS" \
        -b '' -s base namingContexts >/dev/null
    cap_stop
}

# OpenSMTPD as a submission server (RFC 6409) on 587: STARTTLS required before anything else
# (RFC 3207, tls-require), AUTH (RFC 4954) against a credentials table, offered inside TLS only.
# Debian 12's OpenSMTPD 6.8.0p2 cannot finish a TLS handshake under OpenSSL 3, RSA or ECDSA key
# alike (its privsep "pony" process signs with a stand-in key that OpenSSL 3 no longer routes to
# the key holder: "missing private key", github.com/OpenSMTPD/OpenSMTPD/issues/1171 and 1239,
# fixed upstream after 6.8), so: swaks --tls gets "220 Ready to start TLS", then its ClientHello
# is answered by a ServerHello and an (encrypted, TLS 1.3) internal_error alert and swaks gives
# up; swaks asking for AUTH PLAIN without --tls (the cleartext EHLO offers no AUTH, so swaks
# QUITs: no credentials cross); a python3 smtplib client (stdlib: swaks never sends an AUTH the
# server did not offer) that says EHLO, then AUTH PLAIN with its initial response (RFC 4954
# section 4) in clear anyway: the credentials cross, smtpd answers 503 5.5.1, then QUIT.
# smtpd's control socket (/run/smtpd.sock) and queue (/var/spool/smtpd) are fixed paths: it runs
# in its own mount namespace over tmpfs copies, beside any other smtpd.
rec_smtp-587() {
    local d=$WORK/smtpd587
    mkdir -p "$d/maildir"
    # RSA: make_cert's P-256 key fails one step earlier in the same bug ("EVP lib")
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=mail.example.test \
        -addext subjectAltName=DNS:mail.example.test \
        -keyout "$d/mail.example.test.key" -out "$d/mail.example.test.crt" 2>/dev/null
    # smtpd.conf(5) credentials table: user, then a crypt(3) hash of the password
    printf '%s %s\n' "$CAPUSER" "$(openssl passwd -6 -salt portwatch "$CAPPASS")" >"$d/creds"
    chmod 600 "$d/creds"
    cat >"$d/smtpd.conf" <<EOF
pki mail.example.test cert "$d/mail.example.test.crt"
pki mail.example.test key "$d/mail.example.test.key"
table creds file:$d/creds
listen on $SIP port 587 tls-require pki mail.example.test auth <creds> hostname mail.example.test
action "local" maildir "$d/maildir"
match from any for domain "example.test" action "local"
EOF
    bg_srv unshare -m --propagation private sh -c 'mount -t tmpfs pwrun /run &&
        mount -t tmpfs pwspool /var/spool && exec smtpd -d -f "$1"' smtpd "$d/smtpd.conf"
    wait_port tcp 587
    cap_start smtp-587 tcp port 587
    # exits 29: "TLS startup failed (... tlsv1 alert internal error)"
    cli swaks --server "$SIP" --port 587 --ehlo client.example.test --tls \
        --auth PLAIN --auth-user "$CAPUSER" --auth-password "$CAPPASS" \
        --from "$CAPUSER@client.example.test" --to root@example.test \
        --header 'Subject: portwatch test' --body 'Hello from the portwatch capture script.' \
        >/dev/null 2>&1 || true
    # exits 28: "Host did not advertise authentication"
    cli swaks --server "$SIP" --port 587 --ehlo client.example.test \
        --auth PLAIN --auth-user "$CAPUSER" --auth-password "$CAPPASS" \
        --from "$CAPUSER@client.example.test" --to root@example.test >/dev/null 2>&1 || true
    cli python3 - "$SIP" "$CAPUSER" "$CAPPASS" <<'PY'
import base64, smtplib, sys
s = smtplib.SMTP(sys.argv[1], 587, local_hostname="client.example.test", timeout=10)
s.ehlo()
resp = base64.b64encode(f"\0{sys.argv[2]}\0{sys.argv[3]}".encode()).decode()
code, _ = s.docmd("AUTH", "PLAIN " + resp)   # 503 5.5.1 Invalid command: Command not supported
assert code == 503, code
s.quit()
PY
    cap_stop
}
# DNS over TCP (RFC 7766) from an authoritative server: knotd (foreground, config, rundir,
# storage and zone file under $WORK) serving example.test (SOA, NS, A, AAAA, MX, TXT, CNAME) on
# 10.77.0.1@53 with an ACL allowing AXFR from 10.77.0.2 only, and kdig. Four TCP connections: an
# SOA query; two queries (A, then MX) on one kept-open connection (+keepopen) with the EDNS TCP
# keepalive option (RFC 7828, empty in queries: kdig 3.2 has no +keepalive, so +ednsopt=11);
# an AXFR (RFC 5936); an AXFR from a second client address (10.77.0.3 on pw-cli's lo),
# which the ACL refuses.
rec_dns-tcp-53() {
    local d=$WORK/knot
    mkdir -p "$d/run" "$d/db" "$d/zones"
    cat >"$d/zones/example.test.zone" <<'EOZ'
$ORIGIN example.test.
$TTL 300
@       IN SOA  ns1.example.test. hostmaster.example.test. 2024010101 3600 900 604800 300
@       IN NS   ns1.example.test.
@       IN NS   ns2.example.test.
@       IN A    10.77.0.80
@       IN MX   10 mail.example.test.
@       IN TXT  "v=spf1 mx -all"
ns1     IN A    10.77.0.1
ns2     IN A    10.77.0.53
www     IN A    10.77.0.80
www     IN AAAA fd77::80
mail    IN A    10.77.0.25
mail    IN AAAA fd77::25
web     IN CNAME www.example.test.
_sip._udp IN SRV 10 5 5060 sip.example.test.
sip     IN A    10.77.0.60
EOZ
    cat >"$d/knot.conf" <<EOC
server:
    rundir: "$d/run"
    pidfile: "$d/run/knot.pid"
    listen: $SIP@53
database:
    storage: "$d/db"
control:
    listen: "$d/run/knot.sock"
log:
  - target: stderr
    any: info
acl:
  - id: xfr-cli
    address: $CIP
    action: transfer
template:
  - id: default
    storage: "$d/zones"
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: example.test
    acl: xfr-cli
EOC
    bg_srv knotd -c "$d/knot.conf"
    wait_port tcp 53
    for _ in $(seq 50); do srv knotc -c "$d/knot.conf" zone-status example.test 2>/dev/null | grep -q 'serial: 2024010101' && break; sleep 0.1; done
    cli ip addr add 10.77.0.3/32 dev lo
    cap_start dns-tcp-53 tcp port 53
    local k="cli kdig @$SIP +tcp +timeout=3 +retry=0"
    $k example.test SOA
    $k +keepopen +ednsopt=11 www.example.test A example.test MX
    $k example.test AXFR
    $k -b 10.77.0.3 example.test AXFR || true
    cap_stop
    cli ip addr del 10.77.0.3/32 dev lo
}

# HTTP/2 over cleartext TCP with prior knowledge (RFC 9113 section 3.3, "h2c"): nginx
# (nginx_start, "listen ... http2" without ssl) and two clients. Two connections: curl
# --http2-prior-knowledge GET /; the page and a 404 as streams 1 and 3 of one connection, from
# Debian's python3-httpx (with python3-h2, http1=False: prior knowledge), because curl 7.88.1
# breaks a reused prior-knowledge connection ("Error in the HTTP2 framing layer", curl issue
# 10634, fixed in 8.0).
rec_http2-80() {
    nginx_start "listen $SIP:80 http2;"
    wait_port tcp 80
    cat >"$WORK/h2c.py" <<'EOF'
# Two GETs as two streams of one prior-knowledge HTTP/2 connection (httpx + h2).
import sys, httpx
with httpx.Client(http1=False, http2=True, headers={"user-agent": sys.argv[1]}) as c:
    for path in ("/", "/missing"):
        r = c.get(f"http://{sys.argv[2]}{path}")
        print(r.http_version, r.status_code)
EOF
    cap_start http2-80 tcp port 80
    cli curl -sS -A "$UA" --http2-prior-knowledge -o /dev/null -w '%{http_version} %{http_code}\n' "http://$SIP/"
    cli /usr/bin/python3 "$WORK/h2c.py" "$UA" "$SIP"
    cap_stop
}
# A WebSocket (RFC 6455) echo server written with Debian's python3-websockets (its legacy asyncio
# API, a few lines, not a daemon Debian ships) on 10.77.0.1:8080, and a python3-websockets client.
# Two connections: the upgrade to /chat (101), three text messages and one binary message echoed,
# then a normal close (close frame each way, code 1000); then /forbidden, refused by the server's
# process_request hook with 403 before any upgrade (the client raises InvalidStatusCode).
rec_websocket-8080() {
    cat >"$WORK/ws-srv.py" <<'PY'
# WebSocket echo server (python3-websockets, Debian package), for record.sh only
import asyncio, http, sys
import websockets

async def echo(ws, path):
    async for msg in ws:          # text and binary frames alike, sent back as received
        await ws.send(msg)

async def gate(path, headers):    # refuse the handshake on anything but /chat
    if path != "/chat":
        return http.HTTPStatus.FORBIDDEN, [("Content-Type", "text/plain")], b"forbidden\n"
    return None

async def main():
    async with websockets.serve(echo, sys.argv[1], int(sys.argv[2]), process_request=gate):
        await asyncio.Future()

asyncio.run(main())
PY
    cat >"$WORK/ws-cli.py" <<'PY'
# WebSocket client (python3-websockets, Debian package), for record.sh only
import asyncio, sys
import websockets

async def main(base):
    async with websockets.connect(base + "/chat") as ws:
        for m in ("hello portwatch", "second message", "third and last text"):
            await ws.send(m)
            assert await ws.recv() == m
        await ws.send(b"\x00\x01\x02\x03portwatch-binary\xff")
        assert await ws.recv() == b"\x00\x01\x02\x03portwatch-binary\xff"
    # leaving the block sends a close frame (1000) and waits for the server's
    try:
        async with websockets.connect(base + "/forbidden"):
            pass
    except websockets.InvalidStatusCode as e:
        print("refused:", e.status_code)

asyncio.run(main(sys.argv[1]))
PY
    bg_srv /usr/bin/python3 "$WORK/ws-srv.py" "$SIP" 8080
    wait_port tcp 8080
    cap_start websocket-8080 tcp port 8080
    cli /usr/bin/python3 "$WORK/ws-cli.py" "ws://$SIP:8080"
    cap_stop
}

# MariaDB with TLS (ssl_cert/ssl_key from make_cert, its own datadir/socket/pid under $WORK) and the
# mariadb client. Three logins from 10.77.0.2: user pw with --ssl (greeting in clear, the client's
# SSLRequest, then TLS inside the same connection, then the handshake response and SELECT 1); pw
# again with --skip-ssl (login in clear: mysql_native_password, the 20-byte scrambled hash, and the
# query); pwtls, created REQUIRE SSL, with --skip-ssl (the server refuses it: access denied).
rec_mysql-tls-3306() {
    local d=$WORK/mysql-tls
    mkdir -p "$d"
    make_cert db.example.test
    mariadb-install-db --no-defaults --datadir="$d/data" --user=root \
        --auth-root-authentication-method=socket >/dev/null 2>&1
    bg_srv mariadbd --no-defaults --datadir="$d/data" --user=root --bind-address="$SIP" \
        --port=3306 --socket="$d/sock" --pid-file="$d/pid" --skip-log-bin --skip-name-resolve \
        --ssl-cert="$WORK/db.example.test.crt" --ssl-key="$WORK/db.example.test.key"
    wait_port tcp 3306 300
    srv mariadb --no-defaults -S "$d/sock" -u root -e "
        CREATE USER 'pw'@'$CIP' IDENTIFIED VIA mysql_native_password USING PASSWORD('pw-secret');
        CREATE USER 'pwtls'@'$CIP' IDENTIFIED VIA mysql_native_password USING PASSWORD('pw-secret') REQUIRE SSL;
        CREATE DATABASE pwdb; GRANT ALL ON pwdb.* TO 'pw'@'$CIP'; GRANT ALL ON pwdb.* TO 'pwtls'@'$CIP';"
    cap_start mysql-tls-3306 tcp port 3306
    cli mariadb --no-defaults -h "$SIP" -P 3306 -u pw -ppw-secret --ssl --ssl-verify-server-cert=0 pwdb \
        -e 'SELECT 1'
    cli mariadb --no-defaults -h "$SIP" -P 3306 -u pw -ppw-secret --skip-ssl pwdb -e 'SELECT 1'
    cli mariadb --no-defaults -h "$SIP" -P 3306 -u pwtls -ppw-secret --skip-ssl pwdb -e 'SELECT 1' || true
    cap_stop
}

# LDP: two FRRouting ldpd (each with its own zebra, which ldpd learns interfaces, addresses and
# routes from), one per namespace, every file (configs, pids, vty and zserv sockets, ldpd control
# socket, logs) under $WORK so nothing meets a host FRR; the daemons drop to the frr user. Link
# Hellos (UDP 646 to 224.0.0.2) every second from both sides; pw-cli has the higher transport
# address (10.77.0.2), so it is the active LSR (RFC 5036 2.5.2) and opens TCP 646 to 10.77.0.1:
# Initialization, KeepAlive, Address and Label Mapping messages (implicit null for each side's
# veth /24 and loopback /32 LSR-ID, 198.51.100.1 and .2; a real label for the kernel route each
# side has to the other's loopback). Session holdtime 15, so KeepAlives every 5 s; then pw-cli's
# "no mpls ldp": Notification (Shutdown) and the TCP close. The kernel needs no MPLS support
# (zebra only installs no labels).
rec_ldp-646() {
    local d=$WORK/frr who ns me peer lo peerlo ifn
    mkdir -p "$d"
    for who in srv cli; do
        ns=$NS_S me=$SIP peer=$CIP lo=198.51.100.1 peerlo=198.51.100.2
        [ "$who" = cli ] && ns=$NS_C me=$CIP peer=$SIP lo=198.51.100.2 peerlo=198.51.100.1
        ifn=$(ip netns exec "$ns" ip -o -4 addr show to "$me/32" | awk '{print $2}')
        ip netns exec "$ns" ip addr add "$lo/32" dev lo
        ip netns exec "$ns" ip route add "$peerlo/32" via "$peer"
        mkdir -p "$d/$who"
        printf 'hostname ldp-%s\n' "$who" >"$d/$who/zebra.conf"
        cat >"$d/$who/ldpd.conf" <<EOF
hostname ldp-$who
mpls ldp
 router-id $lo
 neighbor $peerlo session holdtime 15
 discovery hello holdtime 5
 discovery hello interval 1
 address-family ipv4
  discovery transport-address $me
  interface $ifn
  exit
 exit-address-family
 exit
EOF
    done
    chmod 711 "$WORK"; chown -R frr:frr "$d"
    for who in srv cli; do
        ns=$NS_S; [ "$who" = cli ] && ns=$NS_C
        ip netns exec "$ns" /usr/lib/frr/zebra -P 0 -f "$d/$who/zebra.conf" -i "$d/$who/zebra.pid" \
            -z "$d/$who/zserv.api" --vty_socket "$d/$who" --log "file:$d/$who/zebra.log" \
            >>"$WORK/daemons.log" 2>&1 &
        for _ in $(seq 50); do [ -S "$d/$who/zserv.api" ] && break; sleep 0.1; done
    done
    cap_start ldp-646 port 646
    for who in srv cli; do
        ns=$NS_S; [ "$who" = cli ] && ns=$NS_C
        ip netns exec "$ns" /usr/lib/frr/ldpd -P 0 -f "$d/$who/ldpd.conf" -i "$d/$who/ldpd.pid" \
            -z "$d/$who/zserv.api" --vty_socket "$d/$who" --ctl_socket "$d/$who" \
            --log "file:$d/$who/ldpd.log" >>"$WORK/daemons.log" 2>&1 &
    done
    for _ in $(seq 100); do     # the server's label for 198.51.100.1/32 has reached pw-cli
        cli vtysh --vty_socket "$d/cli" -d ldpd -c 'show mpls ldp binding' 2>/dev/null |
            grep -q '^ipv4 198.51.100.1/32 .*imp-null' && break
        sleep 0.1
    done
    cli vtysh --vty_socket "$d/cli" -d ldpd -c 'show mpls ldp neighbor' | grep -q OPERATIONAL
    sleep 6     # a KeepAlive round
    cli vtysh --vty_socket "$d/cli" -d ldpd -c 'configure terminal' -c 'no mpls ldp' >/dev/null
    sleep 1
    cap_stop
}

# Teredo (RFC 4380): the miredo-server Teredo server and three miredo Teredo clients. Server and
# clients refuse non-global IPv4 (libteredo is_ipv4_global_unicast(): no 10/8, 172.16/12,
# 192.168/16), so this one runs on TEST-NET-1 addresses added to the pair: the server binds
# 192.0.2.1 and, as RFC 4380 wants two consecutive addresses, 192.0.2.2 (UDP 3544 on both); the
# client under test is miredo in pw-cli on 192.0.2.101:50001 (ServerAddress 192.0.2.1; no relay
# needed, only Teredo peers are pinged). Two more miredo clients in pw-srv (192.0.2.11:50011 on
# interface teredo-b, 192.0.2.12:50012 on teredo-c) are its Teredo peers; their own qualification
# stays on pw-srv's loopback, off the capture. Recorded: the client's qualification (router
# solicitation with authentication header, router advertisement with authentication and origin
# indication: IPv6/ICMPv6 in UDP 3544), ping6 from it to peer b (direct bubble to b, indirect
# bubble via the server, b's bubble back, then echo request/reply straight between the client
# ports), and ping6 from peer c to it (c's direct bubble, c's indirect bubble forwarded by the
# server from 3544 with an origin indication, the client's bubble back, echo request/reply).
teredo_cli_conf() {   # teredo_cli_conf FILE IFNAME BIND_ADDR BIND_PORT
    printf '%s\n' 'RelayType client' "InterfaceName $2" 'ServerAddress 192.0.2.1' \
        "BindAddress $3" "BindPort $4" >"$1"
}
teredo_addr() {   # teredo_addr srv|cli IFNAME: the Teredo address miredo's hook put on IFNAME
    local a
    for _ in $(seq 100); do
        a=$("$1" ip -6 -o addr show dev "$2" scope global 2>/dev/null | awk '{print $4}' | cut -d/ -f1)
        [ -n "$a" ] && { echo "$a"; return 0; }
        sleep 0.1
    done
    log "no Teredo address on $2"; return 1
}
rec_teredo-3544() {
    local d=$WORK/teredo a b c ip
    mkdir -p "$d"
    for ip in 192.0.2.1 192.0.2.2 192.0.2.11 192.0.2.12; do srv ip addr add "$ip/24" dev pw-s; done
    cli ip addr add 192.0.2.101/24 dev pw-c
    printf 'ServerBindAddress 192.0.2.1\n' >"$d/miredo-server.conf"
    bg_srv miredo-server -f -c "$d/miredo-server.conf" -p "$d/miredo-server.pid"
    wait_port udp 3544
    teredo_cli_conf "$d/peer-b.conf" teredo-b 192.0.2.11 50011
    teredo_cli_conf "$d/peer-c.conf" teredo-c 192.0.2.12 50012
    teredo_cli_conf "$d/client.conf" teredo 192.0.2.101 50001
    bg_srv miredo -f -c "$d/peer-b.conf" -p "$d/peer-b.pid"
    bg_srv miredo -f -c "$d/peer-c.conf" -p "$d/peer-c.pid"
    b=$(teredo_addr srv teredo-b); c=$(teredo_addr srv teredo-c)
    # two Teredo interfaces in pw-srv: each peer's traffic leaves through its own one
    srv ip -6 rule add from "$b" table 111; srv ip -6 route add 2001::/32 dev teredo-b table 111
    srv ip -6 rule add from "$c" table 112; srv ip -6 route add 2001::/32 dev teredo-c table 112
    cap_start teredo-3544 udp
    cli miredo -f -c "$d/client.conf" -p "$d/client.pid" >>"$WORK/daemons.log" 2>&1 &
    a=$(teredo_addr cli teredo)
    cli ping -6 -c 3 -i 0.5 -W 2 "$b"
    srv ping -6 -c 3 -i 0.5 -W 2 -I "$c" "$a"
    cap_stop
    srv ip addr flush dev pw-s to 192.0.2.0/24; cli ip addr flush dev pw-c to 192.0.2.0/24
    srv ip -6 rule del table 111; srv ip -6 rule del table 112
}

# S7comm (Siemens S7 over ISO-on-TCP: TPKT RFC 1006 + COTP ISO 8073 class 0 + S7) on TCP 102 between
# a Snap7 server and Snap7 clients (python-snap7 from PyPI in a throwaway venv; its manylinux wheel
# bundles the real libsnap7 C library; Debian 12 packages no S7 stack), driven by s7_snap7.py. The
# server registers DB1 (64 bytes). Three connections (rack 0 slot 1, TSAP 0x0101): COTP CR/CC, S7
# Setup Communication, then DB1 read, write and read back; the CPU info and order code (SZL reads
# 0x001C and 0x0011); the CPU state (SZL 0x0424) and a DB1 read. Each ends with a TCP FIN.
rec_s7comm-102() {
    local py
    py=$(pypi_venv snap7 'python-snap7>=2.0,<3')
    bg_srv "$py" "$HERE/s7_snap7.py" serve "$SIP"
    wait_port tcp 102
    cap_start s7comm-102 tcp port 102
    cli "$py" "$HERE/s7_snap7.py" client "$SIP" 0 1 rw
    cli "$py" "$HERE/s7_snap7.py" client "$SIP" 0 1 info
    cli "$py" "$HERE/s7_snap7.py" client "$SIP" 0 1 status
    cap_stop
}

# IEC 60870-5-104 (telecontrol over TCP 2404) between a c104 server and c104 clients (c104 from
# PyPI in a throwaway venv: the Python binding of the real lib60870 C library; Debian 12 packages no
# IEC 104 stack), driven by iec104_c104.py. The server has station 47 with a single point, a float
# measurement and a single-command point, no periodic reports. Two connections: STARTDT act/con,
# general interrogation (C_IC_NA_1 act, act-con, the points, act-term), a single command ON
# (C_SC_NA_1 act/act-con; first connection only), STOPDT act/con, then the TCP close.
rec_iec104-2404() {
    local py
    py=$(pypi_venv c104 'c104>=2.2')
    bg_srv "$py" "$HERE/iec104_c104.py" serve "$SIP"
    wait_port tcp 2404
    cap_start iec104-2404 tcp port 2404
    cli "$py" "$HERE/iec104_c104.py" client "$SIP" gi+cmd
    cli "$py" "$HERE/iec104_c104.py" client "$SIP" gi
    cap_stop
}

# BACnet/IP (ASHRAE 135 Annex J, UDP 47808) between two bacpypes3 devices (PyPI, in a throwaway venv:
# Debian 12 packages no BACnet stack), driven by bacnet_dev.py beside this script: device 1001 on
# $SIP:47808 with an analog-value and a binary-value; device 2002 on $CIP:47808 sends a broadcast and a
# unicast Who-Is (I-Am back), ReadProperty of object-name and present-value, WriteProperty of the
# analog-value's present-value and a read-back, and a ReadProperty of a missing object (Error PDU).
rec_bacnet-47808() {
    local py
    py=$(pypi_venv bacpypes3 'bacpypes3>=0.0.100')
    bg_srv "$py" "$HERE/bacnet_dev.py" server "$SIP/24"
    wait_port udp 47808
    cap_start bacnet-47808 udp port 47808
    cli "$py" "$HERE/bacnet_dev.py" client "$CIP/24" "$SIP" >>"$WORK/daemons.log" 2>&1
    cap_stop
}

# DNP3 over TCP (IEEE 1815, port 20000) with opendnp3, the reference stack, through its yadnp3 Python
# bindings (PyPI, in a throwaway venv: Debian 12 packages no DNP3 stack), driven by dnp3_stack.py
# beside this script: an outstation (link address 10) on $SIP:20000 and a master (link address 1)
# from $CIP: the outstation's unsolicited null response, the master's startup tasks (disable
# unsolicited, integrity poll = class 1/2/3/0 read), a link status request, a class 0 read, a
# direct-operate CROB and a select-before-operate CROB, then FIN; then a second master session with
# only the startup tasks and the link status request. IPv4 only: opendnp3's TCP client cannot
# connect over IPv6 ("Address family not supported by protocol").
rec_dnp3-20000() {
    local py
    py=$(pypi_venv yadnp3 'yadnp3>=3.2')
    bg_srv "$py" "$HERE/dnp3_stack.py" outstation "$SIP"
    wait_port tcp 20000
    cap_start dnp3-20000 tcp port 20000
    cli "$py" "$HERE/dnp3_stack.py" master "$CIP" "$SIP"
    cli "$py" "$HERE/dnp3_stack.py" master "$CIP" "$SIP" poll
    cap_stop
}

# Diameter base protocol (RFC 6733) over plain TCP between two freeDiameter 1.2.1 peers
# (freediameterd): srv.example.test listens on 10.77.0.1:3868 (no TLS_Cred, no TLS port: SecPort 0)
# and admits any *.example.test peer without TLS (acl_wl.fdx from freediameter-extensions,
# ALLOW_IPSEC); cli.example.test in pw-cli connects to it (ConnectPeer ... No_TLS): CER/CEA, then
# DWR/DWA (TwTimer 6 s, freeDiameter's minimum; it jitters by up to 2 s), and on SIGTERM a DPR/DPA
# and close.
# Debian's freediameter-extensions has no test_app.fdx, so the application request comes from a
# second peer, a python3 stdlib script speaking RFC 6733 (Debian ships no Diameter client tool):
# CER/CEA advertising Credit-Control (RFC 4006, application 4), one CCR, which srv relays to
# cli.example.test (the only other peer of realm example.test, advertising the relay application),
# whose answer (3002 DIAMETER_UNABLE_TO_DELIVER, E bit: no CC server anywhere) srv relays back;
# then its DWR/DWA and DPR/DPA.
rec_diameter-3868() {
    local d=$WORK/diameter who me peer pid
    mkdir -p "$d"
    echo 'ALLOW_IPSEC *.example.test' >"$d/acl_wl.conf"
    for who in srv cli; do
        me=$SIP peer=
        if [ "$who" = cli ]; then
            me=$CIP peer="ConnectPeer = \"srv.example.test\" { ConnectTo = \"$SIP\"; Port = 3868; No_TLS; };"
        else
            peer="LoadExtension = \"/usr/lib/freeDiameter/acl_wl.fdx\" : \"$d/acl_wl.conf\";"
        fi
        cat >"$d/$who.conf" <<EOF
Identity = "$who.example.test";
Realm = "example.test";
Port = 3868;
SecPort = 0;
No_SCTP;
No_IPv6;
ListenOn = "$me";
TcTimer = 3;
TwTimer = 6;
$peer
EOF
    done
    cat >"$d/dpeer.py" <<'PY'
# A minimal Diameter peer (RFC 6733) in python3 stdlib, for record.sh only (Debian ships no Diameter
# client tool): CER/CEA, one Credit-Control-Request (RFC 4006, application 4), DWR/DWA, DPR/DPA.
import socket, struct, sys

host, realm, srv, dest_realm = sys.argv[1:5]
hbh, e2e = 0x50770000, 0x2a500000

def avp(code, data, mandatory=True):
    if isinstance(data, int):
        data = struct.pack("!I", data)
    elif isinstance(data, str):
        data = data.encode()
    n = 8 + len(data)
    return struct.pack("!IB", code, 0x40 if mandatory else 0) + n.to_bytes(3, "big") + data + b"\0" * (-n % 4)

def msg(cmd, app, avps, request=True, proxiable=False, ids=None):
    global hbh, e2e
    if ids is None:                               # a request: new Hop-by-Hop and End-to-End ids
        hbh += 1; e2e += 1
        ids = struct.pack("!II", hbh, e2e)
    body = b"".join(avps)
    flags = (0x80 if request else 0) | (0x40 if proxiable else 0)
    return b"\1" + (20 + len(body)).to_bytes(3, "big") + bytes([flags]) + cmd.to_bytes(3, "big") \
        + struct.pack("!I", app) + ids + body

def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("peer closed")
        b += c
    return b

def recv(s):
    hdr = recv_exact(s, 20)
    body = recv_exact(s, int.from_bytes(hdr[1:4], "big") - 20)
    flags, cmd, rc, i = hdr[4], int.from_bytes(hdr[5:8], "big"), None, 0
    while i < len(body):
        code, n = struct.unpack("!I", body[i:i + 4])[0], int.from_bytes(body[i + 5:i + 8], "big")
        if code == 268:                                   # Result-Code
            rc = struct.unpack("!I", body[i + 8:i + 12])[0]
        i += n + (-n % 4)
    print(f"cmd={cmd} {'request' if flags & 0x80 else 'answer'} Result-Code={rc}")
    return cmd, flags, hdr[12:20], rc

ident = [avp(264, host), avp(296, realm)]                 # Origin-Host, Origin-Realm

def answer_of(s, want):          # the answer to command `want`, answering the peer's DWRs meanwhile
    while True:
        cmd, flags, ids, rc = recv(s)
        if flags & 0x80 and cmd == 280:
            s.sendall(msg(280, 0, [avp(268, 2001)] + ident, request=False, ids=ids))   # DWA
        elif cmd == want and not flags & 0x80:
            return rc

s = socket.create_connection((srv, 3868))
me = socket.inet_aton(s.getsockname()[0])
s.sendall(msg(257, 0, ident + [avp(257, b"\0\1" + me), avp(266, 0),        # Host-IP-Address, Vendor-Id
                               avp(269, "portwatch-pydiameter", False),    # Product-Name
                               avp(258, 4)]))                              # Auth-Application-Id: CC
assert answer_of(s, 257) == 2001
s.sendall(msg(272, 4, [avp(263, f"{host};1;1;portwatch")] + ident           # Session-Id
              + [avp(283, dest_realm), avp(258, 4),                          # Destination-Realm
                 avp(461, "portwatch@example.test"),                         # Service-Context-Id
                 avp(416, 1), avp(415, 0),                                   # CC-Request-Type/-Number
                 avp(1, "pwuser@example.test")], proxiable=True))            # User-Name
answer_of(s, 272)
s.sendall(msg(280, 0, ident))                                                # DWR
answer_of(s, 280)
s.sendall(msg(282, 0, ident + [avp(273, 0)]))                                # DPR, REBOOTING
answer_of(s, 282)
s.close()
PY
    bg_srv freeDiameterd -c "$d/srv.conf"
    wait_port tcp 3868
    cap_start diameter-3868 tcp port 3868
    cli freeDiameterd -c "$d/cli.conf" >"$d/cli.log" 2>&1 &
    for _ in $(seq 100); do grep -qs "'STATE_OPEN'" "$d/cli.log" && break; sleep 0.1; done
    grep -q "'STATE_OPEN'" "$d/cli.log"
    cli /usr/bin/python3 "$d/dpeer.py" py.example.test example.test "$SIP" example.test
    sleep 9     # at least one watchdog round (Tw 6 s +-2 s after the last message)
    # SIGTERM to the client peer (pw-cli's only process by now): DPR/DPA, then the TCP close
    pid=$(ip netns pids "$NS_C")
    kill -TERM $pid
    for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    cap_stop
}

# DCE/RPC connection-oriented over TCP (ncacn_ip_tcp, C706 ch. 12, MS-RPCE 2.1.1.1): Samba 4.17's
# samba-dcerpcd started standalone ("rpc start on demand helpers = no", no smbd) with two of its
# helpers only, rpcd_epmapper (the endpoint mapper, 135/tcp) and rpcd_lsad (lsarpc, samr, dssetup
# on one dynamic port, the first of "rpc server dynamic port range": 49152; with a third helper the
# dynamic ports would be handed out in whatever order the helpers answer, so not reproducibly).
# From pw-cli, rpcclient over ncacn_ip_tcp: an anonymous epmlookup straight to 135 (epm_Lookup,
# the endpoint list); an anonymous enumdomusers (epm_Map on 135 for samr, then bind and samr calls
# on 49152); pwcap (in a tdbsam passdb under $WORK) with NTLMSSP at packet integrity ([sign]):
# querydominfo and enumdomusers (epm_Map, then samr), then lsaquery (epm_Map, then lsarpc
# OpenPolicy, which Samba refuses over ncacn_ip_tcp: NT_STATUS_ACCESS_DENIED).
rec_dcerpc-135() {
    local d=$WORK/dcerpc
    mkdir -p "$d"/{lock,state,cache,private,run/ncalrpc,log}
    cat >"$d/smb.conf" <<EOC
[global]
    workgroup = PWLAB
    netbios name = PWSRV
    server role = standalone server
    interfaces = $SIP/24
    bind interfaces only = yes
    rpc start on demand helpers = no
    rpc server dynamic port range = 49152-49159
$(samba_dirs "$d")
    log file = $d/log/%m.log
EOC
    ensure_user
    printf '%s\n%s\n' "$CAPPASS" "$CAPPASS" | srv smbpasswd -c "$d/smb.conf" -a -s "$CAPUSER" >/dev/null
    # in a session of its own: on exit it signals its whole process group
    bg_srv setsid /usr/libexec/samba/samba-dcerpcd -F --no-process-group -s "$d/smb.conf" \
        /usr/libexec/samba/rpcd_epmapper /usr/libexec/samba/rpcd_lsad
    wait_port tcp 135
    wait_port tcp 49152
    cap_start dcerpc-135 tcp
    cli rpcclient -s "$d/smb.conf" -N -U% "ncacn_ip_tcp:$SIP[135]" -c epmlookup >/dev/null
    cli rpcclient -s "$d/smb.conf" -N -U% "ncacn_ip_tcp:$SIP" -c enumdomusers >/dev/null
    cli rpcclient -s "$d/smb.conf" -U "$CAPUSER%$CAPPASS" "ncacn_ip_tcp:$SIP[sign]" \
        -c 'querydominfo; enumdomusers; lsaquery' >/dev/null 2>&1 || true
    cap_stop
}

# GTPv1 (3GPP TS 29.060): OsmoGGSN (osmo-ggsn, config under $WORK: GTP-C on $SIP:2123, GTP-U on
# $SIP:2152, APN "internet" on its TUN device pwggsn, 192.168.77.1/24, MS addresses from a dynamic
# pool in 192.168.77.0/24; VTY and CTRL only on pw-srv's loopback) and its test SGSN, sgsnemu (same
# package), in pw-cli from $CIP:2123/2152 with a TUN device of its own (--createif, the MS address
# 192.168.77.2) and the default route through it. GTP-C: Echo Request/Response and Create PDP
# Context Request/Response; then, through the tunnel as GTP-U G-PDUs (each way, TEID-addressed):
# 3 pings to the GGSN's TUN address, a DNS query (dig) to dnsmasq and an HTTP GET (curl) to nginx
# on that address; then SIGTERM to sgsnemu: Delete PDP Context Request/Response. sgsnemu stays up
# after the delete (until its next 10 s timer, then 20 s more), so it is killed once that is done.
rec_gtp-2152() {
    local d=$WORK/gtp gw=192.168.77.1
    mkdir -p "$d/ggsn" "$d/sgsn"
    cat >"$d/osmo-ggsn.cfg" <<EOF
log stderr
 logging filter all 1
 logging color 0
 logging print category 1
 logging timestamp 0
 logging level ggsn info
 logging level lgtp info
line vty
 no login
 bind 127.0.0.1
ctrl
 bind 127.0.0.1
ggsn ggsn0
 gtp state-dir $d/ggsn
 gtp bind-ip $SIP
 apn internet
  gtpu-mode tun
  tun-device pwggsn
  type-support v4
  ip prefix dynamic 192.168.77.0/24
  ip dns 0 $gw
  ip ifconfig $gw/24
  no shutdown
 default-apn internet
 no shutdown ggsn
EOF
    bg_srv osmo-ggsn -c "$d/osmo-ggsn.cfg"
    wait_port udp 2123 && wait_port udp 2152
    for _ in $(seq 50); do srv ip -4 -o addr show dev pwggsn 2>/dev/null | grep -q "$gw/" && break; sleep 0.1; done
    # the services behind the GGSN, on its TUN address
    nginx_start "listen $gw:80;"
    wait_port tcp 80
    bg_srv dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --no-poll --pid-file= \
        --bind-interfaces --listen-address="$gw" --except-interface=lo \
        --local=/example.test/ --address=/www.example.test/$gw --log-queries --log-facility=-
    wait_port udp 53
    cap_start gtp-2152 udp port 2123 or udp port 2152
    (cd "$d/sgsn" && exec ip netns exec "$NS_C" sgsnemu -l "$CIP" -r "$SIP" --apn internet \
        --createif --tun-device pwsgsn --defaultroute \
        --statedir "$d/sgsn" --pidfile "$d/sgsn/sgsnemu.pid") >>"$WORK/daemons.log" 2>&1 &
    local sgsn=$!
    for _ in $(seq 100); do cli ip -4 -o addr show dev pwsgsn 2>/dev/null | grep -q inet && break; sleep 0.1; done
    for _ in $(seq 50); do cli ip -4 route show default | grep -q pwsgsn && break; sleep 0.1; done
    cli ping -q -c 3 -i 0.2 -W 2 "$gw" >/dev/null
    cli dig @"$gw" +tries=1 +time=2 www.example.test A +short
    cli curl -sS -A "$UA" -H 'Host: www.example.test' "http://$gw/" -o /dev/null
    sleep 0.5
    kill -TERM "$sgsn"      # sgsnemu deletes its PDP context
    sleep 1
    kill -KILL "$sgsn"; wait "$sgsn" 2>/dev/null || true   # then idles: it ignores a second TERM
    cap_stop
}

# --- main -------------------------------------------------------------------

main() {
    local names=("$@") n rc failed=()
    [ ${#names[@]} -eq 0 ] && names=("${ALL[@]}")
    for n in "${names[@]}"; do
        declare -F "rec_$n" >/dev/null || { echo "unknown capture: $n (see --list)" >&2; exit 2; }
    done
    WORK=$(mktemp -d /tmp/pw-record.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    ns_up
    for n in "${names[@]}"; do
        log "recording $n"
        set +e; ( set -e; "rec_$n" ); rc=$?; set -e
        if [ $rc -eq 0 ]; then
            log "$n: $(stat -c %s "$OUT/$n.pcap") bytes"
        else
            log "$n FAILED (see $WORK/daemons.log)"; failed+=("$n")
            [ -n "${KEEP_WORK:-}" ] && cp "$WORK/daemons.log" "/tmp/pw-daemons-$n.log" || true
            TCPDUMP_PID=; ns_reset
        fi
    done
    if [ ${#failed[@]} -gt 0 ]; then log "failed: ${failed[*]}"; return 1; fi
}

main "$@"
