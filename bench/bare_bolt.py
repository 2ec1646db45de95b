"""The baseline for bench/ack_latency.py: a Bolt app served by waitress exactly like
`python app.py` serves Count to Ten (same server, same threads, same Bolt settings), whose
Approve listener only acks."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import waitress
from slack_bolt import Ack, App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

client = WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"])
app = App(
    client=client,
    signing_secret=os.environ["SLACK_SIGNING_SECRET"],
    process_before_response=False,
    listener_executor=ThreadPoolExecutor(max_workers=16),
)


@app.action("approve")
def approve(ack: Ack) -> None:
    ack()


handler = SlackRequestHandler(app, path="/slack/events")


def wsgi(environ, start_response):  # type: ignore[no-untyped-def]
    if environ.get("PATH_INFO") == "/":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    return handler(environ, start_response)


waitress.serve(wsgi, host="127.0.0.1", port=int(os.environ["PORT"]), threads=16)
