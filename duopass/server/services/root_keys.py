"""The issuer root key rotated (`duopass keys rotate-root`): the files in the data directory
(`server.roots`) and the ledger leaf that records it (§7, `key_rotation` with `role` root)."""

from __future__ import annotations

from pathlib import Path

from duopass.ledger.events import EventType
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
    just before the unit is. Should that commit fail after the files are written, the rotation
    stands without its leaf, and the error says so. A root in an HSM rotates in its token
    (`roots`: the new root is generated there). Raises Problem or RootError."""
    with roots.rotating(data_dir, ctx.keyring.root) as held:
        rotation = roots.prepare(
            held, iss=ctx.settings.issuer, now=int(ctx.now()), overlap_s=overlap_s
        )
        written = False

        def work(unit: Unit) -> None:
            nonlocal written
            link = rotation.link
            body = {"kid": link.kid, "nbf": link.nbf, "exp": link.exp, "role": "root"}
            body.update(previous=rotation.previous, seq=link.seq, by=admin_id(unit, by))
            tlog.append(unit, EventType.KEY_ROTATION, body)
            unit.session.flush()
            if not written:  # a retried unit writes no second rotation
                roots.commit(data_dir, held, rotation)
                written = True

        try:
            ctx.run(work)
        except Exception as exc:
            if written:
                raise roots.RootError(
                    f"the root rotated to {rotation.link.kid.hex()} but its ledger leaf was "
                    f"not written: {exc}"
                ) from exc
            raise
    return rotation
