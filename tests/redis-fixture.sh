#!/usr/bin/env bash
# Starts or stops the loopback redis-server that the Redis store's tests use.
#   redis-fixture.sh start PORT DIR   — returns once it answers PING
#   redis-fixture.sh stop PORT DIR
set -euo pipefail
action=$1 port=$2 dir=$3
mkdir -p "$dir"
case "$action" in
start)
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
        --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir"
    for _ in $(seq 1 100); do
        redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && exit 0
        sleep 0.05
    done
    echo "redis-server did not start on port $port" >&2
    exit 1 ;;
stop)
    redis-cli -p "$port" shutdown nosave 2>/dev/null || kill "$(cat "$dir/redis.pid")" 2>/dev/null || true ;;
esac
