"""Online scan verdicts are counted by reason (`Metrics.scanned`, each reason's child kept)."""

from __future__ import annotations

from duopass.server.context import Metrics


def test_each_reason_is_counted_apart_in_its_own_registry() -> None:
    metrics, other = Metrics(), Metrics()
    for reason in ("OK", "OK", "FORMAT", "OK"):
        metrics.scanned(reason)
    other.scanned("OK")
    value = metrics.registry.get_sample_value
    assert value("duopass_scans_total", {"reason": "OK"}) == 3
    assert value("duopass_scans_total", {"reason": "FORMAT"}) == 1
    assert value("duopass_scans_total", {"reason": "REPLAY"}) is None
    assert other.registry.get_sample_value("duopass_scans_total", {"reason": "OK"}) == 1
