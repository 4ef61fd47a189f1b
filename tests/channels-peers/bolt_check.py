"""Feeds every interactivity request the tests send countersign to a Bolt
for Python app (slack_bolt), as Slack would deliver it to any Slack app.

Bolt checks the v0 signature and the timestamp with its own middleware,
parses the form body, routes `block_actions` by action_id and
`view_submission` by callback_id, and the listeners ack() as Slack
requires. What Bolt parsed is reported, so the tests can require that
countersign read the same thing.

stdin: {"secret": "...", "requests": [{"body", "timestamp", "signature"}, ...]}
stdout: [{"status": int, "kind": "action"|"view"|null, "action_id", "value",
          "user", "callback_id", "private_metadata", "values"}, ...]
"""
import json
import re
import sys

from slack_bolt import App, BoltRequest
from slack_bolt.authorization import AuthorizeResult


def authorize(enterprise_id, team_id, user_id, logger):
    # Bolt would ask auth.test; the tests have no Slack to ask.
    return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token="xoxb-test-token",
                           bot_id="B1", bot_user_id="UBOT")


def check(secret, request):
    seen = {}
    app = App(signing_secret=secret, authorize=authorize, process_before_response=True)

    @app.action(re.compile(".*"))
    def on_action(ack, body, action):
        ack()
        seen.update(kind="action", action_id=action["action_id"], value=action.get("value"),
                    user=body["user"]["id"])

    @app.view(re.compile(".*"))
    def on_view(ack, body, view):
        ack()
        values = {block: {k: v.get("value") for k, v in fields.items()}
                  for block, fields in view["state"]["values"].items()}
        seen.update(kind="view", callback_id=view["callback_id"], private_metadata=view["private_metadata"],
                    user=body["user"]["id"], values=values)

    response = app.dispatch(BoltRequest(
        body=request["body"],
        headers={
            "content-type": ["application/x-www-form-urlencoded"],
            "x-slack-request-timestamp": [request["timestamp"]],
            "x-slack-signature": [request["signature"]],
        },
    ))
    return dict(status=response.status, kind=None, **seen) if not seen else dict(status=response.status, **seen)


def main():
    data = json.load(sys.stdin)
    json.dump([check(data["secret"], r) for r in data["requests"]], sys.stdout)


if __name__ == "__main__":
    main()
