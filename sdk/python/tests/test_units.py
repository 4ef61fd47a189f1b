"""Pure parts, no gateway: what runs after a release must be exactly what was
submitted; settings and ids refuse what could change a request."""

from __future__ import annotations

import pytest

from countersign import PayloadMismatch, ProtocolError, Request, Revoked
from countersign._core import action_body, outcome_body, segment, settings
from countersign.adapters._common import blocked_message, tool_payload
from countersign.guard import check_released, json_copy


def view(**fields: object) -> Request:
    data = {"id": "r1", "status": "released", "reason": "", "fingerprint": "sha256:a", "payload": {"x": 1}}
    data.update(fields)
    return Request.from_json(data)


def test_only_the_submitted_action_runs():
    submitted = view(status="pending")
    check_released(view(), submitted, {"x": 1})
    with pytest.raises(PayloadMismatch):
        check_released(view(payload={"x": 2}), submitted, {"x": 1})
    with pytest.raises(PayloadMismatch):
        check_released(view(payload=None), submitted, {"x": 1})
    with pytest.raises(PayloadMismatch):
        check_released(view(fingerprint="sha256:b"), submitted, {"x": 1})
    with pytest.raises(PayloadMismatch):
        check_released(view(fingerprint=""), view(status="pending", fingerprint=""), {"x": 1})
    with pytest.raises(PayloadMismatch):
        check_released(view(status="approved"), submitted, {"x": 1})
    with pytest.raises(Revoked):
        check_released(view(status="revoked"), submitted, {"x": 1})


def test_answers_that_do_not_read_are_errors():
    for bad in ([], "x", None, {"status": "allowed"}, {"id": 7, "status": "allowed"}):
        with pytest.raises(ProtocolError):
            Request.from_json(bad)


def test_ids_stay_one_path_segment():
    assert segment("../../v1/audit?x=1#f") == "..%2F..%2Fv1%2Faudit%3Fx%3D1%23f"
    with pytest.raises(ValueError):
        segment("")


def test_settings_refuse_header_injection_and_odd_urls():
    with pytest.raises(ValueError):
        settings("http://127.0.0.1:1", "t\r\nHost: evil")
    with pytest.raises(ValueError):
        settings("file:///etc/passwd", "t")
    with pytest.raises(ValueError):
        settings("http://127.0.0.1:1", "")


def test_bodies_and_payloads():
    assert action_body("k", "r")["payload"] == {}
    assert "on_behalf_of" not in action_body("k", "r")
    with pytest.raises(ValueError):
        outcome_body("maybe", None, None, None)
    with pytest.raises(TypeError):
        json_copy({"x": float("nan")})
    assert tool_payload("t", '{"a": [1]}') == {"tool": "t", "arguments": {"a": [1]}}


def test_the_model_reads_who_and_why():
    text = blocked_message(Request.from_json({
        "id": "r9", "status": "denied", "reason": "policy x", "fingerprint": "f", "policies": ["x"],
        "denials": [{"by": "user:alice", "at": "t", "comment": "freeze"}]}))
    assert "denied" in text and "user:alice (freeze)" in text and "r9" in text and "did not run" in text
