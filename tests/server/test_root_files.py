"""The root key's files in the data dir (server/roots.py): a rotation cut by a crash between its
renames is seen by readers and finished by the next rotation; a leftover new key no link names
is removed; bundles carry only the links within their overlap; a keyring the files do not know
speaks alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from duopass.protocol import SigningKey
from duopass.protocol.cbor import dumps
from duopass.protocol.roots import follow
from duopass.server import roots
from duopass.server.keyring import Keyring

NOW, DAY = 1_790_000_000, 86_400


def _keyring(path: Path) -> Keyring:
    return Keyring.create(path, origin="demo-univ/ledger")


def test_a_rotation_cut_between_its_renames_is_seen_and_finished(tmp_path):
    started = _keyring(tmp_path).root
    with roots.rotating(tmp_path) as held:
        rotation = roots.prepare(held, iss="demo-univ", now=NOW, overlap_s=DAY)
        assert isinstance(rotation.key, SigningKey)  # a root from a file rotates to a file
        # what `commit` writes, up to its commit point: root.jwk not yet replaced
        roots._replace(tmp_path / roots.NEXT_FILE, rotation.key.to_jwk(), tmp_path)
        roots._replace(tmp_path / roots.LINKS_FILE, dumps([rotation.data]), tmp_path)
    assert SigningKey.from_jwk((tmp_path / "root.jwk").read_bytes()) == started
    seen = roots.current(tmp_path, started)
    assert (seen.key, seen.seq) == (rotation.key, 1)
    with roots.rotating(tmp_path) as again:  # the next rotation finishes it first
        assert again.key == rotation.key
    assert not (tmp_path / roots.NEXT_FILE).exists()
    assert SigningKey.from_jwk((tmp_path / "root.jwk").read_bytes()) == rotation.key
    assert roots.current(tmp_path, started).key == rotation.key


def test_a_leftover_key_no_link_names_is_removed(tmp_path):
    started = _keyring(tmp_path).root
    (tmp_path / roots.NEXT_FILE).write_bytes(SigningKey.generate().to_jwk())
    assert roots.current(tmp_path, started).key == started
    with roots.rotating(tmp_path) as held:
        assert held.key == started and not held.links
    assert not (tmp_path / roots.NEXT_FILE).exists()


def test_two_rotations_chain_and_bundles_carry_the_links_in_overlap(tmp_path):
    started = _keyring(tmp_path).root
    made = []
    for now, overlap in ((NOW, DAY), (NOW + 10, 3 * DAY)):
        with roots.rotating(tmp_path) as held:
            rotation = roots.prepare(held, iss="demo-univ", now=now, overlap_s=overlap)
            roots.commit(tmp_path, held, rotation)
            made.append(rotation)
    found = roots.current(tmp_path, started)
    assert found.key == made[1].key and found.seq == 2
    assert found.speaking(NOW + DAY) == (made[0].data, made[1].data)
    assert found.speaking(NOW + DAY + 1) == (made[1].data,)
    assert found.speaking(NOW + 10 + 3 * DAY + 1) == ()
    signer = dumps({1: -8, 4: made[1].key.kid})
    moved = follow(
        started.public,
        found.speaking(NOW),
        signer=signer,
        iss="demo-univ",
        held_seq=0,
        now=NOW,
    )
    assert (moved.key, moved.seq) == (made[1].key.public, 2)
    with roots.rotating(tmp_path) as held, pytest.raises(roots.RootError, match="overlap"):
        roots.prepare(held, iss="demo-univ", now=NOW, overlap_s=400 * DAY)


def test_a_keyring_the_files_do_not_know_speaks_alone(tmp_path):
    _keyring(tmp_path)
    with roots.rotating(tmp_path) as held:
        roots.commit(tmp_path, held, roots.prepare(held, iss="demo-univ", now=NOW, overlap_s=0))
    stranger = SigningKey.generate()
    assert roots.current(tmp_path, stranger) == roots.Roots(stranger, ())
    assert roots.current(tmp_path / "absent", stranger).key == stranger


def test_broken_root_files_are_refused_not_passed_over(tmp_path):
    """A links file that does not parse, or a root.jwk its last link does not name: no bundle
    is signed (with a root that may have been rotated out) until an operator looks."""
    started = _keyring(tmp_path).root
    (tmp_path / roots.LINKS_FILE).write_bytes(b"\xff")
    with pytest.raises(roots.RootError, match=r"root-links\.cbor"):
        roots.current(tmp_path, started)
    (tmp_path / roots.LINKS_FILE).unlink()
    other = tmp_path / "other"
    _keyring(other)
    with roots.rotating(other) as held:
        roots.commit(other, held, roots.prepare(held, iss="demo-univ", now=NOW, overlap_s=DAY))
    (tmp_path / roots.LINKS_FILE).write_bytes((other / roots.LINKS_FILE).read_bytes())
    with pytest.raises(roots.RootError, match="matches the last link"):
        roots.current(tmp_path, started)
