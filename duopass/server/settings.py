"""Server settings: one `BaseSettings` class, from the environment (`DUOPASS_*`) or the CLI.

Secrets are never defaults: the root, ledger and wrapping keys and the digest secret live as files
in `data_dir` (mode 0600), created by `duopass serve --init` or `--demo` and refused if absent;
the root and ledger keys may live in an HSM instead (`hsm_*`, server.hsm).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from duopass.ledger import LedgerError
from duopass.ledger.cosignature import CosignerKey
from duopass.protocol.limits import (
    CLOCK_SKEW_DEFAULT_S,
    FRESHNESS_DEFAULT_S,
    ISS_CHARS_MAX,
    LATE_WINDOW_DEFAULT_S,
)
from duopass.protocol.trust import Policy
from duopass.server.hsm import LABEL_CHARS_MAX, TOKEN_LABEL_CHARS_MAX

_KEY_LABEL = r"^[!-*,-~]+$"
"""A key label on an HSM's token: printable ASCII without spaces or `+` (a note key name)."""


class TestOnlySettingRefused(RuntimeError):
    """A setting only a server started for tests takes was given to another one."""

    __test__ = False  # not a test class, whatever pytest makes of its name


class Settings(BaseSettings):
    """Everything the server is configured with; see `duopass serve --help`."""

    # A refused value is not repeated in its error: a URL may hold a password.
    model_config = SettingsConfigDict(env_prefix="DUOPASS_", frozen=True, hide_input_in_errors=True)

    db_url: str = "sqlite:///duopass-data/duopass.db"
    data_dir: Path = Path("duopass-data")
    issuer: str = Field(
        default="demo-univ", min_length=1, max_length=ISS_CHARS_MAX, pattern=r"^[!-~]+$"
    )
    timezone: str = "Asia/Shanghai"
    """Signing keys rotate, and the settlement day turns, at midnight here."""
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    bundle_max_age_s: int = Field(default=86_400, ge=60)
    credential_lifetime_s: int = Field(default=86_400, ge=60, le=86_400)
    offline_uses: int = Field(default=10, ge=1, le=1000)
    offline_txmax: int = Field(default=3_000, ge=1)
    """Largest offline payment a credential allows, in minor units (30.00 by default)."""
    refresh_max_per_day: int = Field(default=4, ge=1)
    refresh_reserve: int = Field(default=2, ge=0)
    late_window_s: int = Field(default=LATE_WINDOW_DEFAULT_S, ge=3600)
    """§5.4; terminals learn it from the trust bundle (revision 1.1)."""
    freshness_s: int = Field(default=FRESHNESS_DEFAULT_S, ge=1, le=3600)
    clock_skew_s: int = Field(default=CLOCK_SKEW_DEFAULT_S, ge=0, le=3600)
    key_publish_ahead_days: int = Field(default=7, ge=1, le=30)
    static_tickets: bool = False
    http_parser: Literal["httptools", "h11"] = "httptools"
    """What parses HTTP/1.1 (api.deadlines): httptools (llhttp, in C), or h11 (pure Python, some
    0.3 ms of CPU a request more), each with the same deadlines and limits."""
    header_timeout_s: float = Field(default=5.0, gt=0, le=300)
    """A request's headers arrive within this of its first byte, or the connection is closed:
    ours fit in one TCP segment, and 5 s covers two lost and resent (server.deadlines)."""
    body_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    """A request's body arrives within this of its headers: the largest (a 1.5 MiB journal)
    needs 26 kB/s; every other body is at most 64 KiB."""
    test_clock: bool = False
    """Run on a clock tests move (`POST /v1/test/clock`): refused unless the server was
    started for tests (`duopass serve --testing`)."""
    test_cheap_password_hashing: bool = False
    """Hash passwords with Argon2id at its cheapest (one pass over 8 KiB), so a test suite's
    thousands of sign-ins cost microseconds each: such hashes are cheap to guess, so it is
    refused unless the server was started for tests (`create_app(testing=True)`)."""
    test_axe: bool = False
    """Serve axe-core (`/static/web/vendor/axe-core-*`) and load it in every page, for the
    browser tests' accessibility check: refused unless the server was started for tests."""
    recent_auth_s: int = Field(default=600, ge=60, le=3600)
    """A password sign-in this recent counts as a step-up for a loss report, ending other
    sessions or changing the second factor (RFC 9470 `max_age`)."""
    smtp_host: str | None = None
    """The mail server that takes step-up codes to holders; none: no codes by e-mail."""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = Field(default="duopass@localhost", min_length=3, max_length=254)
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    """From the environment only (`DUOPASS_SMTP_PASSWORD`): never a flag, never logged."""
    smtp_timeout_s: float = Field(default=10.0, gt=0, le=60)
    """Each step of talking to the mail server (connect, every reply)."""
    step_up_code_ttl_s: int = Field(default=600, ge=60, le=3600)
    """How long a step-up code sent by e-mail stays good."""
    webauthn_rp_id: str | None = Field(
        default=None, max_length=253, pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$"
    )
    """The passkeys' relying party id: the wallet's host name (`wallet.example.edu`); None:
    the host name each request names. WebAuthn refuses an IP address (docs/deploy.md)."""
    webauthn_origins: tuple[str, ...] = ()
    """Origins a passkey ceremony may come from (`https://wallet.example.edu`); none: the
    request's own (its scheme, host and port)."""
    oauth_issuer: str | None = Field(default=None, max_length=200, pattern=r"^https?://[!-~]+$")
    """The OAuth authorization server's issuer (`iss` of partners' access tokens, RFC 8414's
    `issuer`): this server's public base URL, `https://api.example.edu`; None: the base URL
    of each request (its scheme, host and port). Tokens are for audience `<issuer>/v1`."""
    policy_file: Path | None = None
    """The decision policy file (docs/policy.md); None: the one in the package
    (`duopass/policy/reissue.toml`). Read at start, and at `POST /v1/admin/policy/reload`."""
    db_connections: int = Field(default=40, ge=4, le=1000)
    """PostgreSQL connections this server keeps at most, all its processes together (each of
    `duopass serve --workers N` pools a share, at least 8): within PostgreSQL's default 100
    `max_connections` with room for a second server, audits and psql."""
    risk_decision_retention_s: int = Field(default=30 * 86_400, ge=86_400, le=400 * 86_400)
    """How long the risk engine's decision records are kept (maintenance deletes older ones)."""
    signature_worker_deadline_s: float = Field(default=5.0, gt=0, le=60)
    """How long a journal batch waits for its signature worker (services.journals.verifier) to
    take a request or answer one: past it the worker is killed (the next batch starts another)
    and the batch's signatures not yet answered are verified in the server's process. A healthy
    worker answers a request of 50 in a few milliseconds."""
    throttle_exempt_networks: tuple[str, ...] = ()
    """Networks (CIDR) not throttled as one, such as a campus behind one NAT: their sign-ins
    are still throttled per account. Matched against the client's address: the forwarded one
    behind a trusted proxy."""
    trusted_proxies: tuple[str, ...] = ()
    """Networks (CIDR) of the reverse proxies in front of the server: a request from one of them
    is the client's that `X-Forwarded-For` names (api.forwarded). None by default: every
    request is its TCP peer's, whatever its headers say."""

    anchor_tsa_url: str | None = Field(default=None, max_length=2048)
    """An RFC 3161 Time-Stamping Authority (`http(s)://...`): each new signed checkpoint is
    timestamped there in the background (server.anchoring, docs/anchors.md); none: no timestamps."""
    anchor_witnesses: tuple[str, ...] = ()
    """C2SP tlog-witnesses, each `<base URL> <witness vkey>`: each new signed checkpoint is sent
    to their `add-checkpoint` in the background and their cosignature kept once it verifies."""
    anchor_interval_s: float = Field(default=30.0, ge=0.05, le=3600)
    """How often the anchoring thread looks for a checkpoint not yet anchored."""

    webhook_delivery: bool = True
    """Whether this process sends webhooks (`partners.delivery`); off, what events queue waits
    for a process that does (tests drive `deliver_once` themselves)."""

    risk_engine: bool = True
    """Whether the risk engine counts and judges (features recorded, guards acting, decision
    records written); off only to measure what it costs (`bench/risk.py`: `DUOPASS_RISK_ENGINE=0`):
    the throttles and the evidence rules stay on either way."""
    risk_store: Literal["database", "redis"] = "database"
    """Where the risk features' counts live: the database (the reference: counted in each
    request's transaction), or the Redis at `redis_url`, for a traffic the database's tables
    cannot take (not atomic with the transaction: docs/server.md "Risk features");
    `duopass serve --redis-url` chooses Redis."""
    redis_url: str | None = Field(default=None, max_length=2048)
    """`redis://HOST:PORT/DB`, `rediss://` (TLS) or `unix:///PATH?db=N`: with no password in it
    (that is `redis_password`), so it may be a flag."""
    redis_password: SecretStr | None = None
    """From the environment only (`DUOPASS_REDIS_PASSWORD`): never a flag, never logged."""
    redis_prefix: str = Field(default="duopass:", min_length=1, max_length=64, pattern=r"^[!-~]+$")
    """What this deployment's Redis keys start with: deployments with their own share a Redis."""
    redis_timeout_s: float = Field(default=2.0, gt=0, le=60)
    """Each connection to Redis and each answer from it."""

    oidc_issuer: str | None = Field(default=None, max_length=512)
    """The university's OpenID Connect provider (its issuer URL, `https://idp.example.edu`):
    discovered at `/.well-known/openid-configuration`; None: no sign-in through it."""
    oidc_client_id: str | None = Field(default=None, max_length=256)
    oidc_client_secret: SecretStr | None = None
    """From the environment only (`DUOPASS_OIDC_CLIENT_SECRET`), or `oidc_client_secret_file`:
    never a flag, never logged."""
    oidc_client_secret_file: Path | None = None
    oidc_scopes: tuple[str, ...] = ("openid", "profile")
    oidc_holder_claim: str = Field(default="preferred_username", min_length=1, max_length=64)
    """The ID token's claim that names a holder; `oidc_holder_field` says what it matches."""
    oidc_holder_field: Literal["login", "number"] = "login"
    """The holder column the claim matches: the login, or the student/staff card number."""
    oidc_holders: bool = True
    """Whether holders may sign in through the provider (`/v1/session/oidc/start`)."""
    oidc_staff_claim: str = Field(default="preferred_username", min_length=1, max_length=64)
    """The claim that names a staff member (matched against the staff login)."""
    oidc_staff_roles: tuple[Literal["operator", "admin"], ...] = ()
    """The staff roles that may sign in to the console through the provider; none: staff sign
    in with their password alone. An OIDC sign-in never creates anybody."""
    oidc_public_url: str | None = Field(default=None, max_length=512)
    """This server's address as the browser sees it (`https://duopass.example.edu`), where the
    provider sends it back; None: the request's own scheme and host."""
    oidc_timeout_s: float = Field(default=5.0, gt=0, le=60)
    """Each request to the provider (discovery, keys, the token exchange)."""

    hsm_module: Path | None = None
    """The PKCS#11 module (`/usr/lib/softhsm/libsofthsm2.so`) of the HSM that holds the root
    and/or ledger key (server.hsm); None: both are files in `data_dir`."""
    hsm_token: str | None = Field(default=None, min_length=1, max_length=TOKEN_LABEL_CHARS_MAX)
    """The label of the token that holds them."""
    hsm_pin: SecretStr | None = None
    """The token's user PIN, from the environment only (`DUOPASS_HSM_PIN`), or `hsm_pin_file`:
    never a flag, never logged, never in an error."""
    hsm_pin_file: Path | None = None
    hsm_root_key: str | None = Field(default=None, max_length=LABEL_CHARS_MAX, pattern=_KEY_LABEL)
    """The root key's label on the token (`duopass keys hsm-init` makes `<issuer>/root`); None:
    the root key is `root.jwk`."""
    hsm_ledger_key: str | None = Field(default=None, max_length=LABEL_CHARS_MAX, pattern=_KEY_LABEL)
    """The ledger key's label on the token, which is also its signed-note key name, the log's
    origin (`<issuer>/ledger`); None: the ledger key is `ledger.key`."""

    @model_validator(mode="after")
    def _hsm(self) -> Settings:
        keys = self.hsm_root_key is not None or self.hsm_ledger_key is not None
        if keys and (self.hsm_module is None or self.hsm_token is None):
            raise ValueError("an HSM key label needs hsm_module and hsm_token")
        if self.hsm_module is not None and not keys:
            raise ValueError("hsm_module needs hsm_root_key or hsm_ledger_key")
        if keys and self.hsm_pin is None and self.hsm_pin_file is None:
            raise ValueError("an HSM key needs its PIN: DUOPASS_HSM_PIN or hsm_pin_file")
        return self

    @field_validator("oidc_issuer", "oidc_public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        url = urlsplit(value)
        if url.scheme not in {"https", "http"} or not url.hostname or url.query or url.username:
            raise ValueError("an http(s) URL with no query and no user")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _oidc_client(self) -> Settings:
        if self.oidc_issuer is not None and self.oidc_client_id is None:
            raise ValueError("oidc_issuer needs oidc_client_id")
        if self.oidc_issuer is not None and "openid" not in self.oidc_scopes:
            raise ValueError("oidc_scopes must include openid")
        return self

    @property
    def oidc_secret(self) -> str | None:
        """The client secret: the environment's, else the file's (first line), else None."""
        if self.oidc_client_secret is not None:
            return self.oidc_client_secret.get_secret_value()
        if self.oidc_client_secret_file is not None:
            return self.oidc_client_secret_file.read_text().strip() or None
        return None

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        url = urlsplit(value)
        if url.scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("a redis://, rediss:// or unix:// URL")
        if url.password is not None:  # the message must not repeat it: no input in it
            raise ValueError("no password in the URL: set DUOPASS_REDIS_PASSWORD")
        return value

    @field_validator("anchor_witnesses")
    @classmethod
    def _witnesses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            url, _, vkey = entry.strip().partition(" ")
            if not url.startswith(("http://", "https://")) or urlsplit(url).username:
                raise ValueError("a witness is '<http(s) URL> <vkey>', no user in the URL")
            try:
                CosignerKey.parse(vkey)
            except LedgerError as exc:
                raise ValueError(f"a witness's vkey: {exc.reason}") from exc
        return value

    @field_validator("anchor_tsa_url")
    @classmethod
    def _tsa(cls, value: str | None) -> str | None:
        if value is not None and (
            not value.startswith(("http://", "https://")) or urlsplit(value).username
        ):
            raise ValueError("a TSA is an http(s) URL, no user in it (logged when it fails)")
        return value

    @model_validator(mode="after")
    def _redis_named(self) -> Settings:
        if self.risk_store == "redis" and self.redis_url is None:
            raise ValueError("risk_store redis needs redis_url (--redis-url)")
        return self

    @field_validator("webauthn_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            url = urlsplit(origin)
            bare = not (url.path or url.query or url.fragment or url.username)
            if url.scheme not in {"https", "http"} or not url.hostname or not bare:
                raise ValueError(f"not an origin (scheme://host[:port]): {origin!r}")
        return value

    @field_validator("throttle_exempt_networks", "trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"not a network: {network!r}") from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def policy(self) -> Policy:
        """The issuer's policy (§3, and the late window of §5.4): what bundles carry to
        terminals and sync answers to wallets, and what the server verifies and settles with.
        Made once per set of values (journals read it for every entry); cached on the values
        rather than on the object, so a `model_copy(update=...)` never keeps a stale one."""
        return _policy(self.freshness_s, self.clock_skew_s, self.static_tickets, self.late_window_s)


@lru_cache(maxsize=16)
def _policy(
    freshness_s: int, clock_skew_s: int, static_tickets: bool, late_window_s: int
) -> Policy:
    return Policy(
        freshness_s=freshness_s,
        clock_skew_s=clock_skew_s,
        static_tickets=static_tickets,
        late_window_s=late_window_s,
    )
