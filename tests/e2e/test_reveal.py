"""Keys and invitation tokens made over MCP never pass through the client: the official Python SDK
(both eras, with and without URL-mode elicitation) gets a one-time reveal link, never the secret;
the link, opened in a browser session (httpx with a cookie jar, through the page's own sign-in form),
shows the secret once, to the same person only; the secret is in no log line."""

from __future__ import annotations

import json
import re
import subprocess
import secrets

import httpx2 as httpx
import pytest
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from conftest import MODES
from helpers import IMAGEMCP, base_env, remember_secret

pytestmark = pytest.mark.anyio

PASSWORD = "reveal-password-" + secrets.token_hex(6)


def person(server, email: str) -> str:
    """Signs up `email` and returns an access token with every scope of its own organisation."""
    r = httpx.post(f"{server.url}/v1/auth/signup", json={"email": email, "password": PASSWORD, "name": "Ann"})
    assert r.status_code == 201, r.text
    remember_secret(PASSWORD)
    r = httpx.post(f"{server.url}/v1/auth/login",
                   json={"email": email, "password": PASSWORD, "scope": "images:read images:write admin"})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    remember_secret(token)
    return token


def client(server, token: str, mode: str, on_elicit=None) -> Client:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    kwargs = {"elicitation_callback": on_elicit} if on_elicit else {}
    return Client(streamable_http_client(server.mcp_url, http_client=http), mode=mode, read_timeout_seconds=60,
                  **kwargs)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]{64})"', html).group(1)


def secret_of(html: str) -> str | None:
    found = re.search(r'<code id="secret">([^<]+)</code>', html)
    return found.group(1) if found else None


def open_link(url: str, email: str) -> tuple[httpx.Client, httpx.Response]:
    """A browser that opens the link and signs in on its page; returns it and the page after."""
    browser = httpx.Client(timeout=60, follow_redirects=False)
    first = browser.get(url)
    assert first.status_code == 200 and "Sign in" in first.text, first.text
    assert secret_of(first.text) is None
    signed_in = browser.post(url, data={"csrf": csrf_of(first.text), "action": "login", "email": email,
                                        "password": PASSWORD})
    return browser, signed_in


def reveal(browser: httpx.Client, url: str, page: httpx.Response) -> httpx.Response:
    return browser.post(url, data={"csrf": csrf_of(page.text), "action": "reveal"})


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_with_url_elicitation_shows_the_link_and_the_key_never_reaches_it(offline_server, mode):
    s = offline_server
    email = f"ann-{mode}@example.com"
    token = person(s, email)
    asked: list = []

    async def on_elicit(context, params):
        asked.append(params)
        return types.ElicitResult(action="accept")

    async with client(s, token, mode, on_elicit) as mcp:
        result = await mcp.call_tool("openai_create_api_key", {"label": "e2e"})
    assert not result.is_error, result.content
    assert len(asked) == 1 and asked[0].mode == "url", asked
    url = asked[0].url
    assert url.startswith(f"{s.url}/reveal/"), url
    view = result.structured_content
    assert "key" not in view and view["shown_via"] == "url_elicitation" and view["reveal_url"] == url, view
    assert "shown to you once" in " ".join(c.text for c in result.content)

    browser, ready = open_link(url, email)
    assert ready.status_code == 200 and "Show it now" in ready.text, ready.text
    shown = reveal(browser, url, ready)
    assert shown.status_code == 200
    assert shown.headers["cache-control"] == "no-store" and shown.headers["referrer-policy"] == "no-referrer"
    key = secret_of(shown.text)
    assert key and key.startswith("imk_"), shown.text
    remember_secret(key)
    assert key not in result.model_dump_json() and key not in str(asked)
    # The key works, and the link works once.
    with s.http(key) as api:
        assert api.get("/v1/images").status_code == 200
    assert reveal(browser, url, ready).status_code == 410
    assert browser.get(url).status_code == 410
    assert key not in s.log(), "the key is in no log line"


async def test_without_url_elicitation_the_link_is_in_the_result_and_only_its_maker_sees_it(offline_server):
    s = offline_server
    token = person(s, "ann@example.com")
    person(s, "bob@example.com")
    async with client(s, token, "2026-07-28") as mcp:
        made = await mcp.call_tool("openai_create_api_key", {"label": "plain"})
        invited = await mcp.call_tool("openai_invite_member", {"email": "cat@example.com", "role": "creator"})
    for result in (made, invited):
        assert not result.is_error, result.content
        view = result.structured_content
        assert view["shown_via"] == "link" and view["expires_at"] > 0, view
        assert "key" not in view and "token" not in view, view
        assert view["reveal_url"] in " ".join(c.text for c in result.content)
    url = made.structured_content["reveal_url"]

    # Bob signed in on Ann's link: refused, and the link still waits for Ann.
    bob, refused = open_link(url, "bob@example.com")
    assert refused.status_code == 403 and secret_of(refused.text) is None
    assert reveal(bob, url, refused).status_code == 403

    browser, ready = open_link(url, "ann@example.com")
    key = secret_of(reveal(browser, url, ready).text)
    assert key and key not in made.model_dump_json()
    remember_secret(key)
    invitation_url = invited.structured_content["reveal_url"]
    shown = reveal(browser, invitation_url, browser.get(invitation_url))
    invitation = secret_of(shown.text)
    assert invitation and invitation not in invited.model_dump_json(), shown.text
    remember_secret(invitation)
    log = s.log()
    assert key not in log and invitation not in log

    # REST still returns a new key once, as it always did.
    with s.http(token) as api:
        r = api.post("/v1/keys", json={"label": "rest"})
        assert r.status_code == 201 and r.json()["key"].startswith("imk_"), r.text
        remember_secret(r.json()["key"])


def set_password(server, password: str, *extra: str) -> subprocess.CompletedProcess:
    """`imagemcp users set-password`, the password on stdin, against the running server's data."""
    return subprocess.run([str(IMAGEMCP), "users", "set-password", "--data-dir", str(server.data_dir), *extra],
                          input=password + "\n", env=base_env(), capture_output=True, text=True, timeout=60)


async def test_the_local_administrator_sets_a_password_and_reveals_a_key_made_over_mcp(offline_server):
    """The README's first key acts as admin@localhost, who has no password until one is set; a key it
    makes over MCP arrives as a reveal link that only a signed-in admin@localhost can open."""
    s = offline_server
    short = set_password(s, "q7z4x9")
    assert short.returncode != 0 and "at least 10 characters" in short.stderr, short
    assert "q7z4x9" not in short.stdout + short.stderr
    password = "local-admin-" + secrets.token_hex(8)
    remember_secret(password)
    done = set_password(s, password)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "password set for admin@localhost", done.stdout
    assert password not in done.stdout + done.stderr

    async with client(s, s.key, "legacy") as mcp:
        made = await mcp.call_tool("openai_create_api_key", {"label": "from-the-chat"})
    assert not made.is_error, made.content
    url = made.structured_content["reveal_url"]

    browser = httpx.Client(timeout=60, follow_redirects=False)
    first = browser.get(url)
    wrong = browser.post(url, data={"csrf": csrf_of(first.text), "action": "login", "email": "admin@localhost",
                                    "password": "not-the-password-at-all"})
    assert secret_of(wrong.text) is None and wrong.status_code in (401, 403), wrong.status_code
    ready = browser.post(url, data={"csrf": csrf_of(wrong.text), "action": "login", "email": "admin@localhost",
                                    "password": password})
    assert ready.status_code == 200, ready.text
    key = secret_of(reveal(browser, url, ready).text)
    assert key and key.startswith("imk_"), key
    remember_secret(key)
    with s.http(key) as api:
        me = api.get("/v1/me")
        assert me.status_code == 200 and me.json()["email"] == "admin@localhost", me.text
    # The change is in the audit log, naming the account, never the password.
    with s.http(s.key) as api:
        entries = api.get("/v1/audit", params={"action": "user.password_set"}).json()
    assert any(e["action"] == "user.password_set" for e in entries["entries"]), entries
    assert password not in json.dumps(entries) and password not in s.log()
