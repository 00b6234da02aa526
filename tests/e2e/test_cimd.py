"""Client ID Metadata Documents end to end: a client whose client_id is the URL of its metadata
document, served by a test server on loopback (allow-listed in this test's configuration only),
through the login and consent pages in headless Chromium, the code exchange, and /mcp with the
token; then every way a document URL can be refused (http:, a private address, a redirect to one,
too big, too slow, another client_id, an unlisted redirect URI)."""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

import httpx2 as httpx
import pytest

from helpers import rpc, start_server
from test_oauth_browser import JSON_HEADERS, drive_consent, pkce, remember_secret, sign_up

REDIRECT = "http://127.0.0.1:9/cimd-callback"


class Documents(BaseHTTPRequestHandler):
    """Serves the client metadata documents of the test, good and bad."""

    fetches: list[str] = []

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        base = f"http://127.0.0.1:{self.server.server_port}"
        Documents.fetches.append(self.path)
        doc = {"client_id": base + self.path, "client_name": "CIMD Test Client",
               "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
               "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]}
        if self.path == "/other.json":
            doc["client_id"] = base + "/client.json"
        elif self.path == "/big.json":
            doc["padding"] = "x" * (70 * 1024)
        elif self.path == "/slow.json":
            time.sleep(7)
        elif self.path == "/redirect.json":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data")
            self.end_headers()
            return
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=300")
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server under test stopped reading (too big, too slow): as it should


@pytest.fixture
def docs():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Documents)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


@pytest.fixture
def cimd_server(tmp_path, docs):
    s = start_server(tmp_path / "data", "cimd", extra_env={"IMAGEMCP_CIMD_TEST_ALLOW_ORIGINS": docs})
    yield s
    s.process.stop()


def authorize_url(server, client_id: str, challenge: str, state: str, redirect_uri: str = REDIRECT) -> str:
    return f"{server.url}/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state,
        "code_challenge": challenge, "code_challenge_method": "S256", "scope": "images:read images:write",
        "resource": server.mcp_url,
    })


def test_a_metadata_document_client_signs_in_through_chromium(cimd_server, docs):
    s = cimd_server
    meta = httpx.get(f"{s.url}/.well-known/oauth-authorization-server").json()
    assert meta["client_id_metadata_document_supported"] is True
    assert meta["authorization_response_iss_parameter_supported"] is True
    email = "dee@example.com"
    sign_up(s, email)
    client_id = f"{docs}/client.json"
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(16)
    result = drive_consent(authorize_url(s, client_id, challenge, state), REDIRECT, email)
    # The consent page names the client (from its document) and the host it will be sent to.
    assert "CIMD Test Client" in result["consent"] and "127.0.0.1:9" in result["consent"]
    params = parse_qs(urlparse(result["redirect"]).query)
    assert params["state"] == [state] and params["iss"] == [meta["issuer"]]
    code = params["code"][0]
    remember_secret(code)
    token = httpx.post(meta["token_endpoint"], data={
        "grant_type": "authorization_code", "code": code, "client_id": client_id,
        "redirect_uri": REDIRECT, "code_verifier": verifier, "resource": s.mcp_url,
    })
    assert token.status_code == 200, token.text
    access = token.json()["access_token"]
    remember_secret(access)
    remember_secret(token.json()["refresh_token"])
    r = httpx.post(s.mcp_url, content=rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                                           "clientInfo": {"name": "cimd", "version": "1"}}),
                   headers=dict(JSON_HEADERS, Authorization=f"Bearer {access}"))
    assert r.status_code == 200 and r.json()["result"]["protocolVersion"] == "2025-06-18"
    # The document was fetched once and then served from the cache (max-age=300).
    assert Documents.fetches.count("/client.json") == 1


@pytest.mark.parametrize("url, reason", [
    ("http://metadata.example/client.json", "must use https"),
    ("https://127.0.0.2:{port}/client.json", "non-public address"),
    ("https://10.0.0.1/client.json", "non-public address"),
    ("https://[::1]:{port}/client.json", "non-public address"),
    ("{docs}/redirect.json", "HTTP 302"),
    ("{docs}/big.json", "larger than 64 KiB"),
    ("{docs}/slow.json", "timed out"),
    ("{docs}/other.json", "names another client_id"),
    ("{docs}/", "must have a path"),
])
def test_bad_metadata_document_urls_are_refused_with_the_reason(cimd_server, docs, url, reason):
    port = docs.rsplit(":", 1)[1]
    client_id = url.format(docs=docs, port=port)
    _, challenge = pkce()
    started = time.monotonic()
    r = httpx.get(authorize_url(cimd_server, client_id, challenge, "s"), follow_redirects=False, timeout=30)
    assert r.status_code == 400, (client_id, r.status_code)
    assert "location" not in r.headers, "never redirect for a client that cannot be trusted"
    assert reason in r.text, (client_id, r.text[:500])
    assert time.monotonic() - started < 10, "the fetch is bounded in time"
    # The token endpoint does not know such a client either.
    t = httpx.post(f"{cimd_server.url}/oauth/token", data={
        "grant_type": "authorization_code", "code": "imc_" + "0" * 64, "client_id": client_id,
        "redirect_uri": REDIRECT, "code_verifier": "v" * 43}, timeout=30)  # it fetches the document again
    assert t.status_code in (400, 401) and t.json()["error"] in ("invalid_client", "invalid_request")


def test_only_the_documents_redirect_uris_are_accepted(cimd_server, docs):
    _, challenge = pkce()
    r = httpx.get(authorize_url(cimd_server, f"{docs}/client.json", challenge, "s",
                                redirect_uri="http://127.0.0.1:9/elsewhere"), follow_redirects=False)
    assert r.status_code == 400 and "location" not in r.headers
    assert "not registered" in r.text
