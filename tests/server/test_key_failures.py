"""A key the server cannot use while it serves is 503 with a stable code, logged once, never a
bare 500 (`problems.key_failure`): root files that are broken are `root_keys_broken` when a
terminal asks for its bundle; an HSM that fails to sign is `hsm_unavailable`, with its
`HsmReason` as `reason`, when a checkpoint is signed. The answer names no path or label."""

from __future__ import annotations

import logging
import uuid

from pkcs11 import KeyType, ObjectClass

from duopass.server import hsm, roots
from duopass.server.hsm import HsmReason
from tests.server.harness import enrolled_till, ready_wallet, running_server
from tests.server.test_hsm import _session
from tests.softhsm import SoftHsm, softhsm_fixture  # noqa: F401


def _logged(caplog, text: str) -> int:
    return sum(text in record.getMessage() for record in caplog.records)


def test_broken_root_files_are_503_root_keys_broken(tmp_path, caplog):
    data, db = tmp_path / "data", f"sqlite:///{tmp_path / 'd.db'}"
    with running_server(db, data) as srv:
        till, _ = enrolled_till(srv.http, srv.admin())
        assert till.bundle()
        (data / roots.LINKS_FILE).write_bytes(b"\xff not cbor")
        target = "/v1/terminal/bundle?since=0"
        with caplog.at_level(logging.ERROR, logger="duopass.server"):
            answer = srv.http.get(target, headers=till._signed("GET", target, b""))
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "root_keys_broken"
        assert str(data) not in answer.text and roots.LINKS_FILE not in answer.text
        assert _logged(caplog, "root key files are unusable") == 1
        assert _logged(caplog, "unexpected error") == 0


def test_an_hsm_that_cannot_sign_is_503_hsm_unavailable(softhsm: SoftHsm, tmp_path, caplog):
    origin = f"hsm-{uuid.uuid4().hex[:8]}/ledger"
    config = softhsm.config(softhsm.shared, ledger=origin)
    hsm.generate_key(config, origin)
    data, db = tmp_path / "data", f"sqlite:///{tmp_path / 'd.db'}"
    with running_server(db, data, hsm=config) as srv:
        ready_wallet(srv.http, srv.admin(), "ann", balance=100)
        assert srv.http.get("/v1/ledger/checkpoint").status_code == 200
        session = _session(softhsm)  # the token loses the key the server signs with
        try:
            session.get_key(ObjectClass.PRIVATE_KEY, KeyType.EC_EDWARDS, label=origin).destroy()
        finally:
            session.close()
        srv.admin().holder("bob")  # a leaf the next checkpoint must be signed over
        with caplog.at_level(logging.ERROR, logger="duopass.server"):
            answer = srv.http.get("/v1/ledger/checkpoint")
        assert answer.status_code == 503, answer.text
        problem = answer.json()
        assert (problem["code"], problem["reason"]) == ("hsm_unavailable", HsmReason.FAILED.value)
        assert origin not in answer.text and softhsm.pin not in answer.text
        assert _logged(caplog, "the HSM failed on GET /v1/ledger/checkpoint") == 1
        assert not any(softhsm.pin in record.getMessage() for record in caplog.records)
        assert _logged(caplog, "unexpected error") == 0
