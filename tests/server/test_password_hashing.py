"""Passwords are hashed with Argon2id at argon2-cffi's full defaults; the cheap hashing the test
harness asks for (`test_cheap_password_hashing`) is refused by a server not started for tests."""

from __future__ import annotations

import pytest

from duopass.server.app import create_app
from duopass.server.keyring import Keyring
from duopass.server.services.auth import hash_password
from duopass.server.settings import Settings, TestOnlySettingRefused


def test_a_production_server_hashes_at_full_cost():
    hashed = hash_password(Settings(), "a password")
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_cheap_hashing_is_argon2id_at_its_lowest_cost():
    hashed = hash_password(Settings(test_cheap_password_hashing=True), "a password")
    assert hashed.startswith("$argon2id$v=19$m=8,t=1,p=1$")


def test_a_production_server_refuses_cheap_password_hashing(tmp_path):
    settings = Settings(
        db_url=f"sqlite:///{tmp_path / 'd.db'}",
        data_dir=tmp_path / "data",
        test_cheap_password_hashing=True,
    )
    keyring = Keyring.create(tmp_path / "data", origin="demo-univ/ledger")
    with pytest.raises(TestOnlySettingRefused):
        create_app(settings, keyring=keyring)
