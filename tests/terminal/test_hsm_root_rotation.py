"""The issuer root key rotates inside the HSM (SoftHSM, docs/deploy.md "Keys in an HSM"): real
`duopass serve` processes, the `duopass keys rotate-root` command beside them, a real terminal.
The running server signs its next bundle with the new root in the token, without a restart; a
terminal enrolled under the first root follows the link and verifies codes offline; a server
process started afterwards on the same data dir and token speaks with the new root; no private
key is ever written to the data dir."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from duopass.demo.netcut import Mode, Proxy
from duopass.protocol.bundle import open_bundle
from duopass.protocol.cbor import loads
from duopass.protocol.encoding import b64u_decode
from duopass.protocol.keys import kid_of
from duopass.protocol.reasons import Reason
from duopass.protocol.roots import read_link
from duopass.terminal import AgentSettings, TerminalAgent, enrol
from duopass.terminal.store import Store
from tests.server.harness import TerminalClient, Wallet
from tests.server.test_hsm import _duopass, _hsm_env, _init, _serve
from tests.softhsm import SoftHsm, softhsm_fixture  # noqa: F401

OFFLINE = AgentSettings(timeout_s=2.0)
KEY_FILES = {"root.jwk", "root-next.jwk", "ledger.key"}


def _pinned(data: Path) -> tuple[bytes, object]:
    store = Store(data)
    try:
        return store.config().root_key, store.get("root_seq", 0)
    finally:
        store.close()


def _newest_root(data_dir: Path) -> bytes:
    """The key the last link of root-links.cbor names."""
    _, link = read_link(loads((data_dir / "root-links.cbor").read_bytes())[-1])
    return link.key


def test_a_root_in_the_hsm_rotates_there_and_every_server_follows(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    token = softhsm.token()
    first = b64u_decode(_init(softhsm, token)["root_key"]["x"])
    env = _hsm_env(softhsm, token)
    till = tmp_path / "till"
    with _serve(tmp_path, env) as served, httpx.Client(base_url=served.url) as http:
        demo = json.loads((served.data / "demo.json").read_text())
        proxy = Proxy(int(served.url.rsplit(":", 1)[1]))
        try:
            enrol(
                till,
                server=proxy.url,
                terminal_id="till-south-1",
                code=demo["terminals"]["till-south-1"],
            )
            assert _pinned(till) == (first, 0)
            with TerminalAgent(till, OFFLINE) as terminal:
                terminal.bundles.sync()
            refused = _duopass(
                "keys", "rotate-root", "--by", "nobody", "--data-dir", str(served.data), env=env
            )  # fmt: skip
            assert refused.returncode == 2 and "nobody" in refused.stderr, refused.stderr
            assert not {"root-label", "root-links.cbor"} & {p.name for p in served.data.iterdir()}
            # its key stays unlinked in the token: the next rotation takes it (same label)
            rotated = _duopass(
                "keys", "rotate-root", "--by", "admin", "--overlap-days", "3",
                "--data-dir", str(served.data), env=env,
            )  # fmt: skip
            assert rotated.returncode == 0, rotated.stderr
            new = _newest_root(served.data)
            assert (
                new != first and f"{kid_of(first).hex()} -> {kid_of(new).hex()}" in rotated.stdout
            )
            assert (served.data / "root-label").read_text() == "demo-univ/root.1\n"
            wallet = Wallet(http, "student0000", password=demo["holders"]["password"])
            wallet.sign_in()
            wallet.enrol()
            assert wallet.sync().status_code == 200
            with TerminalAgent(till, OFFLINE) as terminal:  # the same server process, no restart
                terminal.bundles.sync()
                assert (terminal.bundles.root_key, terminal.bundles.root_seq) == (new, 1)
                proxy.set(Mode.REFUSE)
                paid = terminal.scan_path.scan(wallet.code(), amount=100)
                assert (paid.reason, paid.online) == (Reason.OK, False)
                proxy.set(Mode.FORWARD)
            assert _pinned(till) == (new, 1)
        finally:
            proxy.close()
        first_output = served.stop()
    data_dir = tmp_path / "data"
    with _serve(tmp_path, env | {"DUOPASS_HSM_ROOT_KEY": "demo-univ/root"}) as second:
        # a process started after the rotation, with the first root's label configured
        assert second.data == data_dir
        with httpx.Client(base_url=second.url) as http:
            late = TerminalClient(http, "till-north-1")
            assert late.enrol(demo["terminals"]["till-north-1"]).status_code == 200
            assert late.root_key == new
            opened = open_bundle(late.bundle(), new)
            assert len(opened.root_links) == 1
        second_output = second.stop()
    names = {p.name for p in data_dir.iterdir()}
    assert {"root-label", "root-links.cbor"} <= names and not KEY_FILES & names
    assert "root-next-label" not in names
    for said in (first_output, second_output, rotated.stdout + rotated.stderr):
        assert softhsm.pin not in said
