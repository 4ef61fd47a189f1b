"""Asking again (`reuse_open=True`, `?reuse=open`) and outcome reports sent
in the background, against a real gateway."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, List

import pytest

import countersign
from countersign import ApiError, StillPending, outcomes
from countersign.outcomes import OutcomeSender, Report


def audit_of(gateway: Any, id: str) -> List[str]:
    """The kinds of the audit events about request `id`."""
    ann = gateway.client("ann")
    kinds: List[str] = []
    after = 0
    while True:
        page = ann.audit(after=after, limit=1000)
        kinds += [e["type"] for e in page.events if e.get("body", {}).get("id") == id]
        if not page.events:
            return kinds
        after = page.next_after


def test_the_same_action_asked_again_is_the_same_request(gateway: Any, prod: str) -> None:
    bot = gateway.client()
    payload = {"order": uuid.uuid4().hex}
    first = bot.submit("payments.refund", prod, payload, reuse_open=True)
    again = bot.submit("payments.refund", prod, payload, reuse_open=True)
    assert first.status == again.status == "pending"
    assert again.id == first.id and again.reused and not first.reused
    assert audit_of(gateway, first.id) == ["action.submitted", "action.decided"]
    # Another agent, same payload: its own request.
    theirs = gateway.client("bot2").submit("payments.refund", prod, payload, reuse_open=True)
    assert theirs.id != first.id and not theirs.reused
    # Without the flag: a new request every time, as before.
    assert bot.submit("payments.refund", prod, payload).id != first.id


def test_guard_takes_the_approved_request_once_and_a_replay_is_new(gateway: Any, prod: str) -> None:
    bot = gateway.client()
    payload = {"order": uuid.uuid4().hex}
    first = bot.submit("payments.refund", prod, payload, reuse_open=True)
    gateway.client("alice").approve(first.id, "ok")
    ran = []
    with countersign.guard("payments.refund", prod, payload, client=bot) as permit:
        ran.append(permit.id)
    assert ran == [first.id] and permit.waited
    assert bot.get(first.id).status == "released"
    assert "action.cancelled" not in audit_of(gateway, first.id)
    replay = bot.submit("payments.refund", prod, payload, reuse_open=True)
    assert replay.id != first.id and replay.status == "pending" and not replay.reused


def test_a_shared_request_taken_by_an_identical_call_gets_its_own(gateway: Any, prod: str) -> None:
    payload = {"order": uuid.uuid4().hex}

    class Racing(countersign.Client):
        """Another identical call releases the shared request first."""

        raced: List[str] = []

        def release(self, id: str) -> countersign.Request:
            if not self.raced:
                self.raced.append(id)
                super().release(id)
                raise ApiError(409, "already_released", "taken")
            return super().release(id)

    bot = Racing(gateway.url, gateway.tokens["bot"])
    shared = bot.submit("payments.refund", prod, payload, reuse_open=True)
    gateway.client("alice").approve(shared.id, "ok")
    with pytest.raises(StillPending) as stopped:
        with countersign.guard("payments.refund", prod, payload, client=bot, timeout=0.5):
            raise AssertionError("must not run")
    assert Racing.raced == [shared.id]
    # A request of its own, not the one the other call took.
    assert stopped.value.request.id != shared.id


def test_background_reports_are_sent_flushed_and_never_lost_silently(
    gateway: Any, down_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = gateway.client()
    with countersign.guard("shell.exec", "staging-web", {"argv": ["ls"]}, client=bot,
                           background_report=True) as permit:
        pass
    assert bot.flush_outcomes(10) == 0
    assert permit.reported is not None and permit.reported.outcome is not None
    assert bot.get(permit.id).outcome["status"] == "succeeded"
    # Refused (already reported): given up at once, logged, kept.
    with caplog.at_level(logging.ERROR, logger="countersign"):
        bot.report_outcome_later(permit.id, "failed")
        assert bot.flush_outcomes(10) == 0
    assert [r.id for r in bot.outcomes.undelivered] == [permit.id]
    assert f"the outcome of request {permit.id} was not recorded" in caplog.text
    # Unreachable: retried, then given up and logged.
    monkeypatch.setattr(outcomes, "RETRY_FOR", 0.3)
    down = OutcomeSender(down_url, {"Authorization": "Bearer t"}, True)
    down.send(Report("some-id", {"status": "succeeded"}))
    assert down.flush(10) == 0
    assert [r.id for r in down.undelivered] == ["some-id"]
    down.close()
    bot.close()
    with pytest.raises(RuntimeError):
        bot.outcomes.send(Report("x", {"status": "succeeded"}))


def test_reports_still_queued_at_exit_are_sent(gateway: Any, tmp_path: Path) -> None:
    script = tmp_path / "agent.py"
    script.write_text(
        "import sys, countersign\n"
        "bot = countersign.Client(sys.argv[1], sys.argv[2])\n"
        "with countersign.guard('shell.exec', 'staging-web', {'exit': sys.argv[3]}, client=bot,\n"
        "                      background_report=True) as permit:\n"
        "    print(permit.id, flush=True)\n"
    )
    marker = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTERSIGN_")}
    env["PYTHONPATH"] = str(Path(countersign.__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, str(script), gateway.url, gateway.tokens["bot"], marker],
                          capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    id = done.stdout.strip()
    assert gateway.client().get(id).outcome["status"] == "succeeded"


def test_a_reused_pending_request_is_left_open_when_the_caller_stops_waiting(gateway: Any, prod: str) -> None:
    bot = gateway.client()
    payload = {"order": uuid.uuid4().hex}
    first = bot.submit("payments.refund", prod, payload, reuse_open=True)
    # Another identical call may be waiting on it: timing out does not cancel it.
    with pytest.raises(StillPending) as stopped:
        with countersign.guard("payments.refund", prod, payload, client=bot, timeout=0.3):
            raise AssertionError("must not run")
    assert stopped.value.request.id == first.id
    assert bot.get(first.id).status == "pending"
    # A request of the caller's own making is cancelled when it stops waiting, as before.
    bot.cancel(first.id)
    with pytest.raises(StillPending) as own:
        with countersign.guard("payments.refund", prod, payload, client=bot, timeout=0.3):
            raise AssertionError("must not run")
    assert own.value.request.id != first.id
    assert bot.get(own.value.request.id).status == "cancelled"
