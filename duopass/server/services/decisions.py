"""Decisions on the record: each one a `decision` ledger leaf (the policy's version and hash,
the inputs' keyed digest, the outcome and the rule, and for a reissue the old and new `cti` and
`gen`) and a `decisions` row beside it with the inputs themselves, in the same transaction.

The inputs hold a holder's personal facts: erasure empties them (`erase_inputs`) and the leaf
stays whole. `replay` runs the pinned policy version on the kept inputs again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from duopass.ledger.events import EventType
from duopass.ledger.leaf import parse_leaf
from duopass.policy import Policy, PolicyError, Ruling, decide, load
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import tlog
from duopass.server.store.decisions import Decision, PolicyVersion, ReissueRequest
from duopass.server.store.tickets import Ticket
from duopass.server.unit_of_work import Unit

__all__ = [
    "Replay",
    "ReplayError",
    "canonical",
    "erase_inputs",
    "follow_up",
    "record",
    "replay",
]


def canonical(inputs: dict[str, Any]) -> bytes:
    """The one JSON text of an input document: sorted keys, no spaces, UTF-8."""
    return json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record(
    unit: Unit,
    *,
    action: str,
    holder_id: int,
    ticket_id: int | None,
    request_id: str | None,
    inputs: dict[str, Any],
    policy: Policy | None,
    ruling_outcome: str,
    rule: str,
    staff_id: int | None = None,
    old_cti: bytes | None = None,
    new_cti: bytes | None = None,
    old_gen: int | None = None,
    new_gen: int | None = None,
    partner: str | None = None,
) -> Decision:
    """Append the decision's leaf and keep its row (with the inputs) in the unit. A person's
    decision at review may name no policy: its leaf then has an empty version and hash."""
    text = canonical(inputs)
    digest = unit.keyring.inputs_digest(text)
    body: dict[str, Any] = {
        "action": action,
        "policy": policy.version if policy else "",
        "sha256": policy.sha256 if policy else b"",
        "inputs": digest,
        "outcome": ruling_outcome,
        "rule": rule,
    }
    if ticket_id is not None:
        ticket = unit.session.get(Ticket, ticket_id)
        if ticket is None:
            raise Problem(ProblemCode.NOT_FOUND, "no such ticket")
        body["ticket"] = ticket.sub
    optional = {
        "request": request_id,
        "old_cti": old_cti,
        "new_cti": new_cti,
        "old_gen": old_gen,
        "new_gen": new_gen,
        "by": staff_id,
        "partner": partner,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    index = tlog.append(unit, EventType.DECISION, body)
    decision = Decision(
        ledger_index=index,
        action=action,
        holder_id=holder_id,
        ticket_id=ticket_id,
        request_id=request_id,
        policy_sha256=policy.sha256 if policy else None,
        outcome=ruling_outcome,
        rule=rule,
        inputs=text.decode(),
        inputs_digest=digest,
        decided_at=unit.now,
        staff_id=staff_id,
    )
    unit.session.add(decision)
    unit.session.flush()
    return decision


def follow_up(
    unit: Unit,
    row: ReissueRequest,
    ticket: Ticket | None,
    *,
    action: str,
    rule: str,
    ruling_outcome: str,
    staff_id: int | None = None,
    **more_inputs: Any,
) -> Decision:
    """A person's decision on a reissue request the policy ruled on (a review, a decline, a
    vouch): no policy, its inputs citing the request and the policy's decision it settles
    (and `more_inputs`), the request's old and new `cti`, and the ticket's `gen` moving by one."""
    first = unit.session.get(Decision, row.decision_id)
    assert first is not None
    return record(
        unit,
        action=action,
        holder_id=row.holder_id,
        ticket_id=row.ticket_id,
        request_id=row.id,
        inputs={"request": row.id, "decision": first.ledger_index, **more_inputs},
        policy=None,
        ruling_outcome=ruling_outcome,
        rule=rule,
        staff_id=staff_id,
        old_cti=row.old_cti,
        new_cti=row.new_cti,
        old_gen=None if ticket is None else ticket.gen,
        new_gen=None if ticket is None else ticket.gen + 1,
    )


def erase_inputs(unit: Unit, holder_id: int) -> int:
    """Empty the kept inputs of the holder's decisions (their leaves stay); how many."""
    emptied = unit.session.execute(
        update(Decision)
        .where(Decision.holder_id == holder_id, Decision.inputs.is_not(None))
        .values(inputs=None)
    )
    return int(getattr(emptied, "rowcount", 0) or 0)


@dataclass(frozen=True)
class Replay:
    """A decision run again: what was recorded, and what the pinned policy says now."""

    action: str
    outcome: str
    """The recorded outcome."""
    rule: str
    """The recorded rule."""
    policy: Policy | None
    """The pinned version, loaded again (None for a person's decision)."""
    ruling: Ruling | None
    """None when the inputs were erased or no policy decided."""
    inputs_erased: bool

    @property
    def same(self) -> bool:
        return self.ruling is not None and (self.ruling.outcome, self.ruling.rule) == (
            self.outcome,
            self.rule,
        )


class ReplayError(Exception):
    """The record cannot be replayed: not a decision, or it does not hold together."""

    def __init__(self, message: str, *, not_a_decision: bool = False) -> None:
        super().__init__(message)
        self.not_a_decision = not_a_decision


def replay(unit: Unit, ledger_index: int) -> Replay:
    """Run the decision at a ledger index again on its kept inputs, with the policy version
    it names (by hash), after checking the leaf's digest matches the kept inputs."""
    entries = tlog.read_entries(unit.session, ledger_index, 1) if ledger_index >= 0 else []
    leaf = parse_leaf(bytes(entries[0])) if entries else None
    if leaf is None or leaf.type != EventType.DECISION.value:
        raise ReplayError(f"ledger entry {ledger_index} is not a decision", not_a_decision=True)
    decision = unit.session.scalars(
        select(Decision).where(Decision.ledger_index == ledger_index)
    ).one_or_none()
    if decision is None or leaf.body.get("inputs") != decision.inputs_digest:
        raise ReplayError(f"ledger entry {ledger_index} does not match a decision's record")
    recorded = (decision.action, decision.outcome, decision.rule)
    policy = None
    if decision.policy_sha256 is not None:
        policy = _pinned(unit, bytes(decision.policy_sha256))
        if leaf.body.get("sha256") != policy.sha256:
            raise ReplayError(f"ledger entry {ledger_index} names another policy")
    if decision.inputs is None:
        return Replay(*recorded, policy, None, inputs_erased=True)
    text = decision.inputs.encode()
    if unit.keyring.inputs_digest(text) != decision.inputs_digest:
        raise ReplayError(f"the kept inputs of ledger entry {ledger_index} were changed")
    if policy is None:
        return Replay(*recorded, None, None, inputs_erased=False)
    document = json.loads(text)  # as kept, whatever schema it was made under
    if not isinstance(document, dict):
        raise ReplayError("the kept inputs are not an input document")
    return Replay(*recorded, policy, decide(policy, document), inputs_erased=False)


def _pinned(unit: Unit, sha256: bytes) -> Policy:
    stored = unit.session.get(PolicyVersion, sha256)
    if stored is None:
        raise ReplayError(f"policy {sha256.hex()} is not kept")
    try:
        policy = load(stored.text)
    except PolicyError as exc:
        raise ReplayError(f"policy {sha256.hex()} no longer loads: {exc}") from exc
    if policy.sha256 != sha256:
        raise ReplayError(f"the kept text of policy {sha256.hex()} was changed")
    return policy
