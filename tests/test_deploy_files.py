"""The container deployment's files pass their linters, and each linter is shown to refuse a
broken copy (so a pass means something): hadolint on the Containerfile, yamllint on
compose.yaml, compose.yaml against the compose specification's JSON schema. Then what no linter
knows: the image runs as a user, checks its health on the server's route and installs the
locked versions; the compose file names only settings, flags and secrets the server has, and no
password; the entrypoint turns password files into the variables the server reads."""

from __future__ import annotations

import os
import re
import subprocess

import typer

from duopass.cli.app import app as cli
from duopass.server.settings import Settings
from tests.deploy import (
    COMPOSE,
    CONTAINERFILE,
    ENTRYPOINT,
    ROOT,
    YAMLLINT_CONFIG,
    compose,
    compose_schema_check,
    entrypoint_names,
    hadolint,
    run,
    yamllint,
)


def test_hadolint_passes_the_containerfile():
    linted = hadolint(CONTAINERFILE)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert linted.stdout == ""


def test_hadolint_refuses_an_untagged_base_and_a_root_user(tmp_path):
    broken = CONTAINERFILE.read_text().replace("FROM python:3.11-slim-bookworm\n", "FROM python\n")
    broken = broken.replace("USER 10001:10001\n", "USER root\n")
    assert broken.count("FROM python\n") == 1 and "USER root" in broken
    (tmp_path / "Containerfile").write_text(broken)
    linted = hadolint(tmp_path / "Containerfile")
    assert linted.returncode == 1
    assert "DL3006" in linted.stdout  # an image without a tag
    assert "DL3002" in linted.stdout  # the last USER is root


def test_yamllint_passes_the_compose_file_and_its_own_config():
    linted = yamllint(COMPOSE, YAMLLINT_CONFIG)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert linted.stdout == ""


def test_yamllint_refuses_a_duplicated_key(tmp_path):
    text = COMPOSE.read_text().replace("    init: true\n", "    init: true\n    init: false\n")
    (tmp_path / "compose.yaml").write_text(text)
    linted = yamllint(tmp_path / "compose.yaml")
    assert linted.returncode == 1
    assert "(key-duplicates)" in linted.stdout


def test_the_compose_file_matches_the_compose_specification():
    checked = compose_schema_check(COMPOSE)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_schema_refuses_what_compose_does_not_know(tmp_path):
    text = COMPOSE.read_text().replace("    init: true\n", "    init: true\n    restarts: 3\n")
    text = text.replace("      interval: 10s\n", "      interval: [10]\n", 1)
    (tmp_path / "compose.yaml").write_text(text)
    checked = compose_schema_check(tmp_path / "compose.yaml")
    assert checked.returncode == 1
    assert "restarts" in checked.stdout
    assert "interval" in checked.stdout


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Containerfile, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    lines = (line.strip() for line in joined.splitlines())
    return [
        (word.upper(), rest)
        for word, _, rest in (line.partition(" ") for line in lines)
        if word and not word.startswith("#")
    ]


def test_the_image_runs_as_a_user_checks_health_and_installs_the_lock():
    steps = _instructions(CONTAINERFILE.read_text())
    users = [rest for word, rest in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM") :]
    [health] = [rest for word, rest in final if word == "HEALTHCHECK"]
    assert "http://127.0.0.1:8000/healthz" in health
    assert ("EXPOSE", "8000") in final
    build = steps[: steps.index(final[0])]
    assert any(w == "COPY" and r.startswith("requirements.lock ") for w, r in build)
    [env] = [rest for word, rest in build if word == "ENV" and "PIP_CONSTRAINT" in rest]
    assert "PIP_CONSTRAINT=/src/requirements.lock" in env
    assert not [rest for word, rest in steps if word in {"ARG", "ENV"} and "PASSWORD" in rest]


def test_the_server_command_uses_flags_serve_has():
    command = typer.main.get_command(cli)
    assert isinstance(command, typer.core.TyperGroup)
    serve = command.commands["serve"]
    flags = {option for param in serve.params for option in param.opts}
    given = compose()["services"]["server"]["command"]
    assert given[:2] == ["duopass", "serve"]
    unknown = [word for word in given if word.startswith("--") and word not in flags]
    assert unknown == []


def test_the_compose_environment_names_settings_or_password_files():
    fields = set(Settings.model_fields)
    from_files = set(entrypoint_names())
    for service in compose()["services"].values():
        for name in service.get("environment", {}):
            if "PASSWORD" in name:
                assert name.endswith("_FILE"), f"{name}: a password goes in a secret's file"
    environment = compose()["services"]["server"]["environment"]
    for name in environment:
        base = name.removesuffix("_FILE")
        if name.endswith("_FILE"):
            assert base in from_files, f"{name}: deploy/entrypoint.sh does not read it"
        if base.startswith("DUOPASS_"):
            field = base.removeprefix("DUOPASS_").lower()
            assert field in fields, f"{name}: no such setting"
            # serve passes these from its flags, so their variables would never be read
            assert field not in {"db_url", "data_dir", "issuer"}, name
        else:
            assert base == "PGPASSWORD", f"{name}: not a variable anything reads"


def test_secrets_come_from_ignored_files():
    secrets = compose()["secrets"]
    assert secrets
    for secret in secrets.values():
        assert set(secret) == {"file"} and secret["file"].startswith("./secrets/")
    ignored = run(["git", "check-ignore", "-q", "secrets/postgres_password"], cwd=ROOT)
    assert ignored.returncode == 0, "secrets/ must be in .gitignore"


def _entrypoint(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DUOPASS_"))}
    return run([str(ENTRYPOINT), *command], env=clean | env)


def test_the_entrypoint_turns_password_files_into_variables(tmp_path):
    (tmp_path / "pg").write_text("pg secret\n")
    (tmp_path / "redis").write_text("redis-secret")
    files = {"PGPASSWORD_FILE": str(tmp_path / "pg")}
    files["DUOPASS_REDIS_PASSWORD_FILE"] = str(tmp_path / "redis")
    done = _entrypoint(files, "env")
    assert done.returncode == 0, done.stderr
    seen = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert seen["PGPASSWORD"] == "pg secret"
    assert seen["DUOPASS_REDIS_PASSWORD"] == "redis-secret"
    assert not {"PGPASSWORD_FILE", "DUOPASS_REDIS_PASSWORD_FILE", "file", "value"} & set(seen)
    assert "DUOPASS_SMTP_PASSWORD" not in seen


def test_the_entrypoint_refuses_a_missing_file_or_two_sources(tmp_path):
    (tmp_path / "pg").write_text("pg-secret\n")
    missing = _entrypoint({"PGPASSWORD_FILE": str(tmp_path / "absent")}, "true")
    assert missing.returncode == 2
    assert missing.stderr == f"duopass-entrypoint: PGPASSWORD_FILE: cannot read {tmp_path}/absent\n"
    both = {"PGPASSWORD_FILE": str(tmp_path / "pg"), "PGPASSWORD": "other"}
    twice = _entrypoint(both, "true")
    assert twice.returncode == 2
    assert "both PGPASSWORD and PGPASSWORD_FILE" in twice.stderr
    assert "pg-secret" not in twice.stderr
    (tmp_path / "empty").write_text("\n")
    empty = _entrypoint({"DUOPASS_SMTP_PASSWORD_FILE": str(tmp_path / "empty")}, "true")
    assert empty.returncode == 2
    assert "is empty" in empty.stderr


def _container_section() -> str:
    text = (ROOT / "docs" / "deploy.md").read_text()
    start = text.index("\n## In containers\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_docs_name_what_compose_yaml_has():
    section = _container_section()
    variables = set(re.findall(r"\$\{([A-Z_]+)", COMPOSE.read_text()))
    documented = set(re.findall(r"`(DUOPASS_[A-Z_]+)`", section))
    assert variables <= documented, variables - documented
    services = set(compose()["services"])
    commands = re.findall(r"^docker compose .*$", section, flags=re.MULTILINE)
    assert len(commands) >= 8
    server = compose()["services"]["server"]["command"]
    for line in commands:
        words = line.split()
        verb = words[2]
        if verb not in {"exec", "run", "logs", "start", "stop"}:
            continue
        at = next(i for i, word in enumerate(words[3:], 3) if not word.startswith("-"))
        assert words[at] in services, line
        if words[at + 1 : at + 2] == ["duopass"]:  # beside the server: its --db and --data-dir
            for flag in ("--db", "--data-dir"):
                assert words[words.index(flag) + 1] == server[server.index(flag) + 1], line
