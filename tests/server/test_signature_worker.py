"""A journal batch's signature worker that hangs (stopped with SIGSTOP) does not hold the batch:
past `signature_worker_deadline_s` the worker is killed, the batch's signatures are verified in
the server's process with the same verdicts, and the next large batch starts another worker."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

import pytest

from duopass.protocol import SigningKey
from duopass.server.services.journals import verifier
from duopass.server.services.journals.signatures import PARALLEL_FROM
from tests.server.harness import enrolled_till, ready_wallet, running_server
from tests.server.test_journals import forged_batch


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_stopped_signature_worker_is_killed_and_its_batch_verified_anyway(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with running_server(url, tmp_path / "data", signature_worker_deadline_s=0.3) as server:
        admin = server.admin()
        wallet = ready_wallet(server.http, admin, "stan", balance=10_000)
        till, _ = enrolled_till(server.http, admin)
        forger = SigningKey.generate()

        def batch(first: int) -> list[bytes]:
            return forged_batch(wallet, till, forger, first)

        assert till.journal(batch(1)).status_code == 200  # a worker started, now idle
        stopped = verifier.pids()
        assert stopped
        try:
            for pid in stopped:  # the server runs in this process: its workers are ours
                os.kill(pid, signal.SIGSTOP)
            first = PARALLEL_FROM + 8
            entries = batch(first)
            with caplog.at_level(logging.WARNING, logger="duopass.server.events"):
                answer = till.journal(entries)
            assert answer.status_code == 200, answer.text
            forged = [seq for seq in range(first, first + len(entries)) if seq % 10 == 3]
            rejected = {r["seq"]: r["reason"] for r in answer.json()["rejected"]}
            assert rejected == dict.fromkeys(forged, "BAD_DEVICE_SIGNATURE")
            assert "did not answer within 0.3 s: killed" in caplog.text
            assert not any(_alive(pid) for pid in stopped)  # killed and reaped
            assert not set(stopped) & set(verifier.pids())
            assert till.journal(batch(first + len(entries))).status_code == 200
            assert verifier.pids() and not set(stopped) & set(verifier.pids())  # another one
            assert admin.books() == 0
        finally:
            for pid in stopped:
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("deadline", [0, 61])
def test_the_deadline_is_bounded(tmp_path, deadline):
    from pydantic import ValidationError

    from duopass.server.settings import Settings

    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, signature_worker_deadline_s=deadline)


def test_a_worker_whose_input_ends_mid_request_exits_quietly() -> None:
    """The server gone halfway through writing a request: the worker exits, no traceback."""
    for cut in (b"\x80\x00\x00\x01\x00\x00", b"\x00\x00\x00\x01\x00\x20"):
        done = subprocess.run(
            [sys.executable, "-c", verifier._SERVE], input=cut, capture_output=True, timeout=60
        )
        assert (done.returncode, done.stdout, done.stderr) == (0, b"\x02", b"")
