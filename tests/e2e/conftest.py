"""Fixtures: the fake OpenAI server (one per session) and a fresh imagemcp server per test, on the
offline model and on the fake OpenAI server in turn; and, when the session ends, the scan of its logs
for the secrets it used."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import LOG_DIR, SECRETS_FILE, FakeOpenAi, Process, Server, start_fake_openai, start_server

# Secrets the tests use without recording them (the fake OpenAI key every server is given).
FIXED_SECRETS = {"sk-test-secret-key-never-logged": "the fake OpenAI API key"}


@dataclass(frozen=True)
class Seen:
    """How far a file went when the session started: its length and a digest of those bytes (a log
    rewritten from the start during the session is then read whole again)."""

    length: int
    digest: str


def seen(path: Path) -> Seen:
    data = path.read_bytes()
    return Seen(len(data), hashlib.sha256(data).hexdigest())


def written_since(path: Path, before: Seen | None) -> tuple[int, bytes]:
    """The bytes written to `path` this session, and the number of lines before them."""
    data = path.read_bytes()
    start = 0
    if before is not None and len(data) >= before.length \
            and hashlib.sha256(data[:before.length]).hexdigest() == before.digest:
        start = before.length
    return data.count(b"\n", 0, start), data[start:]


def secrets_of_the_session(before: Seen | None) -> dict[str, str]:
    """Each secret to look for, with how the report names it (never by its value)."""
    secrets = dict(FIXED_SECRETS)
    if SECRETS_FILE.exists():
        skipped, new = written_since(SECRETS_FILE, before)
        for n, line in enumerate(new.decode(errors="replace").splitlines(), skipped + 1):
            if line.strip():
                secrets.setdefault(line.strip(), f"the secret on line {n} of {SECRETS_FILE.name}")
    return secrets


def leaks_in_the_logs(before: dict[Path, Seen], secrets_before: Seen | None) -> list[str]:
    """Where a secret of the session appears in what the session logged: `file:line: which secret`.
    Only the names travel out of here, so no report (nor a traceback's locals) shows a secret."""
    secrets = secrets_of_the_session(secrets_before)
    leaks = []
    for path in sorted(LOG_DIR.glob("*.log")):
        skipped, new = written_since(path, before.get(path))
        for n, line in enumerate(new.decode(errors="replace").splitlines(), skipped + 1):
            leaks.extend(f"{path.name}:{n}: {name}" for secret, name in secrets.items() if secret in line)
    return leaks


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_the_logs():
    """After every test of the session, whatever their order or selection: no secret used in this
    session (passwords, OAuth codes, access and refresh tokens, keys the tests recorded, the fake
    OpenAI key) appears in any line logged during it. Set up before any other fixture of the
    session, it is torn down after all of them, when every process they started has stopped."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    before = {path: seen(path) for path in LOG_DIR.glob("*.log")}
    secrets_before = seen(SECRETS_FILE) if SECRETS_FILE.exists() else None
    yield
    unscanned = sorted(str(p) for p in Process.logs if p.parent != LOG_DIR or p.suffix != ".log")
    if unscanned:
        pytest.fail(f"processes logged where the secrets scan does not look: {unscanned}", pytrace=False)
    leaks = leaks_in_the_logs(before, secrets_before)
    if leaks:
        pytest.fail("secrets appear in the logs of this run (the values are not shown):\n  "
                    + "\n  ".join(leaks), pytrace=False)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="session")
def fake() -> FakeOpenAi:
    f = start_fake_openai()
    yield f
    f.process.stop()


@pytest.fixture(params=["offline", "openai"])
def server(request, tmp_path, fake) -> Server:
    """A running server on a fresh data directory: offline, then against the fake OpenAI server."""
    use_fake = request.param == "openai"
    if use_fake:
        fake.reset()
    s = start_server(tmp_path / "data", f"{request.node.name}", fake if use_fake else None)
    yield s
    s.process.stop()


@pytest.fixture
def offline_server(tmp_path) -> Server:
    s = start_server(tmp_path / "data", "offline")
    yield s
    s.process.stop()


@pytest.fixture
def openai_server(tmp_path, fake) -> Server:
    fake.reset()
    s = start_server(tmp_path / "data", "openai", fake)
    yield s
    s.process.stop()


# Both protocol eras, through the official SDK: the initialize handshake, and the stateless revision.
MODES = ["legacy", "2026-07-28"]
