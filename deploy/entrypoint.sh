#!/bin/sh
# The image's entrypoint: every password the server, or a command run beside it, needs comes
# from a file (a compose secret under /run/secrets), never from the image or the compose file.
# For each NAME below, NAME_FILE names the file whose content (less its final newline) becomes
# NAME; then the command runs in this process's place (exec: it receives the stop signal).
#
#   PGPASSWORD              PostgreSQL's password (libpq reads it; the --db URL holds none)
#   DUOPASS_REDIS_PASSWORD  the risk engine's Redis (docs/server.md, "Risk features")
#   DUOPASS_SMTP_PASSWORD   the mail server of step-up codes
set -eu

for name in PGPASSWORD DUOPASS_REDIS_PASSWORD DUOPASS_SMTP_PASSWORD; do
    eval "file=\${${name}_FILE:-}"
    [ -n "$file" ] || continue
    eval "given=\${${name}:-}"
    if [ -n "$given" ]; then
        echo "duopass-entrypoint: both $name and ${name}_FILE are set: give one" >&2
        exit 2
    fi
    if [ ! -f "$file" ] || [ ! -r "$file" ]; then
        echo "duopass-entrypoint: ${name}_FILE: cannot read $file" >&2
        exit 2
    fi
    value=$(cat "$file")
    if [ -z "$value" ]; then
        echo "duopass-entrypoint: ${name}_FILE: $file is empty" >&2
        exit 2
    fi
    export "$name=$value"
    unset "${name}_FILE"
done
unset file given value
exec "$@"
