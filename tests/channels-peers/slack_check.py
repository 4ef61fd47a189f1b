"""Checks what countersign sends to and expects from Slack with Slack's own SDK.

Reads one JSON object on stdin:
  {"messages": [[block, ...], ...],    # blocks of every chat.postMessage / chat.update
   "views": [view, ...],               # every views.open view
   "sign": [{"secret", "timestamp", "body"}, ...],
   "verify": [{"secret", "timestamp", "body", "signature", "now"}, ...]}
Writes {"message_errors", "view_errors", "signatures", "verified"} on stdout.
Block Kit objects are parsed with slack_sdk's models and re-serialised with
validation (lengths, required fields, known types); any difference between
what we sent and what the SDK understood is reported as an error.
"""
import json
import sys
import time

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from slack_sdk.signature import SignatureVerifier


def check_blocks(blocks):
    errors = []
    for i, raw in enumerate(blocks):
        try:
            parsed = Block.parse(raw)
            if parsed is None:
                errors.append(f"block {i}: unknown block type {raw.get('type')!r}")
                continue
            again = parsed.to_dict()  # validates
            if again != raw:
                errors.append(f"block {i}: the SDK reads it differently: {json.dumps(again)} != {json.dumps(raw)}")
        except Exception as e:  # noqa: BLE001 - every SDK complaint is a finding
            errors.append(f"block {i}: {type(e).__name__}: {e}")
    if len(blocks) > 50:
        errors.append(f"{len(blocks)} blocks; Slack allows 50 in a message")
    return errors


def check_view(raw):
    try:
        view = View(**raw)
        again = view.to_dict()
        errors = []
        if again != raw:
            errors.append(f"the SDK reads the view differently: {json.dumps(again)} != {json.dumps(raw)}")
        return errors + check_blocks(raw.get("blocks", []))
    except Exception as e:  # noqa: BLE001
        return [f"{type(e).__name__}: {e}"]


def main():
    data = json.load(sys.stdin)
    out = {
        "message_errors": [check_blocks(m) for m in data.get("messages", [])],
        "view_errors": [check_view(v) for v in data.get("views", [])],
        "signatures": [
            SignatureVerifier(s["secret"]).generate_signature(timestamp=s["timestamp"], body=s["body"])
            for s in data.get("sign", [])
        ],
        "verified": [],
    }
    for v in data.get("verify", []):
        verifier = SignatureVerifier(v["secret"], clock=FixedClock(v["now"]))
        out["verified"].append(verifier.is_valid(body=v["body"], timestamp=v["timestamp"], signature=v["signature"]))
    json.dump(out, sys.stdout)


class FixedClock:
    def __init__(self, now):
        self.value = now

    def now(self):
        return self.value


if __name__ == "__main__":
    main()
