#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite, on 127.0.0.1 only.
#
#   scripts/pg.sh start PORT DIR   install PostgreSQL if absent (Debian's packages; needs root),
#                                  create a cluster in DIR, start it on 127.0.0.1:PORT, create the
#                                  database `duopass`, and print its SQLAlchemy URL: the only thing
#                                  this script ever writes to stdout.
#   scripts/pg.sh stop DIR         stop that server and delete DIR.
#
# DIR is a new or empty directory (e.g. from mktemp -d) whose parents the `postgres` user can
# traverse; the script takes it over (owner postgres, mode 0700) and marks it, and `stop` deletes
# only marked directories. Authentication is `trust`, for 127.0.0.1 and DIR's socket only, so the
# cluster must never hold anything but test data. Run as root, the server runs as the `postgres`
# system user (PostgreSQL refuses root); run as anyone else, it runs as that user.
# Exit status 75 means PORT was already taken: choose another port and try again.
# PG_BINDIR overrides where initdb, pg_ctl and postgres are looked for.
set -euo pipefail

MARKER=.duopass-pg
EX_PORT_TAKEN=75

say() { echo "pg.sh: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}
usage() { die "usage: $0 start PORT DIR | $0 stop DIR"; }

absolute() { # a path need not exist yet; resolve it against the caller's directory
    case $1 in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s/%s\n' "$PWD" "$1" ;;
    esac
}

has_server() { [ -x "$1/initdb" ] && [ -x "$1/pg_ctl" ] && [ -x "$1/postgres" ] && [ -x "$1/psql" ]; }

find_bindir() {
    local dir
    if [ -n "${PG_BINDIR:-}" ]; then
        printf '%s\n' "$PG_BINDIR"
        return 0
    fi
    if command -v pg_config >/dev/null 2>&1; then
        dir=$(pg_config --bindir 2>/dev/null || true)
        [ -n "$dir" ] && has_server "$dir" && { printf '%s\n' "$dir"; return 0; }
    fi
    # Debian's layout, newest major version first
    for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV); do
        has_server "$dir" && { printf '%s\n' "$dir"; return 0; }
    done
    return 1
}

install_postgres() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        die "PostgreSQL is not installed (no initdb/pg_ctl/postgres found); as root on Debian this script installs it, otherwise install the 'postgresql' package or set PG_BINDIR"
    fi
    say "PostgreSQL not found; installing Debian's 'postgresql' package (takes a minute)"
    # Keep the package from creating (and starting) its default cluster on port 5432: we only
    # want the binaries. postgresql-common reads this directory from createcluster.conf.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/duopass-no-main.conf
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql
}

ensure_user() {
    [ "$(id -u)" = 0 ] || return 0
    getent passwd postgres >/dev/null && return 0
    say "creating the 'postgres' system user"
    useradd --system --user-group --no-create-home --home-dir /var/lib/postgresql \
        --shell /bin/bash --comment "PostgreSQL administrator" postgres
}

# Runs a PostgreSQL program as the cluster's owner, with a HOME it can read and a locale that
# exists everywhere.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- env HOME="$DIR" LC_ALL=C "$@"
    else
        env HOME="$DIR" LC_ALL=C "$@"
    fi
}

port_taken() { (exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

running_port() { # the port of the server running in $DATA, if one is
    as_pg "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1 || return 1
    sed -n 4p "$DATA/postmaster.pid"
}

show_log() {
    [ -s "$LOG" ] || return 0
    say "last lines of $LOG:"
    tail -n 20 "$LOG" | sed 's/^/    /'
}

start() {
    local port=$1 bound
    case $port in '' | *[!0-9]*) die "PORT must be a number, got '$port'" ;; esac
    if [ "${#port}" -gt 5 ] || [ "$port" -lt 1024 ] || [ "$port" -gt 65535 ]; then
        die "PORT must be in 1024..65535, got $port"
    fi

    mkdir -p "$DIR"
    if [ ! -e "$DIR/$MARKER" ]; then
        [ -z "$(ls -A "$DIR")" ] || die "$DIR is not empty and was not made by this script"
        touch "$DIR/$MARKER"
    fi

    if [ -n "${PG_BINDIR:-}" ] && ! has_server "$PG_BINDIR"; then
        die "PG_BINDIR=$PG_BINDIR lacks initdb, pg_ctl, postgres or psql"
    fi
    BIN=$(find_bindir) || {
        install_postgres
        BIN=$(find_bindir) || die "installed 'postgresql' but still found no initdb/pg_ctl/postgres"
    }
    ensure_user
    say "using $("$BIN/postgres" --version) from $BIN"
    if [ "$(id -u)" = 0 ]; then
        chown -R postgres: "$DIR"
    fi
    chmod 0700 "$DIR"
    as_pg test -w "$DIR" -a -x "$DIR" ||
        die "the postgres user cannot use $DIR: one of its parents is not searchable by it (choose a DIR under /tmp)"

    if bound=$(running_port); then
        [ "$bound" = "$port" ] || die "the server in $DIR already runs on port $bound, not $port"
        say "server in $DIR already running on port $port"
    else
        if port_taken "$port"; then
            say "error: port $port on 127.0.0.1 is already in use"
            exit $EX_PORT_TAKEN
        fi
        if [ ! -s "$DATA/PG_VERSION" ]; then
            rm -rf "$DATA" # a partial initdb from an interrupted run
            say "initdb $DATA"
            as_pg "$BIN/initdb" --pgdata="$DATA" --username=postgres --auth=trust \
                --encoding=UTF8 --locale=C --no-instructions >/dev/null
            # Only 127.0.0.1 and the socket in DIR (mode 0700), replacing initdb's rules.
            printf '%s\n' \
                '# duopass test cluster: trust, loopback only' \
                'local all all trust' \
                'host  all all 127.0.0.1/32 trust' >"$DATA/pg_hba.conf"
            cat >>"$DATA/postgresql.conf" <<EOF

# duopass test cluster (scripts/pg.sh); the port is given at each start
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
max_connections = 200
fsync = on
EOF
        fi
        say "starting on 127.0.0.1:$port"
        if ! as_pg "$BIN/pg_ctl" start --pgdata="$DATA" --log="$LOG" --wait --timeout=120 \
            --silent -o "-p $port"; then
            show_log
            if grep -q 'already in use' "$LOG" 2>/dev/null; then
                exit $EX_PORT_TAKEN
            fi
            die "the server did not start"
        fi
    fi

    local psql=("$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres)
    local tries=0
    until as_pg "${psql[@]}" -d postgres -Atc 'select 1' >/dev/null 2>&1; do
        tries=$((tries + 1))
        if [ "$tries" -ge 60 ]; then
            show_log
            die "the server does not accept connections on 127.0.0.1:$port"
        fi
        sleep 0.5
    done
    if [ -z "$(as_pg "${psql[@]}" -d postgres -Atc "select 1 from pg_database where datname = 'duopass'")" ]; then
        as_pg "${psql[@]}" -d postgres -c 'create database duopass'
    fi
    say "ready"
    URL="postgresql+psycopg://postgres@127.0.0.1:$port/duopass"
}

stop() {
    if [ ! -d "$DIR" ]; then
        say "$DIR does not exist; nothing to stop"
        return 0
    fi
    [ -e "$DIR/$MARKER" ] || die "$DIR was not made by this script; not touching it"
    if [ -e "$DATA/postmaster.pid" ]; then
        local pid
        pid=$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null || true)
        if BIN=$(find_bindir); then
            as_pg "$BIN/pg_ctl" stop --pgdata="$DATA" --mode=fast --wait --timeout=60 --silent ||
                as_pg "$BIN/pg_ctl" stop --pgdata="$DATA" --mode=immediate --wait --timeout=30 \
                    --silent || true
        fi
        case $pid in '' | *[!0-9]*) pid= ;; esac
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
            grep -qa postgres "/proc/$pid/cmdline" 2>/dev/null; then
            say "the server (pid $pid) ignored pg_ctl stop; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$DIR"
    say "stopped; removed $DIR"
}

[ $# -ge 1 ] || usage
case $1 in
    start) [ $# -eq 3 ] || usage ;;
    stop) [ $# -eq 2 ] || usage ;;
    *) usage ;;
esac
DIR=$(absolute "${!#}")
case $DIR in *"'"* | *[[:space:]]*) die "DIR must not contain quotes or spaces: $DIR" ;; esac
DATA=$DIR/data
LOG=$DIR/postgres.log
cd / # the postgres user may not be able to read the caller's directory
# Everything but the URL goes to stderr. Not through a spare descriptor: the server would inherit
# it and hold the caller's stdout pipe open for as long as it runs.
case $1 in
    start)
        URL=
        start "$2" </dev/null >&2
        printf '%s\n' "$URL"
        ;;
    stop) stop </dev/null >&2 ;;
esac
