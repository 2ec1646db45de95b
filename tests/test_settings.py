"""Settings: every problem reported at once, each naming its key; ${VAR} from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflow.errors import SettingsError
from workflow.settings import load_settings, normalise_database_url

GOOD = """
[approval]
channel = "C0APPROVALS"
approvers = ["U0AAA", "S0BBB"]
required_approvals = 1
cooldown_seconds = 10

[[destination]]
name = "status-channel"
type = "slack"
channel = "C0STATUS"
default = true

[[destination]]
name = "partner-webhook"
type = "webhook"
url = "https://hooks.example.com/announce"
secret = "${WEBHOOK_SECRET}"

[audit]
readers = ["S0AUDITORS"]
"""


def env_for(path: Path, **extra: str) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "secret",
        "ANNOUNCE_CONFIG": str(path),
        "WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        **extra,
    }


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "announce.toml"
    path.write_text(text)
    return path


def test_a_good_file_loads_with_interpolation_and_defaults(tmp_path: Path) -> None:
    settings = load_settings(env_for(write(tmp_path, GOOD)))
    assert settings.approval.channel == "C0APPROVALS"
    assert settings.approval.approvers == ("U0AAA", "S0BBB")
    assert settings.approval.expire_after_hours == 24
    webhook = settings.destination("partner-webhook")
    assert webhook.options["secret"] == "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    assert settings.destination("status-channel").default is True
    assert settings.database_url == "sqlite:///data/announce.db"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.port == 3000
    assert not settings.socket_mode
    assert "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" in settings.secret_values()


def test_every_problem_is_reported_with_its_key(tmp_path: Path) -> None:
    bad = """
[approval]
channel = "#approvals"
approvers = ["bob"]
required_approvals = 0
cooldown_seconds = "ten"

[[destination]]
name = "Status Channel"
type = "slack"

[[destination]]
name = "hook"
type = "webhook"
url = "ftp://x"
secret = "${MISSING_SECRET}"
colour = "blue"

[[destination]]
name = "hook"
type = "pager"
"""
    with pytest.raises(SettingsError) as caught:
        load_settings({"ANNOUNCE_CONFIG": str(write(tmp_path, bad)), "PORT": "http"})
    problems = "\n".join(caught.value.problems)
    for expected in [
        "SLACK_BOT_TOKEN: required",
        "SLACK_SIGNING_SECRET: required",
        "PORT: expected a port number",
        "approval.channel: expected a Slack channel id",
        "approval.approvers: expected a list of user ids",
        "approval.required_approvals: expected a whole number from 1 to 10, got 0",
        "approval.cooldown_seconds: expected a whole number",
        "destination[0].name: expected lower-case letters",
        "destination[0].channel: required for type 'slack'",
        "destination 'hook'.url: expected an http(s) URL",
        "destination[1].secret: ${MISSING_SECRET} is not set in the environment",
        "destination 'hook'.colour: unknown key for type 'webhook'",
        "destination 'hook': the name is used twice",
        "destination 'hook'.type: expected one of slack, mastodon",
    ]:
        assert expected in problems, f"missing {expected!r} in:\n{problems}"


def test_missing_file_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env_for(tmp_path / "nope.toml"))
    assert any("announce.example.toml" in p for p in caught.value.problems)


def test_broken_toml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env_for(write(tmp_path, "[approval\nchannel = 1")))
    assert "not valid TOML" in caught.value.problems[0]
    assert "line 1" in caught.value.problems[0]


def test_quorum_larger_than_the_listed_approvers_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace('approvers = ["U0AAA", "S0BBB"]', 'approvers = ["U0AAA"]').replace(
        "required_approvals = 1", "required_approvals = 2"
    )
    with pytest.raises(SettingsError, match="2 distinct approvers needed but only 1 listed"):
        load_settings(env_for(write(tmp_path, text)))


def test_socket_mode_needs_no_signing_secret(tmp_path: Path) -> None:
    env = env_for(write(tmp_path, GOOD), SLACK_APP_TOKEN="xapp-1-abc")
    del env["SLACK_SIGNING_SECRET"]
    assert load_settings(env).socket_mode


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///data/announce.db", "sqlite:///data/announce.db"),
    ],
)
def test_database_urls_from_hosting_providers_are_accepted(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected


def test_example_config_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parent.parent / "announce.example.toml"
    env = {
        "SLACK_BOT_TOKEN": "xoxb-x",
        "SLACK_SIGNING_SECRET": "s",
        "ANNOUNCE_CONFIG": str(example),
        "WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "MASTODON_TOKEN": "t",
        "BLUESKY_APP_PASSWORD": "p",
    }
    settings = load_settings(env)
    assert settings.destinations
