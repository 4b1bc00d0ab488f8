"""The server the online benchmark drives: `create_app` on uvicorn in its own process, with a
staff login for the benchmark and credentials of 1,000 offline uses (so each holder has many
counters to pay with)."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from argon2 import PasswordHasher

from bench.server_profile import profiled
from duopass.server.app import create_app
from duopass.server.keyring import Keyring
from duopass.server.runner import uvicorn_config
from duopass.server.settings import Settings
from duopass.server.store.access import Staff

BENCH_ADMIN_PASSWORD = "bench-admin-password"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = Settings(
        db_url=args.db,
        data_dir=args.data,
        offline_uses=1000,
        offline_txmax=100,
        refresh_max_per_day=100,
    )
    app = create_app(settings, keyring=Keyring.create(args.data, origin="bench/ledger"))
    ctx = app.state.context
    ctx.run(
        lambda u: u.session.add(
            Staff(
                login="admin",
                password_hash=PasswordHasher().hash(BENCH_ADMIN_PASSWORD),
                role="admin",
            )
        )
    )
    config = uvicorn_config(
        app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )
    with profiled(ctx):  # $DUOPASS_BENCH_PROFILE: where the server's time goes
        uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
