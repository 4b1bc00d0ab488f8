"""The issuer root key and the ledger key in an HSM (SoftHSM through PKCS#11, server.hsm): a real
server signs bundles and checkpoints in the token, terminals and `duopass audit` verify them with
the public halves `duopass keys hsm-init` printed; a wrong module, token, PIN or key stops the
server with its reason and never the PIN; the private halves cannot be read out of the token."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters
from pydantic import ValidationError

from duopass.demo.serving import free_port, wait_until_up
from duopass.ledger import LedgerError, NoteSigner, open_checkpoint, sign_checkpoint
from duopass.ledger.checkpoint import Checkpoint
from duopass.ledger.merkle import RootHash
from duopass.protocol.bundle import apply_bundle, open_bundle
from duopass.protocol.encoding import b64u_decode
from duopass.protocol.keys import verify_signature
from duopass.protocol.memory import MemoryStore
from duopass.protocol.verify import Mode, TerminalConfig, verify
from duopass.server import hsm
from duopass.server.context import AppContext
from duopass.server.hsm import HsmError, HsmReason
from duopass.server.keyring import Keyring
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import ledger_key, ledger_rotation
from duopass.server.settings import Settings
from duopass.server.store.db import Database
from duopass.server.store.ledger_keys import LedgerKey
from tests.server.harness import TerminalClient, Wallet
from tests.softhsm import SoftHsm, softhsm_fixture  # noqa: F401


def _duopass(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "duopass", *args]
    return subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False
    )


def _hsm_env(softhsm: SoftHsm, token: str, **changed: str) -> dict[str, str]:
    env = {
        **softhsm.env,
        "DUOPASS_HSM_MODULE": str(softhsm.module),
        "DUOPASS_HSM_TOKEN": token,
        "DUOPASS_HSM_PIN": softhsm.pin,
        "DUOPASS_HSM_ROOT_KEY": "demo-univ/root",
        "DUOPASS_HSM_LEDGER_KEY": "demo-univ/ledger",
    }
    return env | changed


@dataclass
class Served:
    url: str
    data: Path
    process: subprocess.Popen[bytes]
    output: Path

    def stop(self) -> str:
        """Stop the server; all it wrote."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        return self.output.read_text()


@contextmanager
def _serve(tmp_path: Path, env: dict[str, str]) -> Iterator[Served]:
    port, data, output = free_port(), tmp_path / "data", tmp_path / "output"
    command = [sys.executable, "-m", "duopass", "serve", "--demo", "--data-dir", str(data)]
    with output.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )  # fmt: skip
    try:
        wait_until_up(process, f"http://127.0.0.1:{port}/healthz")
        yield Served(f"http://127.0.0.1:{port}", data, process, output)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _init(softhsm: SoftHsm, token: str) -> dict[str, Any]:
    done = _duopass(
        "keys", "hsm-init", "--module", str(softhsm.module), "--token", token,
        "--issuer", "demo-univ", env=_hsm_env(softhsm, token),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert softhsm.pin not in done.stdout + done.stderr
    printed: dict[str, Any] = json.loads(done.stdout)
    return printed


def _offline_verdict(bundle: bytes, root_public: bytes, code: str) -> bool:
    """A till's own check of a code against the trust the bundle carries, no server asked."""
    trust = apply_bundle(None, open_bundle(bundle, root_public))
    config = TerminalConfig(mode=Mode.PAY, currency="CNY", venue="canteen-south")
    verdict = verify(
        code, trust=trust, config=config, memory=MemoryStore(), now=int(time.time()), amount=100
    )
    return verdict.ok


def test_a_server_signs_bundles_and_checkpoints_with_keys_in_the_hsm(softhsm, tmp_path):
    token = softhsm.token()
    printed = _init(softhsm, token)
    root_public = b64u_decode(printed["root_key"]["x"])
    vkey = printed["ledger_key"]
    assert vkey.startswith("demo-univ/ledger+")
    assert printed["settings"]["DUOPASS_HSM_LEDGER_KEY"] == "demo-univ/ledger"
    again = _duopass(
        "keys", "hsm-init", "--module", str(softhsm.module), "--token", token,
        "--issuer", "demo-univ", env=_hsm_env(softhsm, token),
    )  # fmt: skip
    assert again.returncode == 2 and "(hsm_key_exists)" in again.stderr

    with (
        _serve(tmp_path, _hsm_env(softhsm, token)) as served,
        httpx.Client(base_url=served.url, timeout=30) as http,
    ):
        demo = json.loads((served.data / "demo.json").read_text())
        assert not {"root.jwk", "ledger.key"} & {p.name for p in served.data.iterdir()}
        till = TerminalClient(http, "till-south-1")
        assert till.enrol(demo["terminals"]["till-south-1"]).status_code == 200
        assert till.root_key == root_public
        bundle = till.bundle()
        wallet = Wallet(http, "student0000", password=demo["holders"]["password"])
        wallet.sign_in()
        wallet.enrol()
        assert wallet.sync().status_code == 200
        assert _offline_verdict(bundle, root_public, wallet.code())
        assert till.scan(wallet.code(), amount=250)["ok"]
        assert http.get("/v1/ledger/key").text.strip() == vkey
        audit = _duopass(
            "audit", "--url", served.url, "--key", vkey, "--state", str(tmp_path / "state.json"),
            env={},
        )  # fmt: skip
        everything = served.stop()
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "signature OK" in audit.stdout and "audit passed" in audit.stdout
    assert softhsm.pin not in everything


@pytest.mark.parametrize(
    ("changed", "reason"),
    [
        ({"DUOPASS_HSM_PIN": "wrong-pin-4711"}, "hsm_pin"),
        ({"DUOPASS_HSM_TOKEN": "no-such-token"}, "hsm_token"),
        ({"DUOPASS_HSM_LEDGER_KEY": "other-univ/ledger"}, "hsm_key"),
        ({"DUOPASS_HSM_MODULE": "/nonexistent/libpkcs11.so"}, "hsm_module"),
    ],
)
def test_a_wrong_module_token_pin_or_key_stops_the_server_with_its_reason(
    softhsm, tmp_path, changed, reason
):
    token = softhsm.token()
    _init(softhsm, token)
    env = _hsm_env(softhsm, token, **changed)
    port = str(free_port())
    done = _duopass(
        "serve", "--init", "--data-dir", str(tmp_path / "data"), "--port", port, env=env
    )
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("duopass: cannot load the server's keys from the HSM: ")
    assert line.endswith(f"({reason})")
    for pin in {softhsm.pin, env["DUOPASS_HSM_PIN"]}:
        assert pin not in done.stdout + done.stderr


def test_a_pin_file_is_read_and_a_wrong_one_refused_without_saying_it(softhsm, tmp_path):
    token = softhsm.token()
    _init(softhsm, token)
    pin_file = tmp_path / "pin"
    pin_file.write_text("not-the-pin-0815\n")
    env = _hsm_env(softhsm, token, DUOPASS_HSM_PIN_FILE=str(pin_file))
    del env["DUOPASS_HSM_PIN"]
    done = _duopass(
        "serve", "--init", "--data-dir", str(tmp_path / "data"), "--port", str(free_port()),
        env=env,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.strip().endswith("(hsm_pin)"), done.stderr
    assert "not-the-pin-0815" not in done.stdout + done.stderr
    pin_file.write_text(softhsm.pin + "\n")
    with _serve(tmp_path, env) as served:
        assert httpx.get(f"{served.url}/v1/ledger/key").text.startswith("demo-univ/ledger+")
        assert softhsm.pin not in served.stop()


def test_the_settings_refuse_half_an_hsm_and_never_repeat_its_pin(tmp_path):
    pin = "settings-pin-9931"
    refused: list[dict[str, Any]] = [
        {"hsm_root_key": "demo-univ/root", "hsm_pin": pin},
        {"hsm_module": Path("/m.so"), "hsm_token": "t", "hsm_pin": pin},
        {"hsm_module": Path("/m.so"), "hsm_token": "t", "hsm_ledger_key": "demo-univ/ledger"},
        {"hsm_module": Path("/m.so"), "hsm_token": "t", "hsm_root_key": "a+b", "hsm_pin": pin},
    ]
    for values in refused:
        with pytest.raises(ValidationError) as caught:
            Settings(data_dir=tmp_path, **values)
        assert pin not in str(caught.value)
    missing = Settings(
        data_dir=tmp_path, hsm_module=Path("/m.so"), hsm_token="t", hsm_root_key="r",
        hsm_pin_file=tmp_path / "absent",
    )  # fmt: skip
    with pytest.raises(HsmError) as caught_pin:
        hsm.config(missing)
    assert caught_pin.value.reason is HsmReason.PIN


def _session(softhsm: SoftHsm) -> pkcs11.Session:
    """A session of this test's own on the shared token, logged in (by it, or before it)."""
    token = pkcs11.lib(str(softhsm.module)).get_token(token_label=softhsm.shared)
    try:
        return token.open(user_pin=softhsm.pin, rw=True)
    except pkcs11.exceptions.UserAlreadyLoggedIn:
        return token.open(rw=True)


def _label() -> str:
    return f"test/{uuid.uuid4().hex[:12]}"


def test_the_private_key_cannot_be_read_out_of_the_token(softhsm):
    config = softhsm.config(softhsm.shared)
    label = _label()
    key = hsm.generate_key(config, label)
    assert verify_signature(key.public, b"message", key.sign(b"message"))
    session = _session(softhsm)
    private = session.get_key(ObjectClass.PRIVATE_KEY, KeyType.EC_EDWARDS, label=label)
    assert private[Attribute.SENSITIVE] and not private[Attribute.EXTRACTABLE]
    with pytest.raises(pkcs11.exceptions.AttributeSensitive):
        private[Attribute.VALUE]
    with pytest.raises(pkcs11.exceptions.PKCS11Error):  # nor made extractable afterwards
        private[Attribute.EXTRACTABLE] = True
    assert not private[Attribute.EXTRACTABLE]
    wrapping = session.generate_key(KeyType.AES, 256, template={Attribute.WRAP: True})
    assert isinstance(wrapping, pkcs11.WrapMixin)
    with pytest.raises(pkcs11.exceptions.PKCS11Error):  # nor wrapped out under another key
        wrapping.wrap_key(private, mechanism=Mechanism.AES_KEY_WRAP_PAD)
    assert repr(key) == f"HsmKey(label={label!r}, kid={key.kid.hex()})"


def test_a_key_that_could_leave_the_token_is_refused(softhsm):
    config = softhsm.config(softhsm.shared)
    label = _label()
    session = _session(softhsm)
    curve = {Attribute.EC_PARAMS: encode_named_curve_parameters("1.3.101.112")}
    parameters = session.create_domain_parameters(KeyType.EC_EDWARDS, curve, local=True)
    parameters.generate_keypair(
        store=True,
        label=label,
        private_template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
    )
    with pytest.raises(HsmError) as caught:
        hsm.load_key(config, label)
    assert caught.value.reason is HsmReason.KEY_EXTRACTABLE
    with pytest.raises(HsmError) as absent:
        hsm.load_key(config, _label())
    assert absent.value.reason is HsmReason.KEY


def test_the_keyring_signs_checkpoints_in_the_token_from_threads_and_a_forked_child(
    softhsm, tmp_path
):
    origin = f"hsm-{uuid.uuid4().hex[:8]}/ledger"
    config = softhsm.config(softhsm.shared, root=_label(), ledger=origin)
    hsm.generate_key(config, str(config.root_key))
    hsm.generate_key(config, origin)
    keyring = Keyring.create(tmp_path, origin="ignored/ledger", hsm=config)
    assert not (tmp_path / "root.jwk").exists() and not (tmp_path / "ledger.key").exists()
    assert keyring.ledger.name == origin
    with pytest.raises(LedgerError):  # its private half has no text form
        keyring.ledger.skey()
    notes: list[bytes] = []

    def sign(size: int) -> None:
        checkpoint = Checkpoint(origin, size, RootHash(bytes(32)))
        notes.append(sign_checkpoint(checkpoint, [keyring.ledger]))

    threads = [threading.Thread(target=sign, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sizes = {open_checkpoint(n, keyring.ledger.verifier).checkpoint.size for n in notes}
    assert sizes == set(range(16))
    child = os.fork()
    if child == 0:  # a worker of `duopass serve --workers`: logs in again, then signs
        good = verify_signature(keyring.root.public, b"forked", keyring.root.sign(b"forked"))
        os._exit(0 if good else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert verify_signature(keyring.root.public, b"parent", keyring.root.sign(b"parent"))


def test_a_note_signer_takes_any_ed25519_key(softhsm):
    label = f"n-{uuid.uuid4().hex[:8]}/ledger"
    key = hsm.generate_key(softhsm.config(softhsm.shared), label)
    signer = NoteSigner.from_signer(label, key)
    assert signer.verifier.public_key == key.public
    with pytest.raises(LedgerError):
        NoteSigner.from_signer("bad name", key)


def test_a_session_the_token_lost_is_opened_again(softhsm):
    label = _label()
    key = hsm.generate_key(softhsm.config(softhsm.shared), label)
    # the token drops the process's session and login, as a restarted network HSM does
    token = hsm._tokens[(softhsm.module, softhsm.shared)]
    with token.lock:
        token.session().close()
    assert verify_signature(key.public, b"again", key.sign(b"again"))


def test_a_ledger_key_in_the_token_is_never_handed_to_a_key_file(softhsm, tmp_path):
    """A ledger key in the token rotates only to another key in the token
    (test_hsm_ledger_rotation.py): a key in memory is refused, and a process holding a token key
    signs with no key file, even one the database names (503 ledger_key_missing)."""
    origin = f"hsm-{uuid.uuid4().hex[:8]}/ledger"
    config = softhsm.config(softhsm.shared, root=_label(), ledger=origin)
    hsm.generate_key(config, str(config.root_key))
    hsm.generate_key(config, origin)
    keyring = Keyring.create(tmp_path, origin="ignored/ledger", hsm=config)
    assert not keyring.ledger.in_memory
    url = f"sqlite:///{tmp_path / 'duopass.db'}"
    database = Database(url)
    database.migrate()
    ctx = AppContext(settings=Settings(db_url=url, data_dir=tmp_path), db=database, keyring=keyring)
    try:
        assert ctx.run(ledger_key.signer) is keyring.ledger
        with pytest.raises(Problem) as refused:
            ctx.run(lambda unit: ledger_rotation.rotate(unit, NoteSigner.generate(origin)))
        assert refused.value.detail == "the ledger key is in the HSM: so is the new one"
        assert ctx.run(lambda unit: ledger_key.chain(unit.session)) == []
        other = NoteSigner.generate(origin)  # a key file the database names, left in the dir
        (tmp_path / "ledger.key").write_text(other.skey() + "\n")
        row = LedgerKey(
            leaf=0, vkey=other.verifier.vkey(), previous=keyring.ledger.verifier.vkey(),
            rotated_at=0,
        )  # fmt: skip
        ctx.run(lambda unit: unit.session.add(row))
        with pytest.raises(Problem) as missing:
            ctx.run(ledger_key.signer)
        assert missing.value.code is ProblemCode.LEDGER_KEY_MISSING
        assert "is not the token key ledger-label" in missing.value.detail
    finally:
        database.dispose()
