"""Settings: the environment plus `announce.toml`, validated once into frozen values.

Every problem is collected, not just the first, so a broken file is fixed in one pass: each
message names the key and says what is expected. `${VAR}` in any string reads the
environment. Nothing here opens a network connection.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from workflow.errors import SettingsError

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_DATABASE_URL = "sqlite:///data/announce.db"

# type -> (required keys, optional keys). `name`, `type` and `default` are common to all.
DESTINATION_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "slack": (frozenset({"channel"}), frozenset()),
    "mastodon": (frozenset({"base_url", "access_token"}), frozenset({"visibility"})),
    "bluesky": (frozenset({"handle", "app_password"}), frozenset({"base_url"})),
    "x": (
        frozenset({"consumer_key", "consumer_secret", "access_token", "access_token_secret"}),
        frozenset({"base_url"}),
    ),
    "statuspage": (
        frozenset({"page_id", "api_key"}),
        frozenset({"component_ids", "component_status", "base_url"}),
    ),
    "discord": (frozenset({"webhook_url"}), frozenset({"username"})),
    "teams": (frozenset({"webhook_url"}), frozenset()),
    "webhook": (frozenset({"url", "secret"}), frozenset()),
    "log": (frozenset(), frozenset({"path"})),
}

# Option keys whose values are credentials: kept out of logs, errors and the audit log.
SECRET_KEYS = frozenset(
    {
        "access_token",
        "access_token_secret",
        "api_key",
        "app_password",
        "consumer_key",
        "consumer_secret",
        "secret",
        "webhook_url",  # Discord and Teams webhook URLs embed their token
        "url",  # a webhook URL may carry a token in its query
    }
)

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_CHANNEL = re.compile(r"^[CG][A-Z0-9]{2,}$")
_APPROVER = re.compile(r"^[UWS][A-Z0-9]{2,}$")


@dataclass(frozen=True)
class ApprovalSettings:
    channel: str
    approvers: tuple[str, ...] = ()  # user (U/W) and user-group (S) ids; empty = anyone but the author
    required_approvals: int = 1
    cooldown_seconds: int = 10
    expire_after_hours: float = 24.0


@dataclass(frozen=True)
class DestinationSettings:
    name: str
    type: str
    default: bool = False
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def secret_values(self) -> list[str]:
        return [str(v) for k, v in self.options.items() if k in SECRET_KEYS and v]


@dataclass(frozen=True)
class AuditSettings:
    readers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    bot_token: str
    signing_secret: str
    app_token: str | None
    slack_api_url: str
    database_url: str
    port: int
    audit_export_token: str | None
    config_path: Path
    approval: ApprovalSettings
    destinations: tuple[DestinationSettings, ...]
    checks: Mapping[str, Any]
    audit: AuditSettings

    @property
    def socket_mode(self) -> bool:
        return bool(self.app_token)

    def destination(self, name: str) -> DestinationSettings:
        for dest in self.destinations:
            if dest.name == name:
                return dest
        raise KeyError(name)

    def secret_values(self) -> list[str]:
        """Every configured secret, longest first, for redaction."""
        values = [self.bot_token, self.signing_secret, self.app_token or "", self.audit_export_token or ""]
        for dest in self.destinations:
            values.extend(dest.secret_values())
        return sorted({v for v in values if len(v) >= 6}, key=len, reverse=True)


def normalise_database_url(url: str) -> str:
    """Accept the `postgres://` URLs that hosting providers hand out; use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_settings(env: Mapping[str, str], *, require_slack: bool = True) -> Settings:
    """Read and validate everything; raise SettingsError listing every problem."""
    problems: list[str] = []
    config_path = Path(env.get("ANNOUNCE_CONFIG") or "announce.toml")
    raw = _read_toml(config_path, problems)
    raw = _interpolate(raw, env, problems, where="")

    bot_token = env.get("SLACK_BOT_TOKEN", "")
    signing_secret = env.get("SLACK_SIGNING_SECRET", "")
    app_token = env.get("SLACK_APP_TOKEN") or None
    if require_slack:
        if not bot_token.startswith("xoxb-"):
            problems.append("SLACK_BOT_TOKEN: required, the bot token from OAuth & Permissions (starts with xoxb-)")
        if app_token is None and not signing_secret:
            problems.append("SLACK_SIGNING_SECRET: required in HTTP mode, from Basic Information → App Credentials")
        if app_token is not None and not app_token.startswith("xapp-"):
            problems.append("SLACK_APP_TOKEN: an app-level token starts with xapp- (unset it to use HTTP mode)")

    port_text = env.get("PORT", "3000")
    port = 3000
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        problems.append(f"PORT: expected a port number 1-65535, got {port_text!r}")
    else:
        port = int(port_text)

    slack_api_url = env.get("SLACK_API_URL") or DEFAULT_SLACK_API_URL
    if not slack_api_url.startswith(("http://", "https://")):
        problems.append(f"SLACK_API_URL: expected an http(s) URL, got {slack_api_url!r}")
    if not slack_api_url.endswith("/"):
        slack_api_url += "/"

    approval = _approval(raw.get("approval"), problems)
    destinations = _destinations(raw.get("destination"), problems)
    audit = _audit(raw.get("audit"), problems)
    checks = raw.get("checks", {})
    if not isinstance(checks, dict):
        problems.append("checks: expected a table ([checks])")
        checks = {}
    unknown = sorted(set(raw) - {"approval", "destination", "audit", "checks"})
    for key in unknown:
        problems.append(f"{key}: unknown section; expected approval, destination, checks or audit")

    if problems:
        raise SettingsError(problems)
    assert approval is not None
    return Settings(
        bot_token=bot_token,
        signing_secret=signing_secret,
        app_token=app_token,
        slack_api_url=slack_api_url,
        database_url=normalise_database_url(env.get("DATABASE_URL") or DEFAULT_DATABASE_URL),
        port=port,
        audit_export_token=env.get("AUDIT_EXPORT_TOKEN") or None,
        config_path=config_path,
        approval=approval,
        destinations=destinations,
        checks=MappingProxyType(checks),
        audit=audit,
    )


def read_checks_table(env: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Only the [checks] table, for `python app.py checks` in a CI that has no secrets.

    No file means the default rules; the rest of the file is not validated here.
    """
    path = Path(env.get("ANNOUNCE_CONFIG") or "announce.toml")
    if not path.exists():
        return {}, []
    problems: list[str] = []
    raw = _read_toml(path, problems).get("checks", {})
    if not isinstance(raw, dict):
        return {}, [*problems, "checks: expected a table ([checks])"]
    return _interpolate(raw, env, problems, where="checks"), problems


def _read_toml(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        problems.append(
            f"ANNOUNCE_CONFIG: {path} does not exist; copy announce.example.toml to announce.toml "
            "or point ANNOUNCE_CONFIG at your file"
        )
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{path}: not valid TOML: {exc}")
    except OSError as exc:
        problems.append(f"{path}: cannot be read: {exc.strerror}")
    return {}


def _interpolate(value: Any, env: Mapping[str, str], problems: list[str], *, where: str) -> Any:
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                problems.append(f"{where or 'value'}: ${{{name}}} is not set in the environment")
                return ""
            return env[name]

        return _VAR.sub(lookup, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, env, problems, where=f"{where}.{k}" if where else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env, problems, where=f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _approval(raw: Any, problems: list[str]) -> ApprovalSettings | None:
    if not isinstance(raw, dict):
        problems.append('approval: required table [approval] with at least channel = "C…"')
        return None
    extra = sorted(set(raw) - {"channel", "approvers", "required_approvals", "cooldown_seconds", "expire_after_hours"})
    for key in extra:
        problems.append(f"approval.{key}: unknown key")
    channel = raw.get("channel")
    if not isinstance(channel, str) or not _CHANNEL.match(channel):
        problems.append(
            f"approval.channel: expected a Slack channel id such as C0123ABCD (not a #name), got {channel!r}"
        )
        channel = ""
    approvers = raw.get("approvers", [])
    if not isinstance(approvers, list) or not all(isinstance(a, str) and _APPROVER.match(a) for a in approvers):
        problems.append(
            f"approval.approvers: expected a list of user ids (U…/W…) and user-group ids (S…), got {approvers!r}"
        )
        approvers = []
    required = _int(raw, "required_approvals", 1, problems, minimum=1, maximum=10, where="approval")
    cooldown = _int(raw, "cooldown_seconds", 10, problems, minimum=0, maximum=3600, where="approval")
    expire = raw.get("expire_after_hours", 24)
    if isinstance(expire, bool) or not isinstance(expire, int | float) or expire <= 0:
        problems.append(f"approval.expire_after_hours: expected a positive number of hours, got {expire!r}")
        expire = 24
    users = [a for a in approvers if not a.startswith("S")]
    if approvers and len(users) == len(approvers) and required > len(users):
        problems.append(
            f"approval.required_approvals: {required} distinct approvers needed but only "
            f"{len(users)} listed in approval.approvers"
        )
    return ApprovalSettings(
        channel=channel,
        approvers=tuple(approvers),
        required_approvals=required,
        cooldown_seconds=cooldown,
        expire_after_hours=float(expire),
    )


def _int(
    raw: dict[str, Any], key: str, default: int, problems: list[str], *, minimum: int, maximum: int, where: str
) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        problems.append(f"{where}.{key}: expected a whole number from {minimum} to {maximum}, got {value!r}")
        return default
    return value


def _destinations(raw: Any, problems: list[str]) -> tuple[DestinationSettings, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append("destination: at least one [[destination]] table is required")
        return ()
    result: list[DestinationSettings] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        where = f"destination[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected a table")
            continue
        name = item.get("name")
        if isinstance(name, str) and _NAME.match(name):
            where = f"destination {name!r}"
            if name in seen:
                problems.append(f"{where}: the name is used twice; names must be unique")
            seen.add(name)
        else:
            problems.append(f"{where}.name: expected lower-case letters, digits, - or _ (max 40), got {name!r}")
            name = f"destination-{index}"
        kind = item.get("type")
        if kind not in DESTINATION_KEYS:
            problems.append(f"{where}.type: expected one of {', '.join(DESTINATION_KEYS)}, got {kind!r}")
            continue
        required, optional = DESTINATION_KEYS[kind]
        options = {k: v for k, v in item.items() if k not in {"name", "type", "default"}}
        for key in sorted(required - set(options)):
            problems.append(f"{where}.{key}: required for type {kind!r}")
        for key in sorted(set(options) - required - optional):
            problems.append(
                f"{where}.{key}: unknown key for type {kind!r}; expected {', '.join(sorted(required | optional))}"
            )
        for key, value in options.items():
            if key in required and value in ("", None):
                problems.append(f"{where}.{key}: must not be empty")
        _check_destination(kind, options, problems, where=where)
        default = item.get("default", False)
        if not isinstance(default, bool):
            problems.append(f"{where}.default: expected true or false, got {default!r}")
            default = False
        result.append(DestinationSettings(name=name, type=kind, default=default, options=MappingProxyType(options)))
    return tuple(result)


def _check_destination(kind: str, options: dict[str, Any], problems: list[str], *, where: str) -> None:
    for key in ("base_url", "url", "webhook_url"):
        value = options.get(key)
        if value and (not isinstance(value, str) or not value.startswith(("http://", "https://"))):
            problems.append(f"{where}.{key}: expected an http(s) URL")
    if kind == "slack":
        channel = options.get("channel")
        if channel and (not isinstance(channel, str) or not _CHANNEL.match(channel)):
            problems.append(f"{where}.channel: expected a Slack channel id such as C0123ABCD, got {channel!r}")
    if kind == "webhook":
        secret = options.get("secret")
        if secret and (not isinstance(secret, str) or not secret.startswith("whsec_")):
            problems.append(f"{where}.secret: expected a Standard Webhooks secret starting with whsec_")
    if kind == "mastodon":
        visibility = options.get("visibility", "public")
        if visibility not in {"public", "unlisted", "private", "direct"}:
            problems.append(f"{where}.visibility: expected public, unlisted, private or direct, got {visibility!r}")
    if kind == "statuspage":
        ids = options.get("component_ids", [])
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            problems.append(f"{where}.component_ids: expected a list of component id strings")


def _audit(raw: Any, problems: list[str]) -> AuditSettings:
    if raw is None:
        return AuditSettings()
    if not isinstance(raw, dict):
        problems.append("audit: expected a table [audit]")
        return AuditSettings()
    readers = raw.get("readers", [])
    if not isinstance(readers, list) or not all(isinstance(r, str) and _APPROVER.match(r) for r in readers):
        problems.append(f"audit.readers: expected a list of user and user-group ids, got {readers!r}")
        readers = []
    for key in sorted(set(raw) - {"readers"}):
        problems.append(f"audit.{key}: unknown key")
    return AuditSettings(readers=tuple(readers))


def fingerprint(destination: DestinationSettings) -> str:
    """A hash of a destination's options: changes when its configuration changes."""
    blob = json.dumps({"type": destination.type, **dict(destination.options)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()
