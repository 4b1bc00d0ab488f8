"""The trust store file: what is refused as a whole, defaults, and round trips."""

from __future__ import annotations

import copy
import json

import pytest

from duopass.protocol import Kind, Policy, TrustStoreError, dump_trust_store, parse_trust_store
from duopass.protocol.encoding import b64u_encode
from tests.protocol.strategies import ISSUER
from tests.vectors import load_json_vectors

GOOD = dict(load_json_vectors("dp1"))["purse-ok.json"]["trust"]


def _with(change) -> bytes:
    doc = copy.deepcopy(GOOD)
    change(doc)
    return json.dumps(doc).encode()


def test_the_vector_store_parses():
    store = parse_trust_store(json.dumps(GOOD).encode())
    assert store.seq == 7
    assert store.key("demo-univ", ISSUER.kid) is not None
    assert store.policy("demo-univ").freshness_s == 60


def _drop(path):
    def change(doc):
        target = doc
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]

    return change


def _set(path, value):
    def change(doc):
        target = doc
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return change


def _twice(path):
    def change(doc):
        target = doc
        for step in path:
            target = target[step]
        target.append(copy.deepcopy(target[0]))

    return change


@pytest.mark.parametrize(
    "change",
    [
        _drop(["seq"]),
        _drop(["issued_at"]),
        _drop(["max_age_s"]),
        _drop(["issuers"]),
        _drop(["revoked"]),
        _drop(["frozen"]),
        _drop(["issuers", 0, "iss"]),
        _drop(["issuers", 0, "keys", 0, "kid"]),
        _drop(["issuers", 0, "keys", 0, "x"]),
        _drop(["issuers", 0, "keys", 0, "nbf"]),
        _set(["version"], 2),
        _set(["seq"], 7.0),
        _set(["seq"], True),
        _set(["issued_at"], -1),
        _set(["issuers", 0, "keys", 0, "x"], b64u_encode(b"\x01" * 31)),
        _set(["issuers", 0, "keys", 0, "kid"], b64u_encode(b"\x00" * 8)),
        _set(["issuers", 0, "keys", 0, "kid"], "ELpoLIrRNRM="),  # padded
        _set(["issuers", 0, "keys", 0, "x"], "0EqyMnQrtKs6E2i9RhXk5tAiSrcaAWuvhSCjMsl3hzc="),
        _set(["issuers", 0, "keys", 0, "nbf"], 1790086400),  # nbf == exp
        _set(["issuers", 0, "policy", "freshness_s"], "60"),
        _set(["issuers", 0, "policy", "static_tickets"], 1),
        _set(["revoked"], [{"iss": "demo-univ", "cti": "AQ=="}]),
        _set(["frozen"], [{"iss": "demo-univ"}]),
        _twice(["issuers"]),
        _twice(["issuers", 0, "keys"]),
    ],
)
def test_broken_stores_are_refused_whole(change):
    with pytest.raises(TrustStoreError):
        parse_trust_store(_with(change))


@pytest.mark.parametrize(
    "data",
    [b"", b"[]", b"{", b'{"seq": NaN}', b'{"seq": 1, "seq": 2}', b"\xff\xfe"],
)
def test_non_json_is_refused(data):
    with pytest.raises(TrustStoreError):
        parse_trust_store(data)


def test_unknown_fields_are_ignored_and_policy_may_be_absent():
    def change(doc):
        doc["extension"] = {"anything": [1, 2]}
        doc["issuers"][0]["keys"][0]["use"] = "sig"
        del doc["issuers"][0]["policy"]

    store = parse_trust_store(_with(change))
    assert store.policy("demo-univ") == Policy()


def test_partial_policy_takes_defaults_for_the_rest():
    store = parse_trust_store(
        _with(_set(["issuers", 0, "policy"], {"max_lifetime_s": {"ticket": 60}}))
    )
    policy = store.policy("demo-univ")
    assert policy.max_lifetime_s(Kind.TICKET) == 60
    assert policy.max_lifetime_s(Kind.PURSE) == 86_400
    assert (policy.freshness_s, policy.clock_skew_s, policy.static_tickets) == (60, 300, False)


def test_the_late_window_is_part_of_the_policy():
    """§5.4: the trust store's policy names the late window too; absent, it is 72 h."""
    store = parse_trust_store(_with(_set(["issuers", 0, "policy"], {"late_window_s": 3600})))
    assert store.policy("demo-univ").late_window_s == 3600
    assert parse_trust_store(dump_trust_store(store)) == store
    assert Policy().late_window_s == 72 * 3600


def test_dump_and_parse_round_trip():
    def change(doc):
        doc["revoked"] = [{"iss": "demo-univ", "cti": b64u_encode(b"\x02" * 12)}]
        doc["frozen"] = [{"iss": "demo-univ", "sub": "h-7f3a9c"}]

    store = parse_trust_store(_with(change))
    again = parse_trust_store(dump_trust_store(store))
    assert again == store
    assert again.is_revoked("demo-univ", b"\x02" * 12)
    assert again.is_frozen("demo-univ", "h-7f3a9c")
