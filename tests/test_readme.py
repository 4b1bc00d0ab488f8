"""The README runs as printed: every command line of its ```sh blocks, in order, from a fresh
folder laid out as a clone beside `../shared`, against a live `duopass serve --demo` that this
test starts on a free port of 127.0.0.1 (the README's port 8000 is the only text replaced).

Each line is run verbatim through bash (variables set by one line are seen by the next, as in one
terminal), smoke-run at reduced size (make targets run their recipe's commands, from `make -n`,
with smaller arguments), left to another test that runs exactly its smoke-run commands (checked
here, command by command, so as not to run a lunch rush or the benchmarks twice), or skipped, as
the table `CASES` says, with the reason. A README line no
case matches fails the test, so a new line must be given a case here. The list of lines not run
as printed, and why, is printed (`pytest -rA` shows it) and recorded as a property."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from duopass.demo.serving import free_port
from tests.test_bench_smoke import BENCHMARKS
from tests.test_demo import DOORS, RUSH
from tests.vectors import shared_dir

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
README_PORT = 8000
START_S = 300.0
"""How long a server may take to answer /healthz: migrations and demo data on a loaded machine."""
DEMO_SMOKE = " " + shlex.join(RUSH[1:])
"""The lunch rush at the size tests/test_demo.py plays it (the offline cut cannot be under 65 s)."""
DOORS_SMOKE = " " + shlex.join(DOORS[2:])
"""The doors at the size tests/test_demo.py plays them."""
CONFORMANCE_SAMPLE = ("expired.json", "frozen.json", "identity-ok.json", "foreign-format.json")


@dataclass(frozen=True)
class Case:
    """How the README lines that `pattern` matches (from their start) are handled."""

    pattern: str
    how: str = "run"
    """run: as printed; smoke: `reduce(line)` instead; covered: `reduce(line)` is what another
    test runs (`covered`), so not again; skip: not at all."""
    why: str = ""
    reduce: Callable[[Session, str], list[str]] | None = None
    covered: tuple[tuple[str, ...], ...] = ()
    """For `covered`: the arguments (after the program) of the commands the other test runs."""
    stdin: Callable[[Session], str] | None = None
    expect: str = ""
    """A regex the line's output (stdout and stderr) must contain."""


def _recipe(session: Session, line: str, *, change: Callable[[str], str]) -> list[str]:
    """The commands `make` runs for the line's target (`make -n`), less the bootstrap a fresh
    clone runs first, each changed by `change`."""
    dry = session.bash(f"{line.split('#', maxsplit=1)[0].strip()} -n -s", stdout_only=True)
    return [change(command) for command in dry.splitlines() if "bootstrap" not in command]


def _with(suffix: str) -> Callable[[Session, str], list[str]]:
    return lambda session, line: [line.split("#", maxsplit=1)[0].rstrip() + suffix]


def _holder_password(session: Session) -> str:
    return str(session.demo()["holders"]["password"]) + "\n"


def _a_sale(session: Session) -> str:
    code = session.bash(".venv/bin/duopass wallet code --no-qr", stdout_only=True).strip()
    return f"1250\n{code}\n"


def _conformance(session: Session, line: str) -> list[str]:
    sample = session.clone / "conformance-sample"
    sample.mkdir(exist_ok=True)
    for name in CONFORMANCE_SAMPLE:
        shutil.copy(shared_dir() / "vectors" / "dp1" / name, sample)
    return _recipe(session, line, change=lambda c: c.replace("../shared/vectors/dp1", sample.name))


CASES = [
    Case("make run", how="make-run", expect='"status":"ok"'),
    Case("make test", how="skip", why="the suite this test is part of"),
    Case(
        "make demo",
        how="covered",
        why=f"its recipe with{DEMO_SMOKE} (12 phones, not 200), run by tests/test_demo.py",
        reduce=lambda s, line: _recipe(s, line, change=lambda c: c + DEMO_SMOKE),
        covered=(RUSH,),
    ),
    Case(
        "make tour",
        how="smoke",
        why="its recipe",
        reduce=lambda s, line: _recipe(s, line, change=lambda c: c),
        expect="trust.json",
    ),
    Case(
        "make conformance",
        how="smoke",
        why=f"its recipe on {len(CONFORMANCE_SAMPLE)} of the shared vectors",
        reduce=_conformance,
        expect="vectors give the expected verdicts",
    ),
    Case(
        "make bench",
        how="covered",
        why="its recipe, each benchmark with --quick, run by tests/test_bench_smoke.py",
        reduce=lambda s, line: _recipe(s, line, change=lambda c: c + " --quick"),
        covered=tuple(("-m", *benchmark, "--quick") for benchmark in BENCHMARKS),
    ),
    Case(
        "make fuzz",
        how="smoke",
        why="its recipe with --inputs 2000",
        reduce=lambda s, line: _recipe(
            s, line, change=lambda c: re.sub(r"--inputs \d+", "--inputs 2000", c)
        ),
    ),
    Case(
        ".venv/bin/duopass demo --server",
        how="smoke",
        why=f"with{DEMO_SMOKE}, against this test's server: its clone leaves the alerts below",
        reduce=_with(DEMO_SMOKE),
        expect="clone",
    ),
    Case(
        ".venv/bin/duopass demo --doors",
        how="covered",
        why=f"with{DOORS_SMOKE}, self-contained, run by tests/test_demo.py",
        reduce=_with(DOORS_SMOKE),
        covered=(DOORS,),
    ),
    Case(".venv/bin/duopass demo", how="skip", why="what `make demo` runs, smoke-run above"),
    Case("curl -s localhost:8000/healthz", expect='"status":"ok"'),
    Case(r'curl -s "localhost:8000/v1/admin/holders\?q=', expect='"login":"student0042"'),
    Case("curl -s localhost:8000/v1/admin/terminals ", expect='"till-north-1"'),
    Case("curl -s localhost:8000/v1/admin/alerts ", expect=r'^\{"items":\[\{"id"'),
    Case("curl -s -X POST localhost:8000/v1/admin/alerts/", expect='"freeze"'),
    Case('curl -s "localhost:8000/v1/admin/settlement/', expect="terminal"),
    Case(".venv/bin/duopass audit ", expect="audit passed"),
    Case(".venv/bin/duopass wallet enrol ", stdin=_holder_password, expect="enrolled as device"),
    Case(
        ".venv/bin/duopass wallet code --watch",
        how="smoke",
        why="with --interval 1 --count 3: three re-signatures a second apart, not 12 over 60 s",
        reduce=_with(" --interval 1 --count 3"),
        expect="DP1:",
    ),
    Case(".venv/bin/duopass wallet code ", expect="DP1:"),
    Case(".venv/bin/duopass wallet lost", stdin=_holder_password, expect="generation 1"),
    Case("curl -s -X POST localhost:8000/v1/checkin/redeem ", expect='"reason":"NOT_YET_VALID"'),
    Case("curl -s localhost:8000/v1/policy ", expect='"allow_default"'),
    Case(".venv/bin/duopass terminal enrol ", expect="enrolled till-north-1"),
    Case("curl -s localhost:8000/v1/admin/risk ", expect='"top_keys"'),
    Case(".venv/bin/duopass wallet limits ", expect="30.00"),
    Case(".venv/bin/duopass wallet confirm", expect="nothing to confirm"),
    Case(".venv/bin/duopass wallet history", expect="pending: codes shown"),
    Case(
        ".venv/bin/duopass risk simulate ",
        how="smoke",
        why="a labelled day of 80 holders takes half a minute: 8 holders, 1 incident a family",
        reduce=_with(" --holders 8 --incidents 1"),
        expect="credential_stuffing",
    ),
    Case(".venv/bin/duopass terminal run ", stdin=_a_sale, expect="OK online pay 12.50 CNY"),
    Case(".venv/bin/duopass verify ", expect='"reason": "OK"'),
    Case(r"[A-Z_]+=\$\("),  # a variable that a later line uses
    Case("export "),
    Case(".venv/bin/duopass "),
]


def readme_lines(text: str) -> list[str]:
    """The command lines of the ```sh blocks, a continued line (ending in `\\`) with its next."""
    lines, block, pending = [], False, ""
    for raw in text.splitlines():
        if raw.startswith("```"):
            block = raw.strip() == "```sh"
            continue
        if not block or (not pending and raw.lstrip().startswith("#")):
            continue  # prose, or a comment line
        pending += raw + "\n"
        if not raw.endswith("\\"):
            if pending.strip():
                lines.append(pending.rstrip("\n"))
            pending = ""
    return lines


def case_of(line: str) -> Case | None:
    return next((case for case in CASES if re.match(case.pattern, line)), None)


def _tracked_top_level() -> set[str]:
    """The clone's own files and folders, not what running the README left in the repo (its
    `duopass-data/`, say, which this test must not serve)."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True, check=True
    )
    return {path.split("/", 1)[0] for path in listed.stdout.splitlines()}


class Session:
    """One terminal in a fresh folder beside `shared/`: a clone's files (linked), a HOME of its
    own, and the shell variables earlier lines set."""

    def __init__(self, root: Path, port: int) -> None:
        self.port = port
        self.clone = root / "duopass"
        self.clone.mkdir(parents=True)
        (root / "shared").symlink_to(shared_dir())
        for name in _tracked_top_level() | {".venv"}:
            (self.clone / name).symlink_to(REPO / name)
        self.home = root / "home"
        self.home.mkdir()
        self.state = root / "shell-state"
        self.state.write_text("")
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "TERM": "dumb",
        }

    def demo(self) -> dict[str, Any]:
        return dict(json.loads((self.clone / "duopass-data" / "demo.json").read_text()))

    def bash(
        self, command: str, *, stdin: str = "", stdout_only: bool = False, timeout: float = 900
    ) -> str:
        """Runs `command` with the variables of earlier lines; its output (stdout and stderr).
        A command that fails fails the test."""
        script = f"set -a\n. {self.state}\n{command}\nrc=$?\nexport -p > {self.state}\nexit $rc\n"
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=self.clone,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"exit {done.returncode}: {command}\n{(done.stdout + done.stderr)[-3000:]}"
            )
        return done.stdout if stdout_only else done.stdout + done.stderr

    def localised(self, line: str) -> str:
        for host in ("127.0.0.1", "localhost"):
            line = line.replace(f"{host}:{README_PORT}", f"{host}:{self.port}")
        return line


def _healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"no answer from {url}/healthz in {START_S} s:\n{log.read_text()}")


@contextmanager
def _serving(command: list[str], cwd: Path, env: dict[str, str], url: str) -> Iterator[None]:
    """A server command in its own process group, until /healthz answers and the block ends."""
    log = cwd / f"server-{os.getpid()}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=out, start_new_session=True
        )
    try:
        _healthy(url, process, log)
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    """The README's `make run`, as the line the Makefile runs, on a free port."""
    session = Session(tmp_path, free_port())
    serve = [".venv/bin/duopass", "serve", "--demo", "--data-dir", "duopass-data"]
    url = f"http://127.0.0.1:{session.port}"
    with _serving([*serve, "--port", str(session.port)], session.clone, session.env, url):
        yield session


def _make_run(session: Session, line: str, root: Path) -> str:
    """`make run PORT=...` in a second clone (its own duopass-data), until /healthz answers."""
    if "PORT" not in (REPO / "Makefile").read_text():
        pytest.fail("unreachable: the case table skips `make run` without PORT")
    other = Session(root, free_port())
    recipe = _recipe(other, f"make run PORT={other.port}", change=lambda c: c)
    url = f"http://127.0.0.1:{other.port}"
    with _serving(["bash", "-c", " && ".join(recipe)], other.clone, other.env, url):
        return httpx.get(f"{url}/healthz").text


def _handled(line: str) -> tuple[Case, str]:
    """The line's case, with `make run` skipped while the Makefile takes no port."""
    case = case_of(line)
    assert case is not None, f"a README line no case of tests/test_readme.py handles: {line!r}"
    if case.how == "make-run" and "PORT" not in (REPO / "Makefile").read_text():
        why = "the Makefile's `run` takes no PORT yet; this test's server runs its recipe"
        return Case(case.pattern, how="skip", why=why), line
    return case, line


def test_every_readme_command_line_has_a_case() -> None:
    lines = readme_lines(README.read_text())
    assert len(lines) >= 30
    for line in lines:
        _handled(line)


def test_no_command_hides_in_an_indented_block() -> None:
    """Shell examples go in ```sh blocks, where this test finds them."""
    fenced, hidden = False, []
    for raw in README.read_text().splitlines():
        if raw.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"    +(\.venv/bin/|duopass |make |curl |export )", raw):
            hidden.append(raw)
    assert hidden == []


@pytest.mark.slow
def test_the_readme_runs_as_printed(
    session: Session, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    not_as_printed = []
    for line in readme_lines(README.read_text()):
        case, _ = _handled(line)
        first = line.splitlines()[0]
        if case.how == "skip":
            not_as_printed.append(f"skipped: {first}\n    because {case.why}")
            continue
        stdin = case.stdin(session) if case.stdin else ""
        if case.how == "covered":
            assert case.reduce is not None
            commands = case.reduce(session, session.localised(line))
            elsewhere = [c for c in commands if tuple(shlex.split(c)[1:]) not in case.covered]
            assert elsewhere == [], f"{first}: commands no other test runs: {elsewhere}"
            shown = "\n    ".join(commands)
            not_as_printed.append(f"covered: {first}\n    as {case.why}:\n    {shown}")
            continue
        if case.how == "make-run":
            output = _make_run(session, line, tmp_path / "make-run")
        elif case.how == "smoke":
            assert case.reduce is not None
            commands = case.reduce(session, session.localised(line))
            output = "".join(session.bash(command, stdin=stdin) for command in commands)
            shown = "\n    ".join(commands)
            not_as_printed.append(f"smoke-run: {first}\n    as {case.why}:\n    {shown}")
        else:
            output = session.bash(session.localised(line), stdin=stdin)
        assert re.search(case.expect, output, re.MULTILINE), f"{first}\n{output[-3000:]}"
    report = "\n".join(not_as_printed)
    print(f"README lines not run as printed:\n{report}")
    record_property("readme_not_run_as_printed", report)
