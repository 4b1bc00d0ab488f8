"""The issuer root key rotates with an overlap (issue 17, docs/terminal.md "The root key
rotates"): real servers, real terminals. A terminal enrolled under the old root follows the link
across a bundle, re-pins the new root durably and verifies codes; one that comes back after the
overlap is refused and told to enrol again; a forged link is refused; every server process on
the data dir switches at once; each issuer of a multi-issuer terminal follows its own root."""

from __future__ import annotations

import base64
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import cbor2
import httpx
import pytest
from typer.testing import CliRunner

from duopass.cli.app import app
from duopass.demo.netcut import Mode, Proxy
from duopass.protocol import SigningKey
from duopass.protocol.bundle import RootChainError, open_bundle
from duopass.protocol.cbor import dumps, loads
from duopass.protocol.keys import kid_of
from duopass.protocol.reasons import Reason
from duopass.protocol.roots import RootLink, sign_link
from duopass.server import roots
from duopass.server.services.root_keys import rotate_root
from duopass.terminal import AgentSettings, TerminalAgent, enrol, enrol_issuer
from duopass.terminal.store import Store
from tests.server.harness import ManualClock, Running, TerminalClient, ready_wallet, running_server
from tests.terminal.conftest import cli, till_code

OFFLINE = AgentSettings(timeout_s=2.0)
DAY = 86_400


def _till(server: Running, proxy: Proxy, data: Path, name: str = "till-1", **kw: Any) -> None:
    code, _ = till_code(server.admin(), name)
    enrol(data, server=proxy.url, terminal_id=name, code=code, **kw)


def _pinned(data: Path) -> tuple[bytes, object]:
    store = Store(data)
    try:
        return store.config().root_key, store.get("root_seq", 0)
    finally:
        store.close()


def _rotate(server: Running, overlap_s: int = 7 * DAY) -> roots.Rotation:
    return rotate_root(server.ctx, server.ctx.settings.data_dir, by="admin", overlap_s=overlap_s)


def _leaves(http: httpx.Client, kind: str) -> list[dict[str, Any]]:
    entries = http.get("/v1/ledger/entries", params={"start": 0}).json()["entries"]
    found = [cbor2.loads(base64.b64decode(text)) for text in entries]
    return [leaf[4] for leaf in found if leaf[1] == kind]


def test_a_terminal_follows_the_rotation_and_verifies_codes(server, proxy, tmp_path):
    data = tmp_path / "till"
    _till(server, proxy, data)
    old, _ = _pinned(data)
    with TerminalAgent(data, OFFLINE) as terminal:
        terminal.bundles.sync()
    rotation = _rotate(server)
    assert rotation.previous == kid_of(old) and rotation.link.seq == 1
    wallet = ready_wallet(server.http, server.admin(), "ida", balance=10_000)
    with TerminalAgent(data, OFFLINE) as terminal:
        terminal.bundles.sync()  # signed by the new root, carrying the link from the old
        assert (terminal.bundles.root_key, terminal.bundles.root_seq) == (rotation.key.public, 1)
        proxy.set(Mode.REFUSE)
        paid = terminal.scan_path.scan(wallet.code(), amount=100)
        assert (paid.reason, paid.online) == (Reason.OK, False)
        proxy.set(Mode.FORWARD)
    assert _pinned(data) == (rotation.key.public, 1)  # durable: in the terminal's file
    with TerminalAgent(data, OFFLINE) as terminal:  # a restart: the new root is pinned
        assert terminal.bundles.sync().seq >= 1
    # the rotation is a ledger leaf; the old private key is gone from the data dir
    (leaf,) = _leaves(server.http, "key_rotation")[-1:]
    assert (leaf["role"], leaf["kid"], leaf["previous"]) == ("root", rotation.link.kid, kid_of(old))
    files = {p.name for p in server.ctx.settings.data_dir.iterdir()}
    assert {"root.jwk", "root-links.cbor"} <= files and "root-next.jwk" not in files
    # a terminal enrolled now pins the new root at once
    fresh = tmp_path / "till-2"
    _till(server, proxy, fresh, "till-2")
    assert _pinned(fresh) == (rotation.key.public, 0)
    with TerminalAgent(fresh, OFFLINE) as terminal:
        terminal.bundles.sync()


def test_a_terminal_back_after_the_overlap_is_told_to_enrol_again(tmp_path):
    clock = ManualClock(float(int(time.time())))
    with running_server(f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "srv", clock=clock) as server:
        proxy = Proxy(int(server.url.rsplit(":", 1)[1]))
        try:
            data = tmp_path / "till"
            _till(server, proxy, data, clock=clock)
            with TerminalAgent(data, OFFLINE, clock=clock) as terminal:
                terminal.bundles.sync()
            _rotate(server, overlap_s=3600)
            clock.advance(3601)
            with TerminalAgent(data, OFFLINE, clock=clock) as terminal:
                with pytest.raises(RootChainError, match="enrol this terminal again") as refused:
                    terminal.bundles.sync()
                assert refused.value.reason == "ROOT_UNLINKED"
                assert not terminal.bundles.try_sync()
            said = cli("sync", "--data-dir", str(data))  # the command, on the wall clock
            assert said.returncode != 0, said.stdout
            assert "ROOT_UNLINKED" in said.stderr and "enrol this terminal again" in said.stderr
            now = roots.current(tmp_path / "srv", server.ctx.keyring.root).key.public
            assert _pinned(data) == (server.ctx.keyring.root.public, 0) and now != _pinned(data)[0]
        finally:
            proxy.close()


def test_a_forged_link_is_refused(server, proxy, tmp_path):
    """The links file replaced by one whose link claims the old root but is signed by another
    key: the server serves it (it trusts its own files), the terminal refuses it."""
    data = tmp_path / "till"
    _till(server, proxy, data)
    with TerminalAgent(data, OFFLINE) as terminal:
        terminal.bundles.sync()
    rotation = _rotate(server)
    data_dir = server.ctx.settings.data_dir
    true = loads((data_dir / "root-links.cbor").read_bytes())[0]
    link = RootLink(
        iss="demo-univ", seq=1, key=rotation.key.public, nbf=int(time.time()), exp=2**40
    )
    forged = loads(sign_link(SigningKey.generate(), link))
    (data_dir / "root-links.cbor").write_bytes(dumps([dumps([loads(true)[0], {}, *forged[2:]])]))
    with TerminalAgent(data, OFFLINE) as terminal:
        with pytest.raises(RootChainError, match="forged") as refused:
            terminal.bundles.sync()
        assert refused.value.reason == "ROOT_LINK_INVALID"
    assert _pinned(data)[1] == 0


def test_every_server_process_on_the_data_dir_switches(server, tmp_path):
    """A second server process on the same database and data dir; the rotation made by the
    `duopass keys rotate-root` command beside both: each signs its next bundle with the new
    root and gives it at enrolment."""
    data_dir, db = server.ctx.settings.data_dir, server.ctx.settings.db_url
    with running_server(db, data_dir) as second:
        tills = []
        for name, running in (("till-a", server), ("till-b", second)):
            code, _ = till_code(running.admin(), name)
            till = TerminalClient(running.http, name)
            assert till.enrol(code).status_code == 200
            tills.append(till)
        old = tills[0].root_key
        for till in tills:
            open_bundle(till.bundle(), old)
        done = CliRunner().invoke(
            app, ["keys", "rotate-root", "--by", "admin", "--overlap-days", "3",
                  "--data-dir", str(data_dir), "--db", db],
        )  # fmt: skip
        assert done.exit_code == 0, done.output
        new = roots.current(data_dir, server.ctx.keyring.root).key.public
        assert new != old and "-> " + kid_of(new).hex() in done.output
        for till in tills:
            opened = open_bundle(till.bundle(), new)
            assert len(opened.root_links) == 1
        code, _ = till_code(second.admin(), "till-c")
        late = TerminalClient(second.http, "till-c")
        assert late.enrol(code).status_code == 200 and late.root_key == new


def test_each_issuer_of_a_multi_issuer_terminal_follows_its_own_root(tmp_path):
    with ExitStack() as stack:
        issuers = {}
        for name in ("demo-univ", "city-events"):
            running = stack.enter_context(
                running_server(
                    f"sqlite:///{tmp_path / (name + '.db')}", tmp_path / name, issuer=name
                )
            )
            proxy = Proxy(int(running.url.rsplit(":", 1)[1]))
            stack.callback(proxy.close)
            issuers[name] = (running, proxy)
        data = tmp_path / "gate"
        campus, partner = issuers["demo-univ"], issuers["city-events"]
        code = campus[0].admin().terminal("gate-u", mode="identity", venue="hall")
        enrol(data, server=campus[1].url, terminal_id="gate-u", code=code)
        code = partner[0].admin().terminal("gate-p", mode="identity", venue="hall")
        enrol_issuer(
            data, issuer="city-events", server=partner[1].url, terminal_id="gate-p", code=code
        )
        with TerminalAgent(data, OFFLINE) as terminal:
            for agent in terminal.agents:
                agent.bundles.sync()
        rotations = {name: _rotate(running) for name, (running, _) in issuers.items()}
        card = ready_wallet(campus[0].http, campus[0].admin(), "una", balance=1_000)
        with TerminalAgent(data, OFFLINE) as terminal:
            for agent in terminal.agents:
                agent.bundles.sync()
                rotation = rotations[agent.iss]
                assert agent.bundles.root_key == rotation.key.public
                assert agent.store.config().root_key == rotation.key.public
            campus[1].set(Mode.REFUSE)
            seen = terminal.scan(card.code())
            assert (seen.reason, seen.online) == (Reason.OK, False)
