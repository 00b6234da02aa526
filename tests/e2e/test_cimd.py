"""Client ID Metadata Documents end to end: a client whose client_id is the URL of its metadata
document, served by a test server on loopback (allow-listed in this test's configuration only),
through the login and consent pages in headless Chromium, the code exchange, and /mcp with the
token; then every way a document URL can be refused (http:, a private address, a redirect to one,
too big, too slow, another client_id, an unlisted redirect URI). The slow document never answers
while the test runs, and the server meeting it is started with a 200 ms fetch limit (a test-only
setting), so no test waits out the real 5 s."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

import httpx2 as httpx
import pytest

from helpers import rpc, start_server
from test_oauth_browser import JSON_HEADERS, drive_consent, pkce, remember_secret, sign_up

REDIRECT = "http://127.0.0.1:9/cimd-callback"
# The fetch limit of the server that meets the slow document (its test-only setting); the others
# keep the real limit, so the documents they fetch are never refused for time.
SHORT_FETCH_TIMEOUT_MS = "200"


class Documents(BaseHTTPRequestHandler):
    """Serves the client metadata documents of the test, good and bad. `/slow.json` answers only
    once `release` is set, when the server of documents stops."""

    fetches: list[str] = []
    release = threading.Event()

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
            Documents.release.wait()
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


@contextmanager
def serve_documents() -> Iterator[str]:
    """The documents on a loopback port (its origin is yielded); on exit the slow document is let
    go and the server stops."""
    Documents.fetches = []
    Documents.release = threading.Event()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Documents)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        Documents.release.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def docs():
    with serve_documents() as origin:
        yield origin


@pytest.fixture
def cimd_server(tmp_path, docs):
    s = start_server(tmp_path / "data", "cimd", extra_env={"IMAGEMCP_CIMD_TEST_ALLOW_ORIGINS": docs})
    yield s
    s.process.stop()


@pytest.fixture
def short_fetch_server(tmp_path, docs):
    """The server with a fetch limit far shorter than the real one (a test-only setting)."""
    s = start_server(tmp_path / "data", "cimd-short-fetch", extra_env={
        "IMAGEMCP_CIMD_TEST_ALLOW_ORIGINS": docs, "IMAGEMCP_CIMD_TEST_FETCH_TIMEOUT_MS": SHORT_FETCH_TIMEOUT_MS})
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
    ("{docs}/other.json", "names another client_id"),
    ("{docs}/", "must have a path"),
])
def test_bad_metadata_document_urls_are_refused_with_the_reason(cimd_server, docs, url, reason):
    port = docs.rsplit(":", 1)[1]
    assert_refused(cimd_server, url.format(docs=docs, port=port), reason)


def test_a_metadata_document_slower_than_the_fetch_limit_is_refused(short_fetch_server, docs):
    # The document answers only after the test: every answer below is the server giving up. The
    # client waits less than the real 5 s limit, so the answers must come from the short one; were
    # the fetch unbounded, the requests would fail on the client's timeout.
    assert_refused(short_fetch_server, f"{docs}/slow.json", "timed out", client_timeout=3)


def assert_refused(server, client_id: str, reason: str, client_timeout: float = 5) -> None:
    """The authorization endpoint refuses `client_id` with `reason` on its error page, and the token
    endpoint does not know it either."""
    _, challenge = pkce()
    r = httpx.get(authorize_url(server, client_id, challenge, "s"), follow_redirects=False,
                  timeout=client_timeout)
    assert r.status_code == 400, (client_id, r.status_code)
    assert "location" not in r.headers, "never redirect for a client that cannot be trusted"
    assert reason in r.text, (client_id, r.text[:500])
    # The token endpoint does not know such a client either (it fetches the document again).
    t = httpx.post(f"{server.url}/oauth/token", data={
        "grant_type": "authorization_code", "code": "imc_" + "0" * 64, "client_id": client_id,
        "redirect_uri": REDIRECT, "code_verifier": "v" * 43}, timeout=client_timeout)
    assert t.status_code in (400, 401) and t.json()["error"] in ("invalid_client", "invalid_request")


def test_only_the_documents_redirect_uris_are_accepted(cimd_server, docs):
    _, challenge = pkce()
    r = httpx.get(authorize_url(cimd_server, f"{docs}/client.json", challenge, "s",
                                redirect_uri="http://127.0.0.1:9/elsewhere"), follow_redirects=False)
    assert r.status_code == 400 and "location" not in r.headers
    assert "not registered" in r.text
