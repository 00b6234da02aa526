"""Fixtures: the fake OpenAI server (one per session) and a fresh imagemcp server per test, on the
offline model and on the fake OpenAI server in turn."""

from __future__ import annotations

import pytest

from helpers import FakeOpenAi, Server, start_fake_openai, start_server


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
