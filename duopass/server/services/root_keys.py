"""The issuer root key rotated (`duopass keys rotate-root`): the files in the data directory
(`server.roots`) and the ledger leaf that records it (§7, `key_rotation` with `role` root)."""

from __future__ import annotations

from pathlib import Path

from duopass.ledger.events import EventType
from duopass.ledger.leaf import parse_leaf
from duopass.server import roots
from duopass.server.context import AppContext
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import staff, tlog
from duopass.server.unit_of_work import Unit

OVERLAP_DEFAULT_S = 7 * 86_400
"""How long terminals that pin the old root may still follow it to the new one."""


def admin_id(unit: Unit, login: str) -> int:
    """The id of the enabled admin `login`, who answers for a key change in the ledger."""
    admin = staff.by_login(unit.session, login)
    if admin.role != "admin" or admin.disabled_at is not None:
        raise Problem(ProblemCode.FORBIDDEN, f"{login} is not an enabled admin")
    return admin.id


def rotate_root(ctx: AppContext, data_dir: Path, *, by: str, overlap_s: int) -> roots.Rotation:
    """Make a new root, signed over by the current one, the root that speaks from now on: its
    leaf is appended in the unit that writes the files, which are committed (`roots.commit`)
    just before the unit is. Should the unit fail after the files are written, the rotation
    stands, and the database read again says whether its leaf is in the ledger (the answer to
    COMMIT may have been lost in a failover): there, the rotation is complete; not there, or the
    database not answering, the error says so. A root in an HSM rotates in its token (`roots`:
    the new root is generated there). Raises Problem or RootError."""
    with roots.rotating(data_dir, ctx.keyring.root) as held:
        rotation = roots.prepare(
            held, iss=ctx.settings.issuer, now=int(ctx.now()), overlap_s=overlap_s
        )
        written: list[int] = []  # the leaf's index, once the files are written

        def work(unit: Unit) -> None:
            link = rotation.link
            body = {"kid": link.kid, "nbf": link.nbf, "exp": link.exp, "role": "root"}
            body.update(previous=rotation.previous, seq=link.seq, by=admin_id(unit, by))
            leaf = tlog.append(unit, EventType.KEY_ROTATION, body)
            unit.session.flush()
            if not written:  # a retried unit writes no second rotation
                roots.commit(data_dir, held, rotation)
            written[:] = [leaf]

        try:
            ctx.run(work)
        except Exception as exc:
            if written:
                _leaf_after_all(ctx, rotation, written[0], exc)
                return rotation
            raise
    return rotation


def _leaf_after_all(ctx: AppContext, rotation: roots.Rotation, index: int, exc: Exception) -> None:
    """Return if the ledger holds the rotation's leaf at `index` (its unit committed, its answer
    lost); raise RootError saying the leaf is missing, or that nobody can tell yet."""
    kid = rotation.link.kid.hex()

    def recorded(unit: Unit) -> bool:
        found = tlog.read_entries(unit.session, index, 1)
        if not found:
            return False
        leaf = parse_leaf(bytes(found[0]))
        body = leaf.body
        return (
            leaf.type == EventType.KEY_ROTATION
            and body.get("role") == "root"
            and (body.get("kid") == rotation.link.kid and body.get("seq") == rotation.link.seq)
        )

    try:
        if ctx.run(recorded):
            return
    except Exception as lost:
        raise roots.RootError(
            f"the root rotated to {kid}; whether its ledger leaf was written is unknown"
            f" ({_reason(exc)}, then {_reason(lost)}): once the database answers, look for a"
            f" key_rotation leaf with role root and kid {kid} at index {index}"
        ) from exc
    raise roots.RootError(
        f"the root rotated to {kid} but its ledger leaf was not written: {_reason(exc)}"
    ) from exc


def _reason(exc: Exception) -> str:
    return exc.detail if isinstance(exc, Problem) else str(exc) or type(exc).__name__
