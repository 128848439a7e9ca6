#!/usr/bin/env bash
# Starts or stops the loopback unbound that serves the resolver's tests their own zone,
# grey-test., so that no test asks the internet (not RFC 6761's test.: libunbound answers that
# one itself, as it does the documentation prefixes' reverse zones, so the PTR records are
# for 198.18.0.0/15 and 3fff::/20). The zones are static: a name they do not list is NXDOMAIN.
#   dns-fixture.sh start PORT DIR [UNBOUND]   — returns once it answers a query
#   dns-fixture.sh stop PORT DIR
set -euo pipefail
action=$1 port=$2 dir=$3 unbound=${4:-unbound}
# Each group of tests keeps its own zones in dns-zones/*.conf (server: clauses of local-zone and
# local-data), served beside grey-test. by the same unbound.
zones=$(cd "$(dirname "$0")/dns-zones" && pwd)
mkdir -p "$dir"
case "$action" in
start)
    # A TXT record of several character-strings (RFC 7208 §3.3: read as their concatenation),
    # one of them 255 octets, the most one string holds.
    long=$(printf 'a%.0s' $(seq 1 255))
    cat >"$dir/unbound.conf" <<END
server:
    interface: 127.0.0.1@$port
    port: $port
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$dir"
    pidfile: "$dir/unbound.pid"
    logfile: ""
    use-syslog: no
    verbosity: 1
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "iterator"
    # Nothing leaves loopback: a name outside the zones below is refused at once, never
    # resolved from the root.
    local-zone: "." refuse
    local-zone: "grey-test." static
    local-zone: "0.18.198.in-addr.arpa." static
    local-zone: "f.f.f.3.ip6.arpa." static
    local-data: "grey-test. 3600 IN SOA ns.grey-test. hostmaster.grey-test. 1 3600 600 86400 30"
    local-data: "host.grey-test. 300 IN A 192.0.2.10"
    local-data: "host.grey-test. 300 IN A 192.0.2.11"
    local-data: "host.grey-test. 300 IN AAAA 2001:db8::10"
    local-data: "mail.grey-test. 300 IN A 192.0.2.25"
    local-data: "grey-test. 300 IN MX 10 mail.grey-test."
    local-data: "grey-test. 300 IN MX 20 backup.mail.grey-test."
    local-data: 'spf.grey-test. 300 IN TXT "v=spf1 " "ip4:192.0.2.0/24 " "-all"'
    local-data: 'long.grey-test. 300 IN TXT "$long" "b"'
    local-data: 'two.grey-test. 300 IN TXT "first"'
    local-data: 'two.grey-test. 300 IN TXT "second"'
    local-data: "nodata.grey-test. 300 IN A 192.0.2.99"
    local-data: "alias.grey-test. 300 IN CNAME host.grey-test."
    local-data-ptr: "198.18.0.10 host.grey-test."
    local-data-ptr: "3fff::10 host.grey-test."
include: "$zones/*.conf"
remote-control:
    control-enable: no
END
    # A server left by an earlier run in this directory would answer in place of this one.
    if [ -f "$dir/fixture.pid" ]; then kill "$(cat "$dir/fixture.pid")" 2>/dev/null || true; fi
    "$unbound" -d -c "$dir/unbound.conf" >"$dir/unbound.log" 2>&1 &
    echo $! >"$dir/fixture.pid"
    for _ in $(seq 1 100); do
        # Ready once it answers, and still running: an answer from another server on the port
        # (one this run did not start) while this one failed to bind is no fixture.
        if python3 - "$port" <<'END' 2>/dev/null && sleep 0.2 && kill -0 "$(cat "$dir/fixture.pid")" 2>/dev/null; then exit 0; fi
import socket, sys
q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04host\x09grey-test\x00\x00\x01\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
s.sendto(q, ("127.0.0.1", int(sys.argv[1])))
sys.exit(0 if s.recv(512)[:2] == b"\x12\x34" else 1)
END
        kill -0 "$(cat "$dir/fixture.pid")" 2>/dev/null || break
        sleep 0.05
    done
    echo "unbound did not start on port $port:" >&2
    cat "$dir/unbound.log" >&2
    exit 1 ;;
stop)
    kill "$(cat "$dir/fixture.pid")" 2>/dev/null || true ;;
esac
