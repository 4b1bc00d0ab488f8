"""The wallet's installation id (issue 15, "distinct accounts per device"): made once, private,
the same for every data dir of the user, refused when the file holds none; the CLI wallet sends
it, so the issuer counts the accounts one installation enrols: two data dirs, two accounts, one
installation."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from duopass.risk import Distinct, KeyKind, Signal, Window
from duopass.server.services import risk_features
from duopass.server.unit_of_work import Unit
from duopass.wallet import WalletError
from duopass.wallet.installation import installation_file, installation_id
from tests.server.harness import running_server
from tests.test_wallet import _wallet_cli


def test_where_the_installation_id_is_kept():
    home = Path("~").expanduser()
    assert installation_file({}) == home / ".local/state/duopass/installation"
    assert installation_file({"XDG_STATE_HOME": "/s"}) == Path("/s/duopass/installation")
    named = {"DUOPASS_INSTALLATION_FILE": "/x/id", "XDG_STATE_HOME": "/s"}
    assert installation_file(named) == Path("/x/id")
    assert installation_file({"DUOPASS_INSTALLATION_FILE": ""}) is None  # send none


def test_an_installation_id_is_made_once_private_and_refused_when_broken(tmp_path):
    path = tmp_path / "state" / "duopass" / "installation"
    made = installation_id(path)
    assert installation_id(path) == made and len(made) == 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["installation"]  # no temporary left
    path.write_text("not an id\n")
    with pytest.raises(WalletError, match="holds no installation id"):
        installation_id(path)


def test_two_data_dirs_of_one_user_enrol_as_one_installation(tmp_path):
    with running_server(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "data") as server:
        admin = server.admin()
        for login in ("uma", "ulf"):
            admin.holder(login)
            enrolled = _wallet_cli(
                tmp_path / f"wallet-{login}",
                "enrol",
                "--server",
                server.url,
                "--login",
                login,
                login=login,
            )
            assert enrolled.returncode == 0, enrolled.stderr
        sent = installation_id(tmp_path / "installation")  # the test's (tests/conftest.py)

        def tried(unit: Unit) -> int | None:
            key = risk_features.installation_key(unit, sent)
            assert key is not None
            query = Distinct(key, Signal.ACCOUNT_ATTEMPT, KeyKind.ACCOUNT, Window.DAY)
            return risk_features.store_for(unit).read([query], now=unit.now)[query.feature]

        assert server.ctx.run(tried) == 2
