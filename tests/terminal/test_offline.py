"""The terminal accepts wallet codes offline, with its memory kept across restarts, the offline
limits (§3 check 18, §5.5) and only bundles signed by the pinned root key."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest

from duopass.demo.netcut import Mode, Proxy
from duopass.protocol import SigningKey
from duopass.protocol.bundle import BundleError
from duopass.protocol.reasons import Reason
from duopass.qr import render_png
from duopass.terminal import AgentSettings, TerminalAgent, enrol, parse_amount, read_lines
from duopass.terminal.client import Answer, Refused, _offset, _problem
from duopass.terminal.store import KEY_NAME
from tests.server.harness import Running, ready_wallet, running_server
from tests.terminal.conftest import cli, server_acked, till_code

OFFLINE = AgentSettings(timeout_s=0.3)


def _enrolled(server, proxy, tmp_path, **kw):
    admin = server.admin()
    code, merchant = till_code(admin)
    data = tmp_path / "till"
    enrol(data, server=proxy.url, terminal_id="till-1", code=code, **kw)
    with TerminalAgent(data, OFFLINE) as terminal:
        terminal.bundles.sync()
    return admin, data, merchant


def test_wallet_codes_are_accepted_offline_and_remembered_across_restarts(server, proxy, tmp_path):
    admin, data, merchant = _enrolled(server, proxy, tmp_path)
    wallet = ready_wallet(server.http, admin, "emil", balance=100_000)
    txmax = wallet.credential["txmax"]
    proxy.set(Mode.REFUSE)
    code = wallet.code()
    with TerminalAgent(data, OFFLINE) as terminal:
        paid = terminal.scan_path.scan(code, amount=txmax)
        assert (paid.reason, paid.online, paid.tried) == (Reason.OK, False, True)
        assert (
            terminal.scan_path.scan(wallet.code(), amount=txmax + 1).reason is Reason.OVER_TX_LIMIT
        )
    with TerminalAgent(data, OFFLINE) as terminal:  # a restart: the counter is remembered
        again = terminal.scan_path.scan(code, amount=100)
        assert (again.reason, again.seq) == (Reason.REPLAY, 3)
    proxy.set(Mode.FORWARD)
    with TerminalAgent(data, OFFLINE) as terminal:
        assert terminal.uploader.upload()
        # an online acceptance is remembered too
        online = terminal.scan_path.scan(wallet.code(), amount=100)
        assert online.online and online.ok
        proxy.set(Mode.REFUSE)
        replay = terminal.scan_path.scan(code, amount=1)
        assert replay.reason is Reason.REPLAY
    assert server_acked(server, "till-1") == 3
    assert admin.account(wallet.account_id)["balance"] == 100_000 - txmax - 100
    assert admin.account(merchant)["balance"] == txmax + 100
    assert admin.books() == 0


def test_an_online_acceptance_is_kept_in_the_terminals_memory(server, proxy, tmp_path):
    admin, data, _ = _enrolled(server, proxy, tmp_path)
    wallet = ready_wallet(server.http, admin, "fay", balance=100_000)
    code = wallet.code()
    with TerminalAgent(data, OFFLINE) as terminal:
        assert terminal.scan_path.scan(code, amount=100).online
        proxy.set(Mode.REFUSE)
        replay = terminal.scan_path.scan(code, amount=100)
        assert (replay.reason, replay.online) == (Reason.REPLAY, False)


@pytest.fixture
def short_window(tmp_path) -> Iterator[tuple[Running, Proxy]]:
    """A server whose late window (§5.4) is a minute short of 12 h: §5.5 leaves no margin."""
    with running_server(
        f"sqlite:///{tmp_path / 'short.db'}", tmp_path / "short", late_window_s=12 * 3600 - 60
    ) as running:
        cut = Proxy(int(running.url.rsplit(":", 1)[1]))
        yield running, cut
        cut.close()


def test_offline_payments_stop_while_the_journal_backlog_is_too_old(short_window, tmp_path):
    """§5.5 with the late window the trust bundle carries (§5.4), nothing given at enrolment:
    any unacknowledged entry blocks offline payments."""
    server, proxy = short_window
    admin, data, _ = _enrolled(server, proxy, tmp_path)
    wallet = ready_wallet(server.http, admin, "gus", balance=100_000)
    proxy.set(Mode.REFUSE)
    with TerminalAgent(data, OFFLINE) as terminal:
        trust = terminal.store.trust()
        assert trust is not None and trust.policy("demo-univ").late_window_s == 12 * 3600 - 60
        assert terminal.scan_path.scan(wallet.code(), amount=100).ok  # nothing unacknowledged yet
        stale = terminal.scan_path.scan(wallet.code(), amount=100)
        assert (stale.reason, stale.online) == (Reason.TRUST_STALE, False)
        proxy.set(Mode.FORWARD)
        assert terminal.uploader.upload()
        proxy.set(Mode.REFUSE)
        assert terminal.scan_path.scan(wallet.code(), amount=100).ok


def test_the_enrol_option_for_the_late_window_is_deprecated_and_ignored(server, proxy, tmp_path):
    """The late window comes from the bundle now; installers that still pass it keep working."""
    code, _ = till_code(server.admin())
    data = tmp_path / "till"
    args = ["--server", proxy.url, "--id", "till-1", "--code", code, "--data-dir", str(data)]
    done = cli("enrol", *args, "--late-window-s", "86400")
    assert done.returncode == 0, done.stderr
    assert "--late-window-s is deprecated" in done.stderr
    with TerminalAgent(data, OFFLINE) as terminal:
        trust = terminal.store.trust()
        assert trust is not None and trust.policy("demo-univ").late_window_s == 72 * 3600


def test_a_bundle_not_signed_by_the_pinned_root_key_is_refused(server, proxy, tmp_path):
    _, data, _ = _enrolled(server, proxy, tmp_path)
    with TerminalAgent(data, OFFLINE) as terminal:
        held = terminal.store.trust()
        terminal.bundles.root_key = SigningKey.generate().public  # as if pinned to another root
        with pytest.raises(BundleError):
            terminal.bundles.sync()
        assert terminal.store.trust() == held


def test_bad_input_gets_a_verdict_and_never_crashes(server, proxy, tmp_path):
    _, data, _ = _enrolled(server, proxy, tmp_path)
    with TerminalAgent(data, OFFLINE) as terminal:
        for text in ["hello", "DP1:" + "A" * 2000, "DP1:%%%", "\ufffd", "DP1: 0 0"]:
            verdict = terminal.scan_path.scan(text, amount=100)
            assert verdict.reason in (Reason.FORMAT, Reason.MALFORMED), text
        assert terminal.uploader.upload()
    assert server_acked(server, "till-1") == 5
    assert (data / KEY_NAME).stat().st_mode & 0o077 == 0


def test_lines_lose_their_line_ending_and_nothing_else():
    stream = io.BytesIO(b"DP1:A B \r\nsecond\rthird\n" + b"x" * 20_000 + b"\nlast")
    lines = [line for line in read_lines(stream) if line != ""]
    assert lines == ["DP1:A B ", "second", "third", None, "last"]


@pytest.mark.parametrize(
    ("line", "minor"),
    [
        ("1250", 1250),
        ("12.50", 1250),
        ("12.5", 1250),
        ("0.07", 7),
        ("12.", None),
        ("1e3", None),
        (" 12", None),
        ("12,50", None),
        ("99999999999", None),
        ("0012", 12),
        (".5", None),
        ("1.2.3", None),
        ("12.505", None),
        ("1_250", None),
        ("+1250", None),
        ("\u0661\u0662\u0665\u0660", None),  # Arabic-Indic 1250
        ("\uff11\uff12.\uff15", None),  # fullwidth 12.5
        ("\u00b2", None),
        ("12.\u00b2", None),
    ],
)
def test_amounts_keyed_in(line, minor):
    assert parse_amount(line) == minor


NOV_6_1994 = 784_111_777  # Sun, 06 Nov 1994 08:49:37 GMT


@pytest.mark.parametrize(
    ("date", "offset"),
    [
        ("Sun, 06 Nov 1994 08:49:37 GMT", 0),
        ("Sun, 06 Nov 1994 08:50:37 GMT", 60),
        ("Sun, \u0660\u0666 Nov \u0661\u0669\u0669\u0664 08:49:37 GMT", None),  # Arabic-Indic
        ("Sun, 06 Nov 1_94 08:49:37 GMT", None),
        ("Sun, 06 Nov \u00b2994 08:49:37 GMT", None),
        ("Sun, 06 Nov +994 08:49:37 GMT", None),
        ("Sun, 31 Feb 1994 08:49:37 GMT", None),
        ("Sun, 06 Nov 1994 08:49:37 GMT trailing", None),
        ("Sunday, 06-Nov-94 08:49:37 GMT", None),  # obsolete forms: no server of ours sends them
        (None, None),
    ],
)
def test_the_server_clock_is_read_from_an_imf_fixdate_in_ascii_digits(date, offset):
    assert _offset(date, NOV_6_1994) == offset


@pytest.mark.parametrize("body", [b"1" * 5000, b"[" * 100_000])
def test_an_answer_json_cannot_hold_is_refused_not_a_crash(body):
    with pytest.raises(Refused):
        Answer(200, body, None).json()
    assert _problem(body) == ("unknown", None)


def test_image_files_are_scanned_in_order(server, proxy, tmp_path):
    admin, data, _ = _enrolled(server, proxy, tmp_path)
    wallet = ready_wallet(server.http, admin, "hana", balance=100_000)
    code = wallet.code()
    frames = [tmp_path / "a.png", tmp_path / "b.png", tmp_path / "empty.png"]
    frames[0].write_bytes(render_png(code))
    frames[1].write_bytes(render_png(code))
    frames[2].write_bytes(render_png("not a code")[:40])  # no image at all
    proxy.set(Mode.REFUSE)
    done = cli("run", "--json", "--amount", "150", "--data-dir", str(data), *map(str, frames))
    assert done.returncode == 1, done.stderr  # the last frame could not be scanned
    verdicts = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(v["reason"], v["mode"]) for v in verdicts] == [
        ("OK", "offline"),
        ("REPLAY", "offline"),
    ]
    assert f"not an image: {frames[2]}" in done.stderr
