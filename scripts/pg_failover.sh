#!/usr/bin/env bash
# A throwaway pg_auto_failover formation for the failover test, on 127.0.0.1 only: a monitor, a
# primary and a secondary with synchronous replication (a commit waits for the standby).
#
#   scripts/pg_failover.sh start DIR MONITOR_PORT PORT_A PORT_B
#       install pg_auto_failover if absent (Debian's packages; needs root), create the monitor
#       and the nodes `a` and `b` in DIR, start their keepers (`pg_autoctl run`, each in a
#       session of its own, its pid in DIR/NODE/keeper.pid), wait until `a` is the primary and
#       `b` its secondary, and print the server's SQLAlchemy URL: both hosts,
#       target_session_attrs=read-write. The URL is the only thing written to stdout.
#   scripts/pg_failover.sh stop DIR
#       stop every keeper and server of DIR (killed if they linger) and delete DIR.
#
# DIR is a new or empty directory (e.g. from mktemp -d under /tmp); the script takes it over
# (owner postgres, mode 0700) and marks it, and `stop` deletes only marked directories.
# Authentication is `trust` for 127.0.0.1 and DIR's socket only: test data only. As root, the
# servers run as the `postgres` system user. Exit status 75: a port was taken; try others.
# Failure detection is tuned for a test (seconds, not pg_auto_failover's 20 s + 30 s defaults);
# PG_FAILOVER_TIMEOUTS=defaults keeps pg_auto_failover's own, to measure what a deployment that
# changes nothing gets (docs/deploy.md, "Failover").
set -euo pipefail

MARKER=.duopass-pg-failover
EX_PORT_TAKEN=75
WAIT_S=120
PG_BINDIR=${PG_BINDIR:-}

say() { echo "pg_failover.sh: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}
usage() { die "usage: $0 start DIR MONITOR_PORT PORT_A PORT_B | $0 stop DIR"; }

find_bindir() {
    local dir
    [ -n "$PG_BINDIR" ] && { printf '%s\n' "$PG_BINDIR"; return 0; }
    for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV); do
        [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && { printf '%s\n' "$dir"; return 0; }
    done
    return 1
}

has_failover() { # pg_autoctl, and the monitor's extension beside the newest server
    local bin
    command -v pg_autoctl >/dev/null 2>&1 && bin=$(find_bindir) && [ -e "$bin/../lib/pgautofailover.so" ]
}

install_failover() {
    has_failover && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        die "pg_autoctl is not installed; as root on Debian this script installs it (packages pg-auto-failover-cli and postgresql-15-auto-failover)"
    fi
    say "pg_auto_failover not found; installing Debian's packages (takes a minute)"
    mkdir -p /etc/postgresql-common/createcluster.d # no default cluster on port 5432
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/duopass-no-main.conf
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        pg-auto-failover-cli postgresql-15-auto-failover
}

# Runs a program as the cluster's owner, with the node's own HOME and XDG folders (where
# pg_autoctl keeps its configuration, state and pid files) and the formation's socket folder.
as_pg() {
    local node=$1
    shift
    local env=(env HOME="$DIR/$node" XDG_CONFIG_HOME="$DIR/$node/config"
        XDG_DATA_HOME="$DIR/$node/share" XDG_RUNTIME_DIR="$DIR/$node/run"
        PGHOST="$DIR/sock" LC_ALL=C)
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "${env[@]}" "$@"
    else
        "${env[@]}" "$@"
    fi
}

port_taken() { (exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

check_port() {
    case $1 in '' | *[!0-9]*) die "ports must be numbers, got '$1'" ;; esac
    if [ "${#1}" -gt 5 ] || [ "$1" -lt 1024 ] || [ "$1" -gt 65535 ]; then
        die "ports must be in 1024..65535, got $1"
    fi
    if port_taken "$1"; then
        say "error: port $1 on 127.0.0.1 is already in use"
        exit $EX_PORT_TAKEN
    fi
}

# A data directory of ours (trust on loopback only, small memory: three servers share a test
# machine); pg_autoctl includes its own settings at the top of postgresql.conf, so these win.
# A secondary gets both files from its primary's base backup.
init_node() {
    local node=$1 data=$DIR/$1/pgdata
    as_pg "$node" "$BIN/initdb" --pgdata="$data" --username=postgres --auth=trust \
        --encoding=UTF8 --locale=C --no-instructions >/dev/null
    printf '%s\n' \
        '# duopass failover test formation: trust, loopback only' \
        'local all         all trust' \
        'host  all         all 127.0.0.1/32 trust' \
        'local replication all trust' \
        'host  replication all 127.0.0.1/32 trust' >"$data/pg_hba.conf"
    cat >>"$data/postgresql.conf" <<EOF

# duopass failover test formation (scripts/pg_failover.sh)
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR/sock'
max_connections = 200
shared_buffers = '128MB'
effective_cache_size = '512MB'
maintenance_work_mem = '64MB'
work_mem = '4MB'
fsync = on
EOF
}

# Seconds, not pg_auto_failover's defaults: the monitor checks every second, calls a node
# unhealthy after 3 s, and waits 5 s for a lost primary to demote itself (which its keeper does
# after 3 s without the monitor) before it promotes the secondary.
MONITOR_TUNING="
pgautofailover.health_check_period = 1000
pgautofailover.health_check_timeout = 1000
pgautofailover.health_check_max_retries = 1
pgautofailover.health_check_retry_delay = 500
pgautofailover.node_considered_unhealthy_timeout = 3000
pgautofailover.primary_demote_timeout = 5000
pgautofailover.startup_grace_period = 3000"

run_keeper() { # pg_autoctl run, detached in a session of its own; its pid is the group's id
    local node=$1
    as_pg "$node" pg_autoctl config set --pgdata "$DIR/$node/pgdata" \
        postgresql.listen_addresses 127.0.0.1 >/dev/null
    if [ "$node" != monitor ] && [ "${PG_FAILOVER_TIMEOUTS:-}" != defaults ]; then
        as_pg "$node" pg_autoctl config set --pgdata "$DIR/$node/pgdata" \
            timeout.network_partition_timeout 3 >/dev/null
    fi
    setsid bash -c "$(declare -f as_pg); DIR='$DIR'; as_pg $node pg_autoctl run --pgdata '$DIR/$node/pgdata'" \
        </dev/null >"$DIR/$node/keeper.log" 2>&1 &
    echo $! >"$DIR/$node/keeper.pid"
}

show_logs() {
    local log
    for log in "$DIR"/*/keeper.log; do
        [ -s "$log" ] || continue
        say "last lines of $log:"
        tail -n 15 "$log" | sed 's/^/    /' >&2
    done
}

psql_at() { # psql_at PORT DBNAME SQL: one value
    as_pg monitor "$BIN/psql" -X -q -At -h 127.0.0.1 -p "$1" -U postgres -d "$2" -c "$3" 2>/dev/null
}

wait_for() { # wait_for WHAT COMMAND...: until COMMAND succeeds, at most WAIT_S seconds
    local what=$1 tries=0
    shift
    until "$@"; do
        tries=$((tries + 1))
        if [ "$tries" -ge $((WAIT_S * 4)) ]; then
            show_logs
            die "timed out waiting for $what"
        fi
        sleep 0.25
    done
}

monitor_up() { psql_at "$MONITOR_PORT" pg_auto_failover 'select 1' >/dev/null; }

states_are() { # the monitor reports `a` and `b` in these states
    [ "$(psql_at "$MONITOR_PORT" pg_auto_failover \
        "select string_agg(nodename || '=' || reportedstate, ',' order by nodename) from pgautofailover.node")" = "$1" ]
}

start() {
    local node
    for port in "$MONITOR_PORT" "$PORT_A" "$PORT_B"; do check_port "$port"; done
    mkdir -p "$DIR"
    [ -z "$(ls -A "$DIR")" ] || die "$DIR is not empty"
    touch "$DIR/$MARKER"
    install_failover
    BIN=$(find_bindir) || die "no PostgreSQL server programs found (initdb, pg_ctl)"
    mkdir -p "$DIR/sock" "$DIR/monitor" "$DIR/a" "$DIR/b"
    [ "$(id -u)" = 0 ] && chown -R postgres: "$DIR"
    chmod 0700 "$DIR"
    as_pg monitor test -w "$DIR" -a -x "$DIR" ||
        die "the postgres user cannot use $DIR (choose a DIR under /tmp)"
    say "using $(pg_autoctl --version | head -n 1) and $("$BIN/postgres" --version)"

    init_node monitor
    if [ "${PG_FAILOVER_TIMEOUTS:-}" != defaults ]; then
        printf '%s\n' "$MONITOR_TUNING" >>"$DIR/monitor/pgdata/postgresql.conf"
    fi
    as_pg monitor pg_autoctl create monitor --pgctl "$BIN/pg_ctl" \
        --pgdata "$DIR/monitor/pgdata" --pgport "$MONITOR_PORT" --hostname 127.0.0.1 \
        --skip-pg-hba --no-ssl >>"$DIR/monitor/keeper.log" 2>&1 ||
        { show_logs; die "pg_autoctl create monitor failed"; }
    run_keeper monitor
    wait_for "the monitor" monitor_up
    MONITOR="postgres://autoctl_node@127.0.0.1:$MONITOR_PORT/pg_auto_failover?sslmode=disable"

    init_node a
    for node in a b; do
        local port=$PORT_A
        [ "$node" = b ] && port=$PORT_B
        # the secondary's data directory is the primary's base backup, made by pg_autoctl
        as_pg "$node" pg_autoctl create postgres --pgctl "$BIN/pg_ctl" \
            --pgdata "$DIR/$node/pgdata" --pgport "$port" --listen 127.0.0.1 \
            --hostname 127.0.0.1 --name "$node" --monitor "$MONITOR" --dbname duopass \
            --skip-pg-hba --no-ssl --replication-quorum true \
            >>"$DIR/$node/keeper.log" 2>&1 || { show_logs; die "pg_autoctl create postgres $node failed"; }
        run_keeper "$node"
        if [ "$node" = a ]; then
            wait_for "node a as a single primary" states_are "a=single"
        fi
    done
    wait_for "a primary and its secondary" states_are "a=primary,b=secondary"
    say "ready: a primary on $PORT_A, its synchronous standby on $PORT_B"
    URL="postgresql+psycopg://postgres@/duopass?host=127.0.0.1:$PORT_A&host=127.0.0.1:$PORT_B&target_session_attrs=read-write"
}

kill_group() { # SIGNAL PID: the keeper's whole process group (its servers included)
    case $2 in '' | *[!0-9]*) return 0 ;; esac
    kill "-$1" -- "-$2" 2>/dev/null || true
}

lingering() { # the pids of processes still running from DIR's servers and keepers
    local pid
    for pid in $(pgrep -u postgres 2>/dev/null || true); do
        grep -qa -- "$DIR/" "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
    done
    return 0
}

stop() {
    local node pid
    if [ ! -d "$DIR" ]; then
        say "$DIR does not exist; nothing to stop"
        return 0
    fi
    [ -e "$DIR/$MARKER" ] || die "$DIR was not made by this script; not touching it"
    for node in a b monitor; do
        [ -s "$DIR/$node/keeper.pid" ] && kill_group TERM "$(cat "$DIR/$node/keeper.pid")"
    done
    for _ in $(seq 1 60); do
        [ -z "$(lingering)" ] && break
        sleep 0.5
    done
    for node in a b monitor; do
        [ -s "$DIR/$node/keeper.pid" ] && kill_group KILL "$(cat "$DIR/$node/keeper.pid")"
    done
    for pid in $(lingering); do # a postmaster left behind by a killed keeper
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$DIR"
    say "stopped; removed $DIR"
}

[ $# -ge 2 ] || usage
case $1 in
    start) [ $# -eq 5 ] || usage ;;
    stop) [ $# -eq 2 ] || usage ;;
    *) usage ;;
esac
case $2 in
    /*) DIR=$2 ;;
    *) DIR=$PWD/$2 ;;
esac
case $DIR in *"'"* | *[[:space:]]*) die "DIR must not contain quotes or spaces: $DIR" ;; esac
cd / # the postgres user may not be able to read the caller's directory
case $1 in
    start)
        MONITOR_PORT=$3 PORT_A=$4 PORT_B=$5 URL=
        start </dev/null >&2
        printf '%s\n' "$URL"
        ;;
    stop) stop </dev/null >&2 ;;
esac
