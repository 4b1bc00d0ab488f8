"""docs/partners.md runs as printed: its curl commands (every ```sh block, in order, through
bash with `set -e`) against a real server on 127.0.0.1, the port and the admin's password being
the only text replaced; then the server holds what they did (an endpoint created, rotated,
disabled and enabled again). The example's message 42 does not exist here: its retry is
answered `not_found`, and that is checked too."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.server.harness import ADMIN_PASSWORD, SQLITE_ONLY

DOC = Path(__file__).resolve().parents[2] / "docs" / "partners.md"


def _script(url: str) -> str:
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 3
    text = "\n".join(blocks).replace("http://127.0.0.1:8000", url)
    assert '"password": "…"' in text
    return "set -euo pipefail\n" + text.replace(
        '"password": "…"', f'"password": "{ADMIN_PASSWORD}"'
    )


@SQLITE_ONLY
def test_the_curl_commands_of_the_partners_page_work(server):
    ran = subprocess.run(
        ["bash", "-c", _script(server.url)], capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.count('"secret":"whsec_') == 2  # created, rotated
    assert '"code":"not_found"' in ran.stdout  # the example's message 42
    admin = server.admin()
    listed = server.http.get("/v1/admin/webhooks", headers=admin.auth).json()["items"]
    assert len(listed) == 1
    endpoint = listed[0]
    assert endpoint["url"] == "https://tickets.example.com/hooks/duopass"
    assert endpoint["event_types"] == ["ticket.checked_in", "ticket.issued"]
    assert endpoint["state"] == "enabled" and endpoint["previous_secret_until"] is not None
