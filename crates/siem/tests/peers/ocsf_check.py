"""Validates OCSF events against the official OCSF schema (the schema.ocsf.io
export of version 1.5.0, packaged by PyPI `ocsf-json-schema`, turned into
JSON Schema 2020-12 and checked with `jsonschema`).

As a program: `python ocsf_check.py FILE.jsonl` validates every line and
prints {"checked": N, "classes": {...}, "invalid": [...]}; exit status 1 if
any event is invalid.
"""

import json
import sys

from jsonschema import Draft202012Validator
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

VERSION = "1.5.0"
_schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=VERSION))
_validators = {}


def validate(event):
    """The list of problems with `event` (empty when it is valid)."""
    if not isinstance(event, dict):
        return ["not a JSON object"]
    uid = event.get("class_uid")
    if event.get("metadata", {}).get("version") != VERSION:
        return [f"metadata.version is not {VERSION}"]
    if uid not in _validators:
        try:
            name = _schema.lookup_class_name_from_uid(class_uid=uid)
        except Exception as e:  # an unknown class is a finding, not a crash
            return [f"class_uid {uid!r} is not an OCSF class: {e}"]
        _validators[uid] = Draft202012Validator(_schema.get_class_schema(class_name=name, profiles=[]))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in _validators[uid].iter_errors(event)]


def main(path):
    checked, classes, invalid = 0, {}, []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            event = json.loads(line)
            checked += 1
            classes[str(event.get("class_uid"))] = classes.get(str(event.get("class_uid")), 0) + 1
            problems = validate(event)
            if problems:
                kind = event.get("metadata", {}).get("event_code")
                invalid.append({"line": n, "kind": kind, "problems": problems})
    print(json.dumps({"checked": checked, "classes": classes, "invalid": invalid}))
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
