"""How the platforms count a post, with the libraries they count with (never by hand).

- Grapheme clusters (what a reader sees as one character) come from graphemeu (`grapheme`).
- URLs are found with twitter-text's extractor (twitter-text-parser): Mastodon's server and X
  both use twitter-text; Bluesky link facets are found with it here too.
- X's weighted length is twitter-text v3's `parse_tweet` (NFC first, URLs 23, CJK and emoji 2).

Offsets here are Python string indexes (code points) unless the name says bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import grapheme
import twitter_text
from twitter_text.config import config as _twitter_config
from twitter_text.has_invalid_characters import has_invalid_characters

# twitter-text v3, the rule X applies today: 280 weighted, URLs 23, CJK and emoji weigh 2.
X_CONFIG = _twitter_config["version3"]


@dataclass(frozen=True)
class Span:
    """A piece of text found in a post: [start, end) in code points."""

    start: int
    end: int
    text: str


def graphemes(text: str) -> int:
    """User-perceived characters (extended grapheme clusters, UAX #29)."""
    return int(grapheme.length(text))


def utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def utf8_offset(text: str, index: int) -> int:
    """The UTF-8 byte offset of code point `index` (Bluesky facets count bytes)."""
    return len(text[:index].encode("utf-8"))


def urls(text: str, *, without_scheme: bool) -> list[Span]:
    """URLs as twitter-text finds them; `without_scheme` also finds bare `example.com`."""
    found = twitter_text.extract_urls_with_indices(text, without_scheme)
    return [Span(item["indices"][0], item["indices"][1], item["url"]) for item in found]


# Mastodon's Account::MENTION_RE (app/models/account.rb): `@user` or `@user@domain`, not after
# a word character, `=` or `/` (so e-mail addresses and URL paths are not mentions).
_MENTION = re.compile(
    r"(?<![=/\w])@(?P<acct>(?P<user>[a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)(?:@[\w.-]+\w+)?)",
    re.IGNORECASE,
)
# twitter-text's end_mention_match: a mention directly followed by these is not a mention.
_MENTION_END = ("@", "\uff20", "://")


def mentions(text: str) -> list[tuple[Span, str]]:
    """Mastodon mentions, each with the username alone (what the server counts)."""
    result = []
    for match in _MENTION.finditer(text):
        if text[match.end() :].startswith(_MENTION_END):
            continue
        result.append((Span(match.start(), match.end(), match.group(0)), match.group("user")))
    return result


def mastodon_length(text: str, *, url_chars: int = 23) -> int:
    """Mastodon's StatusLengthValidator: graphemes, after every http(s) URL is replaced by
    `url_chars` characters and every `@user@domain` by `@user`.
    """
    entities: list[tuple[Span, str]] = [(span, "x" * url_chars) for span in urls(text, without_scheme=False)]
    entities += [(span, f"@{user}") for span, user in mentions(text)]
    entities.sort(key=lambda item: item[0].start)
    pieces: list[str] = []
    position = 0
    for span, replacement in entities:
        if span.start < position:  # overlaps an earlier entity (a mention inside a URL): skip
            continue
        pieces.append(text[position : span.start])
        pieces.append(replacement)
        position = span.end
    pieces.append(text[position:])
    return graphemes("".join(pieces))


@dataclass(frozen=True)
class Weighted:
    """X's count of a text: the weighted length and whether X accepts the characters."""

    length: int
    limit: int
    valid_characters: bool


def x_weighted(text: str) -> Weighted:
    """twitter-text v3 weighted length (the text is NFC-normalised inside `parse_tweet`)."""
    parsed = twitter_text.parse_tweet(text, X_CONFIG)
    return Weighted(
        length=parsed.weightedLength,
        limit=int(X_CONFIG["max_weighted_tweet_length"]),
        valid_characters=not has_invalid_characters(text),
    )
