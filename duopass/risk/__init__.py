"""Risk: what the server concludes from what it sees, as pure rules over plain values.

Today: the evidence rules of offline acceptances (§4.4-§4.5, §5: clone, relay, past `uses`,
above a refresh mark, revoked in the bundle, negative free funds, gaps in a journal) and the
catalogue of alert kinds they raise. The risk engine (streaming features over request rates,
devices and networks, rules and scores that allow, step up, send to review or deny) grows here.

May import: the standard library and `duopass.protocol`. Never the server, its database or
HTTP: the server persists what these rules conclude (`server/services/alerts.py`).
"""

from duopass.risk.evidence import Acceptance, Earlier, batch_evidence, duplicate_kind, evidence
from duopass.risk.kinds import SUSPENDING, AlertKind, ReviewAction

__all__ = [
    "SUSPENDING",
    "Acceptance",
    "AlertKind",
    "Earlier",
    "ReviewAction",
    "batch_evidence",
    "duplicate_kind",
    "evidence",
]
