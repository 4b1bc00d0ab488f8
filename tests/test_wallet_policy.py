"""The wallet keeps the issuer's policy from its sync answers (PROTOCOL.md §6, revision 1.1) and
hides a display after the issuer's `freshness_s` (§2), not §3's default; an answer without the
policy, and a state file from before it was kept, mean the defaults."""

from __future__ import annotations

import json
import sqlite3
import time

import httpx

from duopass.protocol.limits import FRESHNESS_DEFAULT_S
from duopass.wallet import Wallet
from tests.server.harness import running_server
from tests.test_wallet import _ready


class _Frozen:
    """A clock that stands still, so that a display's hiding time is exact."""

    def __init__(self) -> None:
        self.at = time.time()

    def wall(self) -> float:
        return self.at

    def elapsed(self) -> float:
        return 1_000.0

    def boot(self) -> str | None:
        return "frozen"


class _WithoutPolicy(httpx.HTTPTransport):
    """A server from before revision 1.1: its sync answers carry no policy."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path != "/v1/wallet/sync":
            return response
        document = json.loads(response.read())
        document.pop("policy", None)
        return httpx.Response(response.status_code, json=document)


def test_a_code_hides_after_the_issuers_freshness(tmp_path):
    data = tmp_path / "wallet"
    with running_server(
        f"sqlite:///{tmp_path / 'duopass.db'}", tmp_path / "data", freshness_s=20
    ) as server:
        wallet = _ready(server, data, "hedda", uses=4, clock=_Frozen())
        display = wallet.show()
        assert display.hide_at == wallet.now() + 20
        assert wallet.state.read().policy.freshness_s == 20
        assert wallet.status(online=False)["freshness_s"] == 20
        wallet.state.close()
        older = Wallet(data, clock=_Frozen(), transport=_WithoutPolicy())
        older.sync()
        assert older.show().hide_at == older.now() + FRESHNESS_DEFAULT_S
        older.state.close()


def test_a_state_file_from_before_the_policy_opens_with_the_defaults(tmp_path):
    data = tmp_path / "wallet"
    with running_server(
        f"sqlite:///{tmp_path / 'duopass.db'}", tmp_path / "data", freshness_s=20
    ) as server:
        _ready(server, data, "ilse", uses=4).state.close()
        with sqlite3.connect(data / "wallet.db") as db:  # as the previous version left it
            db.execute("ALTER TABLE wallet DROP COLUMN policy")
            db.execute("PRAGMA user_version=1")
        db.close()
        wallet = Wallet(data, clock=_Frozen())
        assert wallet.state.read().policy.freshness_s == FRESHNESS_DEFAULT_S
        assert wallet.show().ctr == 0  # its credential and counters are kept
        wallet.sync()
        assert wallet.state.read().policy.freshness_s == 20
        wallet.state.close()
