#!/usr/bin/env bash
# A throwaway Redis server for the test suite, on 127.0.0.1 only.
#
#   scripts/redis.sh start PORT DIR [persistent]
#                                  install Redis if absent (Debian's `redis-server`; needs root),
#                                  start it on 127.0.0.1:PORT with its files in DIR, and print its
#                                  URL: the only thing this script ever writes to stdout. Without
#                                  `persistent` it keeps nothing on disk (--save "" --appendonly
#                                  no); with it, every write goes to an append-only file in DIR
#                                  (fsync always), so a server started again on DIR has it all.
#   scripts/redis.sh stop DIR      stop that server (if running) and delete DIR.
#
# DIR is a new or empty directory (e.g. from mktemp -d), or one this script started a server in
# before (a restart); the script marks it, and `stop` deletes only marked directories. No
# password: the server listens on 127.0.0.1 only and must never hold anything but test data.
# Exit status 75 means PORT was already taken: choose another port and try again.
set -euo pipefail

MARKER=.duopass-redis
EX_PORT_TAKEN=75

say() { echo "redis.sh: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}
usage() { die "usage: $0 start PORT DIR [persistent] | $0 stop DIR"; }

absolute() {
    case $1 in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s/%s\n' "$PWD" "$1" ;;
    esac
}

has_redis() { command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; }

install_redis() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        die "Redis is not installed (no redis-server/redis-cli found); as root on Debian this script installs it, otherwise install the 'redis-server' package"
    fi
    say "Redis not found; installing Debian's 'redis-server' package"
    # Keep the package from starting its own server on port 6379: we only want the programs.
    # invoke-rc.d asks /usr/sbin/policy-rc.d; exit status 101 forbids starting a service.
    local policy=/usr/sbin/policy-rc.d made=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        made=1
    fi
    local status=0
    apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            redis-server >/dev/null || status=$?
    [ -z "$made" ] || rm -f "$policy"
    [ "$status" = 0 ] || die "apt-get install redis-server failed (exit status $status)"
}

port_taken() { (exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

alive() { # the server of DIR runs (a zombie, or another program under its old pid, does not)
    [ -s "$PIDFILE" ] && grep -qa redis-server "/proc/$(cat "$PIDFILE")/cmdline" 2>/dev/null
}

show_log() {
    [ -s "$LOG" ] || return 0
    say "last lines of $LOG:"
    tail -n 20 "$LOG" | sed 's/^/    /'
}

start() {
    local port=$1 mode=$2
    case $port in '' | *[!0-9]*) die "PORT must be a number, got '$port'" ;; esac
    if [ "${#port}" -gt 5 ] || [ "$port" -lt 1024 ] || [ "$port" -gt 65535 ]; then
        die "PORT must be in 1024..65535, got $port"
    fi
    case $mode in '' | persistent) ;; *) usage ;; esac

    mkdir -p "$DIR"
    if [ ! -e "$DIR/$MARKER" ]; then
        [ -z "$(ls -A "$DIR")" ] || die "$DIR is not empty and was not made by this script"
        touch "$DIR/$MARKER"
    fi
    has_redis || {
        install_redis
        has_redis || die "installed 'redis-server' but still found no redis-server/redis-cli"
    }
    local tries=0
    while alive && [ "$tries" -lt 50 ]; do # one shutting down (a restart) is given 5 s
        tries=$((tries + 1))
        sleep 0.1
    done
    alive && die "a server already runs in $DIR (pid $(cat "$PIDFILE"))"
    if port_taken "$port"; then
        say "error: port $port on 127.0.0.1 is already in use"
        exit $EX_PORT_TAKEN
    fi
    local keep=(--save "" --appendonly no)
    [ "$mode" != persistent ] || keep=(--save "" --appendonly yes --appendfsync always)
    say "starting $(redis-server --version | cut -d' ' -f1-3) on 127.0.0.1:$port${mode:+ ($mode)}"
    # Its own session, so a terminal's Ctrl-C reaches the test run and not the server (the run
    # stops it); its output to the log, not to the caller's pipe, which it would hold open.
    setsid redis-server --port "$port" --bind 127.0.0.1 --dir "$DIR" --daemonize no \
        --logfile "" "${keep[@]}" </dev/null >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    tries=0
    until redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; do
        if ! alive; then
            show_log
            grep -q 'Address already in use' "$LOG" 2>/dev/null && exit $EX_PORT_TAKEN
            die "the server did not start"
        fi
        tries=$((tries + 1))
        if [ "$tries" -ge 100 ]; then
            show_log
            die "the server does not answer on 127.0.0.1:$port"
        fi
        sleep 0.1
    done
    say "ready"
    URL="redis://127.0.0.1:$port/0"
}

stop() {
    if [ ! -d "$DIR" ]; then
        say "$DIR does not exist; nothing to stop"
        return 0
    fi
    [ -e "$DIR/$MARKER" ] || die "$DIR was not made by this script; not touching it"
    if alive; then
        local pid tries=0
        pid=$(cat "$PIDFILE")
        kill -TERM "$pid" 2>/dev/null || true
        while alive && [ "$tries" -lt 100 ]; do
            tries=$((tries + 1))
            sleep 0.1
        done
        if alive; then
            say "the server (pid $pid) ignored SIGTERM; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$DIR"
    say "stopped; removed $DIR"
}

[ $# -ge 2 ] || usage
case $1 in
    start) [ $# -eq 3 ] || [ $# -eq 4 ] || usage ;;
    stop) [ $# -eq 2 ] || usage ;;
    *) usage ;;
esac
if [ "$1" = start ]; then DIR=$(absolute "$3"); else DIR=$(absolute "$2"); fi
case $DIR in *[[:space:]]*) die "DIR must not contain spaces: $DIR" ;; esac
PIDFILE=$DIR/redis.pid
LOG=$DIR/redis.log
case $1 in
    start)
        URL=
        start "$2" "${4:-}" </dev/null >&2
        printf '%s\n' "$URL"
        ;;
    stop) stop </dev/null >&2 ;;
esac
