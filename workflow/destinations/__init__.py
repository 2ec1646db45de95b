"""Destinations: one module per platform behind the `Destination` interface (`base.py`).

`build` turns the configured destinations into adapters. Adapters get their HTTP client
injected (or a Slack `WebClient`), so tests point them at fake servers on loopback.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import httpx
from slack_sdk import WebClient

from workflow.clock import Clock
from workflow.destinations.base import Destination
from workflow.settings import DestinationSettings

# type -> "module:Class"; imported when used, so a platform's dependencies load only if configured.
ADAPTERS: dict[str, str] = {
    "slack": "workflow.destinations.slack:SlackDestination",
    "webhook": "workflow.destinations.webhook:WebhookDestination",
    "log": "workflow.destinations.log:LogDestination",
    "mastodon": "workflow.destinations.mastodon:MastodonDestination",
    "bluesky": "workflow.destinations.bluesky:BlueskyDestination",
    "x": "workflow.destinations.x:XDestination",
    "statuspage": "workflow.destinations.statuspage:StatuspageDestination",
    "discord": "workflow.destinations.discord:DiscordDestination",
    "teams": "workflow.destinations.teams:TeamsDestination",
}


def adapter_class(kind: str) -> type:
    module, _, name = ADAPTERS[kind].partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def build(
    configs: Sequence[DestinationSettings], *, http: httpx.Client, slack: WebClient, clock: Clock
) -> dict[str, Destination]:
    """One adapter per configured destination, keyed by name, in config order."""
    result: dict[str, Destination] = {}
    for config in configs:
        cls = adapter_class(config.type)
        if config.type == "slack":
            result[config.name] = cls(config, client=slack)
        elif config.type == "log":
            result[config.name] = cls(config)
        elif config.type == "webhook":
            result[config.name] = cls(config, http=http, clock=clock)
        else:
            result[config.name] = cls(config, http=http)
    return result
