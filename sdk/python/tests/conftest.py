"""A real gateway for the tests: the `countersign` binary built from this
tree (`CS_SDK_BIN`, else target/debug/countersign), serving on a free
loopback port over a temporary data dir, with identities made by its CLI.

Test-only variables never start with `COUNTERSIGN_` (the gateway reads those
as configuration), and none is set on this process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

import countersign

ROOT = Path(__file__).resolve().parents[3]

POLICY = """
@id("routine")
permit(principal, action, resource) when { resource.name like "staging*" };

@id("prod-needs-sre")
@approvers("sre")
permit(principal, action, resource) when { resource.name like "prod*" };

@id("never-on-forbidden")
forbid(principal, action, resource) when { resource.name like "forbidden*" };
"""


def binary() -> Path:
    path = Path(os.environ.get("CS_SDK_BIN") or ROOT / "target" / "debug" / "countersign")
    if not path.is_file():
        pytest.fail(f"no countersign binary at {path}: run `cargo build -p countersign` (or set CS_SDK_BIN)")
    return path


def clean_env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTERSIGN_") and k != "RUST_LOG"}
    env["NO_COLOR"] = "1"
    return env


def add_identity(data: Path, *args: str) -> str:
    out = subprocess.run(
        [str(binary()), *args, "--data-dir", str(data), "--output", "json"],
        env=clean_env(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["token"]


def free_port() -> int:
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    def __init__(self, tmp: Path) -> None:
        self.data = tmp / "data"
        policies = tmp / "policies"
        policies.mkdir()
        (policies / "sdk.cedar").write_text(POLICY)
        self.tokens = {
            "alice": add_identity(self.data, "users", "add", "alice", "--email", "alice@example.com", "--group", "sre"),
            "bob": add_identity(self.data, "users", "add", "bob", "--email", "bob@example.com"),
            "ann": add_identity(self.data, "users", "add", "ann", "--email", "ann@example.com", "--group", "auditor"),
            "bot": add_identity(self.data, "agents", "add", "bot", "--owner", "bob"),
            "bot2": add_identity(self.data, "agents", "add", "bot2", "--owner", "bob"),
        }
        self.policies = policies
        self.tmp = tmp
        self.url = self._start("127.0.0.1:0")

    def _start(self, listen: str) -> str:
        self.log = open(self.tmp / "gateway.log", "ab")
        self.proc = subprocess.Popen(
            [str(binary()), "serve", "--listen", listen, "--data-dir", str(self.data),
             "--policies", str(self.policies)],
            env=clean_env(), stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL, text=True,
        )
        found: List[str] = []
        ready = threading.Event()
        proc = self.proc

        def drain() -> None:
            # Keeps reading so the gateway never blocks on a full pipe.
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("listening on ") and not found:
                    found.append(line[len("listening on "):].strip())
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(60) or not found:
            self.stop()
            pytest.fail("the gateway did not start; see " + str(self.tmp / "gateway.log"))
        return found[0]

    def restart(self) -> None:
        """SIGKILL (as a crash), then serve the same data on the same port."""
        self.stop()
        self._start(self.url[len("http://"):])

    def client(self, who: str = "bot") -> countersign.Client:
        return countersign.Client(self.url, self.tokens[who])

    def async_client(self, who: str = "bot") -> countersign.AsyncClient:
        return countersign.AsyncClient(self.url, self.tokens[who])

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory):
    gw = Gateway(tmp_path_factory.mktemp("gateway"))
    yield gw
    gw.stop()


@pytest.fixture
def prod() -> str:
    """A resource of its own for each test that needs approval (`prod-…`)."""
    return "prod-" + uuid.uuid4().hex[:10]


@pytest.fixture
def down_url() -> str:
    """A gateway that is down: a loopback port nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"


class Approver:
    """An approver (alice, sre) in another thread: decides the first pending
    request on `resource` through the API, as a human in the console would."""

    def __init__(self, gateway: Gateway, resource: str, verdict: str = "approve", comment: str = "ok") -> None:
        self.client = gateway.client("alice")
        self.resource = resource
        self.verdict = verdict
        self.comment = comment
        self.decided: Optional[countersign.Request] = None
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                page = self.client.list(status="pending", resource=self.resource)
                if page.actions:
                    vote: Callable[..., countersign.Request] = getattr(self.client, self.verdict)
                    self.decided = vote(page.actions[0].id, self.comment)
                    return
                time.sleep(0.05)
            raise AssertionError(f"nothing became pending on {self.resource}")
        except BaseException as e:  # reported by join()
            self.error = e

    def join(self) -> countersign.Request:
        self.thread.join(40)
        if self.error is not None:
            raise self.error
        assert self.decided is not None
        return self.decided


@pytest.fixture
def approver(gateway: Gateway):
    started: List[Approver] = []

    def start(resource: str, verdict: str = "approve", comment: str = "ok") -> Approver:
        a = Approver(gateway, resource, verdict, comment)
        started.append(a)
        return a

    yield start
    for a in started:
        a.thread.join(40)


@pytest.fixture(autouse=True)
def _reports_delivered():
    """Outcome reports go out in the background: each test's are delivered
    before the next starts (and before the gateway stops at the end)."""
    yield
    countersign.flush_reports(10)
