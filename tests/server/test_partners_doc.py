"""docs/partners.md's OAuth walk-through (and its holders-and-webhooks sequel) runs as printed:
its ```bash blocks, in order, through bash with `set -e` in a scratch directory, against a real
server on 127.0.0.1 (the port and the admin's password the only text replaced); then what they
printed and what the server holds say each step did what the page says."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.server.harness import ADMIN_PASSWORD, SQLITE_ONLY

DOC = Path(__file__).resolve().parents[2] / "docs" / "partners.md"


def _script(url: str) -> str:
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 7
    text = "\n".join(blocks).replace("http://127.0.0.1:8000", url)
    assert '"password": "…"' in text
    text = text.replace('"password": "…"', f'"password": "{ADMIN_PASSWORD}"')
    return "set -euo pipefail\n" + text + "\necho\n"


@SQLITE_ONLY
def test_the_oauth_curl_commands_of_the_partners_page_work(server, tmp_path):
    ran = subprocess.run(
        ["bash", "-c", _script(server.url)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stderr
    out = ran.stdout
    client = json.loads((tmp_path / "client.json").read_text())
    token = json.loads((tmp_path / "token.json").read_text())
    assert client["client_secret"].startswith("dpsec_")
    assert (token["token_type"], token["expires_in"]) == ("Bearer", 300)
    assert token["scope"] == "checkin:redeem tickets:issue tickets:read"
    assert f'"issuer":"{server.url}"' in out and '"alg":"ES256"' in out
    codes = re.findall(r'"code":"([a-z_]+)"', out)
    assert codes == ["not_found", "insufficient_scope", "unauthenticated", "not_found"]
    assert out.count('"error":"invalid_client"') == 1
    assert out.count('"client_secret":"dpsec_') == 2  # created, rotated
    order = json.loads((tmp_path / "order.json").read_text())
    assert (order["paid_by"], order["amount"], order["state"]) == ("partner", 3000, "paid")
    assert [t["state"] for t in order["ticket_states"]] == ["valid", "valid"]
    assert re.search(r"[}\n]200\n", out)  # the retry: the same order
    owed = {"sold": 3000, "cancelled": 0, "owed_total": 3000, "net": 3000}
    partners = json.loads(next(line for line in out.splitlines() if line.startswith('[{"partner"')))
    assert partners == [{"partner": client["client_id"], "currency": "CNY"} | owed]
    admin = server.admin()
    listed = server.http.get("/v1/admin/partners", headers=admin.auth).json()["items"]
    gig = json.loads((tmp_path / "gig.json").read_text())
    assert [(c["client_id"], c["state"]) for c in listed] == [
        (client["client_id"], "revoked"),
        (gig["client_id"], "active"),
    ]
    hook = json.loads((tmp_path / "gig-hook.json").read_text())  # the platform's own endpoint
    assert (hook["partner"], hook["event_types"]) == (
        gig["id"],
        ["ticket.checked_in", "ticket.issued"],
    )
    assert out.count('"secret":"whsec_') == 2  # the endpoint created, its secret rotated
    everyone = server.http.get("/v1/admin/webhooks", headers=admin.auth).json()["items"]
    assert [(e["id"], e["partner"]) for e in everyone] == [(hook["id"], gig["id"])]
