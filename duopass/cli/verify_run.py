"""`duopass verify`'s work without Typer: its checks, the trust file, the verdict lines, and the
plain command line read without Typer, Click or Pydantic (a third of the command's start).

`duopass.cli.main` hands `run_plain` the arguments after "verify". A command line it reads
plainly (only the command's own options, each once, as `--name value` or `--name=value`, values
in ASCII and numbers as `whole` takes them, at least one code, nothing after `--` read as an
option) runs here, and the process leaves by `os._exit` once its streams are flushed: the
interpreter's teardown (freeing every module and each code's objects) was a seventh of the
command's start and a few microseconds a code. Anything else, `--help`, a misspelt option or
a value Typer would refuse, returns None and runs through Typer (`duopass.cli.verify`), which
says what is wrong as before; both run `prepare` and `verify_all`, so a command line read
either way verifies and prints the same.
"""

from __future__ import annotations

import errno
import gc
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from duopass.cli.code_argument import scanned_text
from duopass.cli.output import verdict_line
from duopass.protocol.encoding import EncodingError, parse_digits
from duopass.protocol.limits import INT_ABS_LIMIT, TRUST_FILE_BYTES_MAX
from duopass.protocol.memory import MemoryStore
from duopass.protocol.trust import TrustStore, TrustStoreError, parse_trust_store
from duopass.protocol.verify import Mode, TerminalConfig, Verifier

__all__ = [
    "EXIT_ACCEPTED",
    "EXIT_REJECTED",
    "EXIT_USAGE",
    "Options",
    "UsageError",
    "parse_plain",
    "prepare",
    "run_plain",
    "verify_all",
]

EXIT_ACCEPTED, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2
WHOLE_MAX = INT_ABS_LIMIT - 1  # `--now` and `--amount` (0.. and 1..)


class UsageError(Exception):
    """A usage error's message, printed after "duopass: " with exit status 2."""


@dataclass(frozen=True, kw_only=True)
class Options:
    """The command's options, as its Typer signature reads them."""

    codes: list[str]
    trust: Path
    now: int
    mode: Mode
    amount: int | None = None
    currency: str | None = None
    scope: str | None = None
    event: str | None = None


def _read_trust(path: Path) -> TrustStore:
    try:
        with path.open("rb") as handle:  # bounded read: a device or pipe has no honest size
            data = handle.read(TRUST_FILE_BYTES_MAX + 1)
        return parse_trust_store(data)
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from exc
    except TrustStoreError as exc:
        raise UsageError(f"{path}: trust store refused: {exc}") from exc


def prepare(options: Options) -> Verifier:
    """The fresh terminal the options describe, its trust store read; UsageError if they do not
    make one (checked in this order: amount, currency, event, the trust file)."""
    mode = options.mode
    if mode is Mode.PAY and options.amount is None:
        raise UsageError("--mode pay needs --amount of at least 1")
    if mode is Mode.PAY and not options.currency:
        raise UsageError("--mode pay needs --currency")
    if mode is Mode.ENTRY and not options.event:
        raise UsageError("--mode entry needs --event")
    store = _read_trust(options.trust)
    config = TerminalConfig(
        mode=mode, currency=options.currency, venue=options.scope, event=options.event
    )
    return Verifier(store, config, MemoryStore())


def verify_all(codes: list[str], verifier: Verifier, now: int, amount: int | None) -> bool:
    """Scan each code in order, writing its verdict line; True when all were accepted.

    The codes are scanned `_LINES_A_WRITE` at a time by `Verifier.scan_all` (their signatures
    verified one after another) and their lines written together: with PYTHONUNBUFFERED set
    (or `-u`) every `write` is a system call. The cycle collector waits while a block is
    scanned (a code makes no cycle; it ran a few times a block, over every object alive)."""
    all_accepted = True
    collecting = gc.isenabled()
    for start in range(0, len(codes), _LINES_A_WRITE):
        gc.disable()
        try:
            texts = [scanned_text(argument) for argument in codes[start : start + _LINES_A_WRITE]]
            verdicts = verifier.scan_all(texts, now=now, amount=amount)
        finally:
            if collecting:
                gc.enable()
        all_accepted = all_accepted and all(verdict.ok for verdict in verdicts)
        sys.stdout.write("\n".join(map(verdict_line, verdicts)) + "\n")
    sys.stdout.flush()
    return all_accepted


_LINES_A_WRITE = 256


def _whole(value: str, low: int) -> int | None:
    """`numbers.whole(low, WHOLE_MAX)`'s reading of `value`, None where it would refuse it."""
    try:
        number = parse_digits(value, digits_max=len(str(WHOLE_MAX)))
    except EncodingError:
        return None
    return number if low <= number <= WHOLE_MAX else None


_MODES = {mode.value: mode for mode in Mode}
_OPTIONS = ("--trust", "--now", "--mode", "--amount", "--currency", "--scope", "--event")


def _values(args: list[str]) -> tuple[dict[str, str], list[str]] | None:
    """Each option's value and the codes, in order; None for anything but a plain reading."""
    values: dict[str, str] = {}
    codes: list[str] = []
    index, count = 0, len(args)
    while index < count:
        arg = args[index]
        index += 1
        if not arg.startswith("-"):
            codes.append(arg)
            continue
        if arg == "--":
            codes.extend(args[index:])
            break
        name, equals, value = arg.partition("=")
        if not equals:
            if index == count:
                return None
            value = args[index]
            index += 1
        if name not in _OPTIONS or name in values or not value or value.startswith("-"):
            return None
        values[name] = value
    return values, codes


def parse_plain(args: list[str]) -> Options | None:
    """The options a plain command line gives (see the module's docstring), or None."""
    read = _values(args)
    if read is None:
        return None
    values, codes = read
    if not codes or not all(arg.isascii() for arg in args):
        return None
    if "--trust" not in values or "--now" not in values or "--mode" not in values:
        return None
    now = _whole(values["--now"], 0)
    mode = _MODES.get(values["--mode"])
    amount = _whole(values["--amount"], 1) if "--amount" in values else None
    if now is None or mode is None or ("--amount" in values and amount is None):
        return None
    if not _readable_or_absent(values["--trust"]):  # Click refuses such a path with its message
        return None
    return Options(
        codes=codes,
        trust=Path(values["--trust"]),
        now=now,
        mode=mode,
        amount=amount,
        currency=values.get("--currency"),
        scope=values.get("--scope"),
        event=values.get("--event"),
    )


def _readable_or_absent(path: str) -> bool:
    """As Click's `Path` reads it: a path that exists must be readable (a missing one is left
    to `prepare`, which says so)."""
    try:
        os.stat(path)
    except OSError:
        return True
    return os.access(path, os.R_OK)


def run_plain(args: list[str]) -> None:
    """Run `duopass verify` on a plain command line and leave the process; return when the
    command line is not plain (Typer reads it then)."""
    options = parse_plain(args)
    if options is None:
        return
    try:
        verifier = prepare(options)  # a trust file on a pipe or a slow mount may be interrupted
        accepted = verify_all(options.codes, verifier, options.now, options.amount)
    except UsageError as exc:
        import typer  # noqa: PLC0415 (only to say what is wrong, as the Typer path says it)

        typer.echo(f"duopass: {exc}", err=True)
        _leave(EXIT_USAGE)
    except KeyboardInterrupt:
        _leave(_EXIT_INTERRUPTED)
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        os._exit(EXIT_REJECTED)  # as Click leaves: quietly, the closed stream not flushed again
    _leave(EXIT_ACCEPTED if accepted else EXIT_REJECTED)


_EXIT_INTERRUPTED = 130  # Typer's status for Ctrl-C


def _leave(status: int) -> NoReturn:
    """Exit with `status` once stdout and stderr are flushed, without the interpreter's
    teardown; a stream that cannot be flushed leaves the usual way, which reports it."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        raise SystemExit(status) from None
    os._exit(status)
