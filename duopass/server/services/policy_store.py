"""This process's policy: read from its file at start (a malformed one stops the server),
kept in the database by the SHA-256 of its text so every version ever used stays replayable,
and made the active one. A process whose policy is not the database's active one (another
process of the issuer loaded a newer file since) refuses decisions (503 policy_changed) until
it reloads (`POST /v1/admin/policy/reload`), or finds that its own file now holds the active
one (a sibling process reloaded it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import func, select

from duopass.policy import DEFAULT_POLICY, Inputs, Policy, PolicyError, Ruling, load_bytes
from duopass.policy import decide as rule_on
from duopass.policy.load import POLICY_BYTES_MAX
from duopass.server.logbook import Event, emit
from duopass.server.problems import Problem, ProblemCode
from duopass.server.store import sql
from duopass.server.store.decisions import PolicyVersion
from duopass.server.store.sql import statement
from duopass.server.store.tables import Meta
from duopass.server.unit_of_work import Unit

if TYPE_CHECKING:
    from collections.abc import Mapping

    from duopass.server.context import AppContext

__all__ = [
    "PinnedPolicy",
    "PolicyFileError",
    "activate",
    "active_sha256",
    "current",
    "decide",
    "pin",
    "read",
    "reload",
    "version_text",
]

ACTIVATIONS: Final = "policy_activations"
"""`meta` row counting activations; locking it orders them across processes."""


class PolicyFileError(Exception):
    """A policy file that cannot be read or loaded; the message names the file, and the line
    and column of what is wrong (`FILE:LINE:COLUMN: why`)."""


@dataclass
class PinnedPolicy:
    """The policy this process decides with, and the file it is read from (None: the one in
    the package). `policy` is replaced whole at a reload."""

    path: Path | None
    policy: Policy

    @property
    def source(self) -> str:
        return str(self.path or DEFAULT_POLICY)


def read(path: Path | None) -> Policy:
    """The policy in the file (the package's when None), or PolicyFileError."""
    source = path or DEFAULT_POLICY
    try:
        with source.open("rb") as handle:
            data = handle.read(POLICY_BYTES_MAX + 1)
    except OSError as exc:
        raise PolicyFileError(f"cannot read the policy {source}: {exc.strerror}") from exc
    try:
        return load_bytes(data)
    except PolicyError as exc:
        raise PolicyFileError(f"{source}:{exc.line}:{exc.column}: {exc.message}") from exc


def pin(ctx: AppContext, path: Path | None, policy: Policy) -> PinnedPolicy:
    """Make the policy read from `path` the active one (at a server's start)."""
    pinned = PinnedPolicy(path, policy)
    _activate_and_log(ctx, pinned, policy)
    return pinned


def reload(ctx: AppContext) -> dict[str, Any]:
    """Read this process's policy file again and make it the active one; a malformed file is
    refused (422 bad_policy) and the policy in use stays."""
    pinned = ctx.pinned_policy
    if pinned is None:
        raise Problem(ProblemCode.POLICY_CHANGED, "this process decides with no policy")
    try:
        policy = read(pinned.path)
    except PolicyFileError as exc:
        raise Problem(ProblemCode.BAD_POLICY, str(exc)) from exc
    activated = _activate_and_log(ctx, pinned, policy)
    pinned.policy = policy
    return {"version": policy.version, "sha256": policy.sha256.hex(), "activated": activated}


def _activate_and_log(ctx: AppContext, pinned: PinnedPolicy, policy: Policy) -> bool:
    activated = ctx.run(lambda unit: activate(unit, policy))
    emit(
        Event.POLICY_LOADED,
        f"policy {policy.version} ({policy.sha256.hex()[:12]}) from {pinned.source}"
        + (": now the active one" if activated else ": the active one already"),
        version=policy.version,
        sha256=policy.sha256.hex(),
        file=pinned.source,
        activated=activated,
    )
    return activated


def activate(unit: Unit, policy: Policy) -> bool:
    """Keep the policy's text by its hash (once) and make it the active one unless it is;
    True when it became active. Activations are ordered by the `meta` row's lock, and each
    has a later `activated_at` than the one before (a second later when in the same second)."""
    session = unit.session
    lock = select(Meta).where(Meta.name == ACTIVATIONS).with_for_update()
    counter = session.scalars(lock).one_or_none()
    if counter is None:
        counter = Meta(name=ACTIVATIONS, value=0)
        session.add(counter)
    active = active_sha256(unit)
    row = session.get(PolicyVersion, policy.sha256)
    if active == policy.sha256:
        return False
    latest = session.scalar(select(func.max(PolicyVersion.activated_at))) or 0
    at = max(unit.now, latest + 1)
    if row is None:
        session.add(
            PolicyVersion(
                sha256=policy.sha256,
                version=policy.version,
                text=policy.text,
                first_loaded_at=unit.now,
                activated_at=at,
            )
        )
    else:
        row.activated_at = at
    counter.value += 1
    return True


def active_sha256(unit: Unit) -> bytes | None:
    """The SHA-256 of the database's active policy (None before any was loaded)."""
    latest = select(PolicyVersion.sha256).order_by(PolicyVersion.activated_at.desc()).limit(1)
    found = unit.session.scalar(latest)
    return None if found is None else bytes(found)


ACTIVE = statement("SELECT sha256 FROM policy_versions ORDER BY activated_at DESC LIMIT 1")


def _active(unit: Unit) -> bytes | None:
    """`active_sha256` in one statement on the driver, after the unit's changes are flushed:
    every decision reads it."""
    unit.session.flush()
    found = sql.raw(unit.session).one(ACTIVE)
    return None if found is None else bytes(found[0])


def current(unit: Unit) -> Policy:
    """This process's policy, if it is the active one; else 503 policy_changed."""
    pinned = unit.pinned_policy
    if pinned is None:
        raise Problem(ProblemCode.POLICY_CHANGED, "this process decides with no policy")
    policy = pinned.policy
    active = _active(unit)
    if active != policy.sha256:
        policy = _follow(pinned, active)
    if active != policy.sha256:
        raise Problem(
            ProblemCode.POLICY_CHANGED,
            f"this server's policy ({policy.version}) is no longer the active one: "
            "it decides again once reloaded (POST /v1/admin/policy/reload); send it again",
            headers={"Retry-After": "5"},
        )
    return policy


def _follow(pinned: PinnedPolicy, active: bytes | None) -> Policy:
    """The policy in this process's file if it is now the active one (a sibling process, or
    another server with the same file, reloaded it: `duopass serve --workers` reaches one
    process a request), adopted without an activation; else the policy in use."""
    try:
        policy = read(pinned.path)
    except PolicyFileError:
        return pinned.policy
    if policy.sha256 != active:
        return pinned.policy
    pinned.policy = policy
    emit(
        Event.POLICY_LOADED,
        f"policy {policy.version} ({policy.sha256.hex()[:12]}) from {pinned.source}: "
        "the active one, reloaded by another process",
        version=policy.version,
        sha256=policy.sha256.hex(),
        file=pinned.source,
        activated=False,
    )
    return policy


def decide(unit: Unit, inputs: Inputs | Mapping[str, Any]) -> tuple[Policy, Ruling]:
    """The active policy's ruling on the inputs (503 policy_changed as `current`)."""
    policy = current(unit)
    return policy, rule_on(policy, inputs)


def version_text(unit: Unit, sha256: bytes) -> PolicyVersion | None:
    """A stored policy version, by its hash."""
    return unit.session.get(PolicyVersion, sha256)
