"""OAuth 2.1 end to end: metadata discovery from the 401, dynamic client registration, the login and
consent pages in headless Chromium, the code exchange with PKCE, then /mcp through the official MCP
client with the token; and the MCP SDK's own OAuth client doing the whole dance against us."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import httpx2 as httpx
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from helpers import ROOT, remember_secret, rpc

BROWSER_DIR = ROOT / "tests" / "browser"
PASSWORD = "browser-password-" + secrets.token_hex(6)
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def drive_consent(authorize_url: str, redirect_prefix: str, email: str, org: str | None = None) -> dict:
    """Runs the Playwright script that logs in, picks `org` on the consent page if given, and
    approves; returns the captured redirect and the organisations the picker offered."""
    assert Path("/usr/bin/chromium").exists(), "Debian chromium is required (scripts/test installs it)"
    if not (BROWSER_DIR / "node_modules" / "playwright-core").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BROWSER_DIR, check=True, timeout=300)
    env = dict(os.environ, CONSENT_EMAIL=email, CONSENT_PASSWORD=PASSWORD)
    if org is not None:
        env["CONSENT_ORG"] = org
    out = subprocess.run(
        ["node", "consent.mjs", authorize_url, redirect_prefix],
        cwd=BROWSER_DIR, env=env, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def sign_up(server, email: str) -> None:
    r = httpx.post(f"{server.url}/v1/auth/signup", json={"email": email, "password": PASSWORD, "name": "Bea"})
    assert r.status_code == 201, r.text
    remember_secret(PASSWORD)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def test_oauth_flow_in_chromium_then_mcp_with_the_token(offline_server):
    s = offline_server
    email = "bea@example.com"
    sign_up(s, email)

    # Discovery: the 401 names the resource metadata, which names the authorization server.
    r = httpx.post(s.mcp_url, content=rpc("tools/list"), headers=JSON_HEADERS)
    assert r.status_code == 401
    challenge = r.headers["www-authenticate"]
    prm_url = challenge.split('resource_metadata="', 1)[1].split('"', 1)[0]
    assert prm_url == f"{s.url}/.well-known/oauth-protected-resource/mcp"
    prm = httpx.get(prm_url).json()
    assert prm["resource"] == s.mcp_url and "images:write" in prm["scopes_supported"]
    issuer = prm["authorization_servers"][0]
    meta = httpx.get(f"{s.url}/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == issuer and meta["code_challenge_methods_supported"] == ["S256"]

    redirect_uri = "http://127.0.0.1:9/callback"
    reg = httpx.post(meta["registration_endpoint"], json={
        "redirect_uris": [redirect_uri], "client_name": "Browser Test Client",
        "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"],
    })
    assert reg.status_code == 201, reg.text
    client_id = reg.json()["client_id"]

    verifier, challenge = pkce()
    state = secrets.token_urlsafe(16)
    url = meta["authorization_endpoint"] + "?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state,
        "code_challenge": challenge, "code_challenge_method": "S256", "scope": "images:read",
        "resource": prm["resource"],
    })
    result = drive_consent(url, redirect_uri, email)
    assert "Browser Test Client" in result["consent"] and "127.0.0.1:9" in result["consent"]
    assert "images:read" in result["consent"]
    params = parse_qs(urlparse(result["redirect"]).query)
    assert params["state"] == [state] and params["iss"] == [issuer]
    code = params["code"][0]

    token = httpx.post(meta["token_endpoint"], data={
        "grant_type": "authorization_code", "code": code, "client_id": client_id,
        "redirect_uri": redirect_uri, "code_verifier": verifier, "resource": prm["resource"],
    })
    assert token.status_code == 200, token.text
    tokens = token.json()
    assert tokens["token_type"] == "Bearer" and tokens["scope"] == "images:read"
    remember_secret(tokens["access_token"])
    remember_secret(tokens["refresh_token"])
    remember_secret(code)

    async def mcp_calls():
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {tokens['access_token']}"})
        async with Client(streamable_http_client(s.mcp_url, http_client=http), mode="2026-07-28") as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert "openai_list_images" in names and "openai_generate_image" not in names

    asyncio.run(mcp_calls())

    # A tool needing images:write: the 403 step-up challenge.
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                       "params": {"name": "openai_generate_image", "arguments": {"prompt": "a red cube"}}})
    r = httpx.post(s.mcp_url, content=body, headers=dict(JSON_HEADERS, Authorization=f"Bearer {tokens['access_token']}"))
    assert r.status_code == 403
    www = r.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in www and 'scope="images:write"' in www and "resource_metadata=" in www


def login(server, email: str, **extra) -> dict:
    r = httpx.post(f"{server.url}/v1/auth/login", json={"email": email, "password": PASSWORD, **extra})
    assert r.status_code == 200, r.text
    tokens = r.json()
    remember_secret(tokens["access_token"])
    remember_secret(tokens["refresh_token"])
    return tokens


def test_an_invited_member_picks_the_organisation_on_the_consent_page(offline_server):
    """Invite, accept, then OAuth in Chromium: the consent page's picker lists both of the
    member's organisations, the browser picks the second, and the token acts there."""
    s = offline_server
    email = "dee@example.com"
    sign_up(s, email)
    with s.http() as admin:
        inv = admin.post("/v1/invitations", json={"email": email, "role": "creator"})
        assert inv.status_code == 201, inv.text
        remember_secret(inv.json()["token"])
    home = login(s, email)
    personal = home["org_id"]
    assert personal != "org_default"
    r = httpx.post(f"{s.url}/v1/invitations/accept", json={"token": inv.json()["token"]},
                   headers={"Authorization": f"Bearer {home['access_token']}"})
    assert r.status_code == 200, r.text
    # She signs in at home once more, so the picker starts on her personal organisation.
    assert login(s, email, org_id=personal)["org_id"] == personal

    redirect_uri = "http://127.0.0.1:9/org-callback"
    reg = httpx.post(f"{s.url}/oauth/register", json={
        "redirect_uris": [redirect_uri], "client_name": "Picker Client", "token_endpoint_auth_method": "none",
    })
    assert reg.status_code == 201, reg.text
    client_id = reg.json()["client_id"]
    verifier, challenge = pkce()
    url = f"{s.url}/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": "st",
        "code_challenge": challenge, "code_challenge_method": "S256", "resource": s.mcp_url,
    })
    result = drive_consent(url, redirect_uri, email, org="org_default")
    orgs = result["orgs"]
    assert [o["value"] for o in orgs] == [personal, "org_default"], orgs
    assert [o["selected"] for o in orgs] == [True, False], "the last one used comes preselected"
    assert "(admin)" in orgs[0]["label"] and "(creator)" in orgs[1]["label"], orgs
    code = parse_qs(urlparse(result["redirect"]).query)["code"][0]
    remember_secret(code)
    token = httpx.post(f"{s.url}/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "client_id": client_id,
        "redirect_uri": redirect_uri, "code_verifier": verifier, "resource": s.mcp_url,
    })
    assert token.status_code == 200, token.text
    tokens = token.json()
    remember_secret(tokens["access_token"])
    remember_secret(tokens["refresh_token"])
    # No scope asked: what a creator can use there.
    assert tokens["org_id"] == "org_default" and tokens["scope"] == "images:read images:write"

    async def act_there():
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {tokens['access_token']}"})
        async with Client(streamable_http_client(s.mcp_url, http_client=http), mode="2026-07-28") as client:
            me = await client.call_tool("openai_whoami", {})
            assert not me.is_error, me
            assert me.structured_content["org_id"] == "org_default"
            assert me.structured_content["role"] == "creator"
            made = await client.call_tool("openai_generate_image", {"prompt": "a picked organisation's square"})
            assert not made.is_error, made
            return made.structured_content["images"][0]["id"]

    image_id = asyncio.run(act_there())
    with s.http() as admin:
        assert admin.get(f"/v1/images/{image_id}").status_code == 200, "the image is in org_default"


class MemoryStorage:
    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, client_info):
        self.client = client_info


def test_the_mcp_sdk_oauth_client_against_our_server(offline_server):
    s = offline_server
    email = "cy@example.com"
    sign_up(s, email)
    redirect_uri = "http://127.0.0.1:9/sdk-callback"
    captured: dict[str, str] = {}

    async def redirect_handler(url: str) -> None:
        result = await asyncio.to_thread(drive_consent, url, redirect_uri, email)
        captured["redirect"] = result["redirect"]

    async def callback_handler() -> AuthorizationCodeResult:
        q = parse_qs(urlparse(captured["redirect"]).query)
        remember_secret(q["code"][0])
        return AuthorizationCodeResult(code=q["code"][0], state=q.get("state", [None])[0], iss=q.get("iss", [None])[0])

    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=s.mcp_url,
        client_metadata=OAuthClientMetadata(
            redirect_uris=[redirect_uri], client_name="MCP SDK client", token_endpoint_auth_method="none",
            grant_types=["authorization_code", "refresh_token"], response_types=["code"],
            scope="images:read images:write",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )

    async def run():
        http = create_mcp_http_client(auth=provider)
        async with Client(streamable_http_client(s.mcp_url, http_client=http), mode="2026-07-28") as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert "openai_generate_image" in names

    asyncio.run(run())
    assert storage.tokens is not None and storage.tokens.refresh_token
    remember_secret(storage.tokens.access_token)
    remember_secret(storage.tokens.refresh_token)
