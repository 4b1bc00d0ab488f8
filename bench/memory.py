"""Resident memory of a terminal whose trust store holds 1,000,000 revocations, its revocation
lookup time, and resident memory of a server holding 100,000 holders and 1,000,000 ledger
entries (issue 14; goals: the store under 64 MiB resident, a lookup under 10 us).

The terminal side runs each step in a fresh process and reads VmRSS from /proc/self/status before
and after: applying a whole signed bundle as `BundleSync` does (then giving the C heap's freed
memory back), reloading the store as a restart does, and, for
comparison, the layout before (a frozenset of (iss, cti) pairs). A lookup (`is_revoked`, hit and
miss) is timed against one dict lookup and one raw libsodium verify in the same run. The server
side is `bench.memory_server`.

    python -m bench.memory [--quick]
"""

from __future__ import annotations

import gc
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import nacl.bindings

from bench.timing import best_of, parser, table, us
from duopass.protocol import SigningKey
from duopass.protocol.bundle import Bundle, apply_bundle, encode_bundle, open_bundle
from duopass.protocol.trust import Policy, TrustStore
from duopass.terminal.held_trust import give_back_memory
from duopass.terminal.store import Store

ISS = "demo-univ"
ROOT = SigningKey(b"\x22" * 32)
CTI_BYTES = 12  # what the server issues (services/credentials.py)
GOAL_MIB, GOAL_US = 64, 10.0


def rss_kib(field: str = "VmRSS") -> int:
    """This process's resident memory (or another /proc/self/status field), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def mib(kib: float) -> str:
    return f"{kib / 1024:7.1f} MiB"


def make_bundle(path: Path, count: int) -> None:
    rng = random.Random(14)
    ctis = tuple(rng.randbytes(CTI_BYTES) for _ in range(count))
    bundle = Bundle(
        seq=1, issued_at=1, max_age_s=86_400, since=0, iss=ISS, policy=Policy(), revoked_added=ctis
    )
    path.write_bytes(encode_bundle(bundle, ROOT))


def _lookups(store: TrustStore, rounds: int) -> dict[str, float]:
    """Seconds per call: is_revoked hit and miss, one dict lookup, one raw verify."""
    data, count = store.revocations.issuer(ISS).groups()[CTI_BYTES]
    rng = random.Random(7)
    picks = [rng.randrange(count) for _ in range(20_000)]
    hits = [data[i * CTI_BYTES : (i + 1) * CTI_BYTES] for i in picks]
    misses = [rng.randbytes(CTI_BYTES) for _ in range(20_000)]
    assert all(store.is_revoked(ISS, c) for c in hits[:100])
    assert not any(store.is_revoked(ISS, c) for c in misses[:100])
    table_ = dict.fromkeys(hits, True)
    key = SigningKey(b"\x33" * 32)
    signed = key.sign(b"x" * 200) + b"x" * 200  # crypto_sign_open's form: signature, message
    verify = nacl.bindings.crypto_sign_open
    revoked = store.is_revoked

    def hit() -> None:
        for cti in hits:
            revoked(ISS, cti)

    def miss() -> None:
        for cti in misses:
            revoked(ISS, cti)

    def in_dict() -> None:
        for cti in misses:
            _ = cti in table_

    def raw_verify() -> None:  # 1,000 calls, counted as 20,000 by best_of: scaled by the caller
        for _ in range(1000):
            verify(signed, key.public)

    return best_of(
        {"hit": hit, "miss": miss, "dict": in_dict, "verify": raw_verify}, 20_000, rounds
    )


def child(step: str, bundle: Path, data_dir: Path, rounds: int) -> dict[str, Any]:
    """One measurement in this fresh process (imports done before the first reading)."""
    gc.collect()
    before = rss_kib()
    out: dict[str, Any] = {"before_kib": before}
    if step == "apply":
        raw = bundle.read_bytes()
        store = apply_bundle(None, open_bundle(raw, ROOT.public))
        del raw
        Store(data_dir).save_trust(store, whole=True, now=1, offset=0)
        give_back_memory()  # as BundleSync does after a whole bundle
    elif step == "reload":
        loaded = Store(data_dir).trust()
        assert loaded is not None
        store = loaded
    else:  # the layout before: one frozenset of (iss, cti) pairs
        opened = open_bundle(bundle.read_bytes(), ROOT.public)
        old = frozenset((ISS, cti) for cti in opened.revoked_added)
        del opened
        gc.collect()
        out |= {"after_kib": rss_kib(), "peak_kib": rss_kib("VmHWM"), "entries": len(old)}
        return out
    gc.collect()
    out |= {"after_kib": rss_kib(), "peak_kib": rss_kib("VmHWM"), "entries": len(store.revoked)}
    if step == "reload":
        times = _lookups(store, rounds)
        # verify ran 1,000 times per round, not 20,000
        times["verify"] *= 20_000 / 1000
        out["times"] = times
    return out


def run_child(step: str, bundle: Path, data_dir: Path, rounds: int) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.memory",
            "--child",
            step,
            str(bundle),
            str(data_dir),
            str(rounds),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"bench.memory child {step} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def terminal(count: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bundle, data_dir = Path(tmp) / "bundle.cbor", Path(tmp) / "till"
        data_dir.mkdir(mode=0o700)
        make_bundle(bundle, count)
        size = bundle.stat().st_size
        applied = run_child("apply", bundle, data_dir, rounds)
        reloaded = run_child("reload", bundle, data_dir, rounds)
        old = run_child("frozenset", bundle, data_dir, rounds)
    print(
        f"terminal: a whole trust bundle of {count:,} revocations ({size / 2**20:.1f} MiB), "
        f"{CTI_BYTES}-byte ctis; VmRSS from /proc/self/status, each step a fresh process"
    )
    rows = []
    for name, step in (
        ("apply bundle", applied),
        ("reload (restart)", reloaded),
        ("before: frozenset", old),
    ):
        store = step["after_kib"] - step["before_kib"]
        rows.append((f"{name}: store", mib(store)))
        rows.append(
            (
                f"{name}: process before / after / peak",
                f"{mib(step['before_kib'])} / {mib(step['after_kib'])} / {mib(step['peak_kib'])}",
            )
        )
    times = reloaded["times"]
    rows += [
        ("lookup, revoked (hit)", us(times["hit"])),
        ("lookup, not revoked (miss)", us(times["miss"])),
        ("one dict lookup", us(times["dict"])),
        ("one raw verify", us(times["verify"])),
    ]
    table(rows)
    store_mib = (reloaded["after_kib"] - reloaded["before_kib"]) / 1024
    applied_mib = (applied["after_kib"] - applied["before_kib"]) / 1024
    worst = max(times["hit"], times["miss"])
    print(f"RATIO store_reload_vs_goal {store_mib / GOAL_MIB:.3f}")
    print(f"RATIO store_apply_vs_goal {applied_mib / GOAL_MIB:.3f}")
    print(f"RATIO lookup_vs_dict {worst / times['dict']:.2f}")
    print(f"RATIO lookup_vs_raw_verify {worst / times['verify']:.3f}")
    print(f"RATIO lookup_vs_goal {worst * 1e6 / GOAL_US:.3f}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        step, bundle, data_dir, rounds = sys.argv[2:6]
        print(json.dumps(child(step, Path(bundle), Path(data_dir), int(rounds))))
        return
    args = parser(__doc__).parse_args()
    terminal(20_000 if args.quick else 1_000_000, 2 if args.quick else 7)
    from bench.memory_server import server

    server(quick=args.quick)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
