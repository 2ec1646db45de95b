"""Pure Block Kit builders: data in, (text, blocks) or a view dict out. No I/O, no Slack client.

`ids` names every action, callback and block id and encodes button values; `card` renders the
approval card in every state; `modals` builds and parses the compose, edit and reject modals;
`home` renders the App Home tab. User text is escaped here, in one place (`escape`).
"""
