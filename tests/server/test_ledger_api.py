"""The ledger from outside: checkpoints, proofs and receipts an auditor verifies offline."""

from __future__ import annotations

import base64

import pytest
from cbor2 import loads
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from duopass.ledger import (
    hash_leaf,
    open_checkpoint,
    verify_consistency,
    verify_inclusion,
    verify_receipt,
)
from tests.server.harness import ready_wallet


def test_checkpoints_proofs_and_receipts_verify(server):
    verifier = server.ctx.keyring.ledger.verifier
    first = open_checkpoint(server.http.get("/v1/ledger/checkpoint").content, verifier).checkpoint
    admin = server.admin()
    ready_wallet(server.http, admin, "ivy", balance=1_000)
    second = open_checkpoint(server.http.get("/v1/ledger/checkpoint").content, verifier).checkpoint
    assert second.size > first.size > 0
    proof = server.http.get(
        f"/v1/ledger/proofs/consistency?old={first.size}&new={second.size}"
    ).json()
    verify_consistency(
        size1=first.size,
        size2=second.size,
        proof=[base64.b64decode(p) for p in proof["proof"]],
        root1=first.root,
        root2=second.root,
    )
    index = second.size - 1
    entry = server.http.get(f"/v1/ledger/entries/{index}").json()
    data = base64.b64decode(entry["data"])
    leaf = loads(data)
    assert leaf[1] == "credential_issue" and leaf[3] == "demo-univ"
    assert "ivy" not in repr(leaf)  # personal data enters only as keyed digests
    verify_receipt(entry["receipt"].encode(), leaf_hash=hash_leaf(data), log_key=verifier)
    inclusion = server.http.get(
        f"/v1/ledger/proofs/inclusion?index={index}&size={second.size}"
    ).json()
    verify_inclusion(
        leaf_hash=hash_leaf(data),
        index=index,
        size=second.size,
        proof=[base64.b64decode(p) for p in inclusion["proof"]],
        root=second.root,
    )


@pytest.mark.parametrize(
    "query", ["index=5&size=5", "index=0&size=999999", "old=0&new=1", "old=3&new=2"]
)
def test_out_of_range_proofs_are_problems_not_errors(server, query):
    path = "/v1/ledger/proofs/inclusion" if "index" in query else "/v1/ledger/proofs/consistency"
    answer = server.http.get(f"{path}?{query}")
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "out_of_range"


def test_the_database_refuses_to_rewrite_the_ledger(server):
    for statement in ("UPDATE ledger_leaves SET data = x'00'", "DELETE FROM ledger_nodes"):
        with pytest.raises(DBAPIError), server.ctx.db.unit() as session:
            session.execute(text(statement))
