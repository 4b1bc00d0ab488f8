"""The conformance command's verdict lines are exactly `json.dumps` of the verdict's JSON shape."""

from __future__ import annotations

import dataclasses
import json

from duopass.cli.output import verdict_json, verdict_line
from duopass.protocol import make_code, mint_credential
from tests.protocol.strategies import DEVICE, ISSUER, NOW
from tests.protocol.test_properties import PURSE, _till


def test_verdict_lines_are_the_json_of_every_kind_of_verdict():
    awkward = dataclasses.replace(PURSE, sub='h-"é\\\n\u2028x', gen=2)
    l1 = mint_credential(awkward, ISSUER)
    static = mint_credential(dataclasses.replace(PURSE, device_key=None, uses=None), ISSUER)
    verifier = _till()
    code = make_code(l1, DEVICE, ctr=0, ts=NOW)
    verdicts = [
        verifier.scan(code, now=NOW, amount=100),  # accepted
        verifier.scan(code, now=NOW, amount=100),  # a replay: rejected with claims
        verifier.scan(make_code(static, None), now=NOW, amount=100),  # static: ctr null
        verifier.scan("DP1:%%%", now=NOW, amount=100),  # malformed: no claims
        verifier.scan("HC1:x", now=NOW, amount=100),  # format
    ]
    assert [verdict.reason.value for verdict in verdicts][:2] == ["OK", "REPLAY"]
    for verdict in verdicts:
        assert verdict_line(verdict) == json.dumps(verdict_json(verdict))
