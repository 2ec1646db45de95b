"""Count to Ten's domain: everything that is not Slack UI.

Module map
    states        State, Event, TRANSITIONS, next_state(): the only way a state changes (stdlib only)
    models        SQLModel tables: Announcement, Approval, Delivery (the outbox), AuditEvent, AuditHead
    db            engines (SQLite WAL + BEGIN IMMEDIATE, PostgreSQL), transactions, migrate()
    store         keyword-only `*, session` persistence; apply_transition() = compare-and-set + audit + outbox
    service       use cases and their rules (four eyes, quorum, who may cancel); takes `now`
    outbox        the worker: expire, release, claim, send, retry with backoff
    checks        pre-flight checks on a draft's text
    audit         hash-chained append, verify, streaming CSV / JSONL export (lines written by the database)
    settings      environment + announce.toml -> frozen Settings
    views         frozen read models the Block Kit builders render (stdlib only)
    clock         Clock, SystemClock, ManualClock; time is passed in, never read by the core
    errors        the exception tree (below)
    redact        keeps configured secrets out of logs and stored errors
    destinations  one module per platform behind the Destination interface (destinations/base.py)
    slack_ui      cards, ephemerals, DMs, App Home, user groups (slack_sdk)
    listeners     the only slack_bolt importer: thin handlers
    web           the WSGI app: /slack/events, /healthz, /audit/export
    audit_export  /announce audit: the log as a file in the requester's DM, built off the request path

Import rules (tests/test_imports.py enforces them)
    states and views import only the standard library; models, store, service, outbox, checks,
    audit and settings never import slack_bolt, slack_sdk, httpx or blocks; destinations never
    import the database or blocks; blocks do no I/O; only listeners imports slack_bolt.

Exceptions
    errors.CountToTenError
        SettingsError                 bad environment or announce.toml; one line per problem
        Refusal                       shown to the person who clicked, as an ephemeral message
            NotFound, NotAllowed, Conflict, InvalidDraft (per modal field)
    destinations.base.PublishError    how a send failed; the outbox decides what follows
        TransientPublishError (retry), PermanentPublishError (give up), UncertainPublishError (may have arrived)
"""
