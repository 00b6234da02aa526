"""The HTTP surface without an SDK in the way: authentication, raw JSON-RPC edge cases of both
protocol eras, the REST API, first-run set-up, and what the logs must never contain."""

from __future__ import annotations

import json

import httpx2 as httpx
import pytest

from helpers import create_key, rpc, start_server

MODERN = "2026-07-28"
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def modern_headers(method: str, name: str | None = None, version: str = MODERN) -> dict[str, str]:
    h = dict(JSON_HEADERS, **{"MCP-Protocol-Version": version, "Mcp-Method": method})
    if name is not None:
        h["Mcp-Name"] = name
    return h


def modern_body(method: str, params: dict | None = None, version: str = MODERN) -> str:
    params = dict(params or {})
    params["_meta"] = {
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    return rpc(method, params)


def test_missing_or_wrong_key_is_401_with_a_challenge(offline_server):
    for headers in [{}, {"Authorization": "Bearer imk_000000000000_wrong"}, {"Authorization": "Basic Zm9vOmJhcg=="}]:
        r = httpx.post(offline_server.mcp_url, content=rpc("tools/list"), headers=dict(JSON_HEADERS, **headers))
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"].startswith("Bearer ")
        r = httpx.get(f"{offline_server.url}/v1/images", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    assert httpx.get(f"{offline_server.url}/healthz").json()["status"] == "ok"


def test_raw_jsonrpc_edge_cases(offline_server):
    with offline_server.http() as http:
        r = http.post("/mcp", content="{not json", headers=JSON_HEADERS)
        assert r.status_code == 400 and r.json()["error"]["code"] == -32700
        r = http.post("/mcp", content="[]", headers=JSON_HEADERS)
        assert r.status_code == 400 and r.json()["error"]["code"] == -32600
        r = http.post("/mcp", content=json.dumps({"jsonrpc": "1.0", "id": 1, "method": "ping"}), headers=JSON_HEADERS)
        assert r.json()["error"]["code"] == -32600
        # A handshake-era request without a session, then with an unknown one.
        r = http.post("/mcp", content=rpc("tools/list"), headers=JSON_HEADERS)
        assert r.status_code == 400 and "Mcp-Session-Id" in r.json()["error"]["message"]
        r = http.post("/mcp", content=rpc("tools/list"), headers=dict(JSON_HEADERS, **{"Mcp-Session-Id": "0" * 32}))
        assert r.status_code == 404
        # The handshake: a session id, then requests under it, then DELETE ends it.
        init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}
        r = http.post("/mcp", content=rpc("initialize", init), headers=JSON_HEADERS)
        assert r.status_code == 200 and r.json()["result"]["protocolVersion"] == "2025-06-18"
        assert "resultType" not in r.json()["result"]
        sid = r.headers["mcp-session-id"]
        with_session = dict(JSON_HEADERS, **{"Mcp-Session-Id": sid})
        r = http.post("/mcp", content=rpc("tools/list"), headers=with_session)
        assert len(r.json()["result"]["tools"]) == 31 and "ttlMs" not in r.json()["result"]
        r = http.post("/mcp", content=rpc("no/such_method"), headers=with_session)
        assert r.json()["error"]["code"] == -32601
        assert http.delete("/mcp", headers={"Mcp-Session-Id": sid}).status_code == 204
        assert http.post("/mcp", content=rpc("tools/list"), headers=with_session).status_code == 404
        # An unknown version asked for in initialize gets the newest handshake version we speak.
        r = http.post("/mcp", content=rpc("initialize", dict(init, protocolVersion="1999-01-01")), headers=JSON_HEADERS)
        assert r.json()["result"]["protocolVersion"] == "2025-11-25"
        # A session belongs to the key that opened it: another key cannot ride on it.
        r = http.post("/mcp", content=rpc("initialize", init), headers=JSON_HEADERS)
        sid = r.headers["mcp-session-id"]
        other = create_key(offline_server.data_dir)
        assert other != offline_server.key
        r = http.post("/mcp", content=rpc("tools/list"), headers=dict(JSON_HEADERS, **{"Mcp-Session-Id": sid, "Authorization": f"Bearer {other}"}))
        assert r.status_code == 404
        r = http.post("/mcp", content=rpc("tools/list"), headers=dict(JSON_HEADERS, **{"Mcp-Session-Id": sid}))
        assert r.status_code == 200


def test_modern_revision_checks_headers_against_the_body(offline_server):
    with offline_server.http() as http:
        r = http.post("/mcp", content=modern_body("server/discover"), headers=modern_headers("server/discover"))
        result = r.json()["result"]
        assert r.status_code == 200 and result["supportedVersions"] == [MODERN] and result["resultType"] == "complete"
        assert "tools" in result["capabilities"]
        r = http.post("/mcp", content=modern_body("tools/list"), headers=modern_headers("tools/list"))
        result = r.json()["result"]
        assert result["cacheScope"] == "private" and result["ttlMs"] > 0 and result["resultType"] == "complete"
        r = http.post("/mcp", content=modern_body("tools/list"), headers=modern_headers("tools/call"))
        assert r.status_code == 400 and r.json()["error"]["code"] == -32020
        call = {"name": "openai_list_images", "arguments": {}}
        r = http.post("/mcp", content=modern_body("tools/call", call), headers=modern_headers("tools/call", "openai_get_image"))
        assert r.status_code == 400 and r.json()["error"]["code"] == -32020
        r = http.post("/mcp", content=modern_body("tools/call", call), headers=modern_headers("tools/call", "openai_list_images"))
        assert r.status_code == 200 and r.json()["result"]["structuredContent"] == {"images": []}
        r = http.post("/mcp", content=modern_body("tools/list", version="2099-01-01"), headers=modern_headers("tools/list", version="2099-01-01"))
        assert r.status_code == 400 and r.json()["error"]["code"] == -32022
        assert MODERN in r.json()["error"]["data"]["supported"]
        r = http.post("/mcp", content=rpc("tools/list"), headers=modern_headers("tools/list"))
        assert r.status_code == 400 and r.json()["error"]["code"] == -32602, "the _meta envelope is required"
        assert http.get("/mcp").status_code == 405
        r = http.post("/mcp", content=modern_body("tools/list"), headers=dict(modern_headers("tools/list"), Origin="https://evil.example"))
        assert r.status_code == 403


def test_rest_api(server):
    with server.http() as http:
        r = http.post("/v1/images", json={"prompt": "a violet kite", "size": "1024x1536", "output_format": "jpeg"})
        assert r.status_code == 201, r.text
        image = r.json()["images"][0]
        assert (image["width"], image["height"], image["mime_type"]) == (1024, 1536, "image/jpeg")
        listed = http.get("/v1/images").json()
        assert [i["id"] for i in listed["images"]] == [image["id"]]
        assert http.get(f"/v1/images/{image['id']}").json()["prompt"] == "a violet kite"
        content = http.get(f"/v1/images/{image['id']}/content")
        assert content.headers["content-type"] == "image/jpeg" and content.content[:2] == b"\xff\xd8"
        assert len(content.content) == image["size_bytes"]
        bad = http.post("/v1/images", json={"prompt": "x", "n": 9})
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "n" and bad.json()["error"]["message"]
        assert http.post("/v1/images", content=b"{oops", headers={"Content-Type": "application/json"}).status_code == 400
        assert http.get("/v1/images/img_missing").status_code == 404
        assert http.get("/v1/images/not-an-id").json()["error"]["field"] == "image_id"
        assert http.delete(f"/v1/images/{image['id']}").json() == {
            "image_id": image["id"], "deleted": True, "already_deleted": False}
        assert http.get(f"/v1/images/{image['id']}").status_code == 410
        again = http.delete(f"/v1/images/{image['id']}")
        assert again.status_code == 200 and again.json()["already_deleted"] is True, again.text
        assert http.get("/v1/images?limit=0").status_code == 400


def test_every_refusal_is_the_documented_json_error(offline_server):
    with offline_server.http() as http:
        for path, field in [("/v1/images?limit=abc", "limit"), ("/v1/audit?verify=maybe", "verify")]:
            r = http.get(path)
            assert r.status_code == 400 and r.headers["content-type"] == "application/json", (path, r.text)
            assert r.json()["error"]["code"] == "invalid_argument" and r.json()["error"]["field"] == field, r.text
        r = http.post("/v1/images", json=["a costly square", "1024x1024", "high"])
        assert r.status_code == 400 and r.json()["error"]["field"] == "body", r.text
        r = http.get("/v1/nothing-here")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = http.patch("/v1/images")
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed" and "GET" in r.headers["allow"]
        assert http.get("/v1/images").json()["images"] == []


def test_wrongly_typed_initialize_params_are_refused(offline_server):
    with offline_server.http() as http:
        r = http.post("/mcp", content=rpc("initialize", {"protocolVersion": 17, "capabilities": "x"}), headers=JSON_HEADERS)
        assert r.status_code == 400 and "mcp-session-id" not in r.headers
        error = r.json()["error"]
        assert error["code"] == -32602 and error["data"]["fields"] == ["protocolVersion", "capabilities", "clientInfo"]
        assert "`protocolVersion`" in error["message"], error
        # The stateless revision's envelope is checked the same way.
        body = json.loads(modern_body("tools/list"))
        body["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] = "x"
        r = http.post("/mcp", content=json.dumps(body), headers=modern_headers("tools/list"))
        assert r.status_code == 400 and r.json()["error"]["code"] == -32602, r.text


def test_the_banner_names_the_openai_model_and_base_url(openai_server):
    line = openai_server.process.wait_for_line("Images: ")
    assert line.startswith("Images: OpenAI gpt-image-"), line
    assert line.endswith(f" at {openai_server.fake.url}/v1"), line
    assert "sk-test" not in "\n".join(openai_server.process.lines)


def test_first_run_prints_a_key_and_a_client_configuration(tmp_path):
    s = start_server(tmp_path / "fresh", "first-run", key="")
    try:
        assert s.process.wait_for_line("MCP URL: ") == f"MCP URL: {s.url}/mcp"
        assert s.process.wait_for_line("Images: ").startswith("Images: the offline model")
        key = s.process.wait_for_line("imk_")
        s.process.wait_for_line("}")
        config_start = s.process.lines.index("{")
        config = json.loads("\n".join(s.process.lines[config_start:]))
        assert config["mcpServers"]["imagemcp"]["headers"]["Authorization"] == f"Bearer {key}"
        assert httpx.get(f"{s.url}/v1/images", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    finally:
        s.process.stop()
    # A second start of the same data directory prints no new key.
    again = start_server(tmp_path / "fresh", "second-run", key="")
    try:
        assert not any(line.startswith("imk_") for line in again.process.lines)
    finally:
        again.process.stop()


def test_logs_never_contain_secrets(openai_server):
    with openai_server.http() as http:
        assert http.post("/v1/images", json={"prompt": "a lime square"}).status_code == 201
        http.get("/v1/images", headers={"Authorization": "Bearer imk_aaaaaaaaaaaa_wrongsecretvalue"})
    openai_server.process.stop()
    log = openai_server.log()
    assert log.strip(), "the server logged nothing"
    for line in log.splitlines():
        json.loads(line)  # --log-format json: every line is a JSON object
    for secret in [openai_server.key, "sk-test-secret-key-never-logged", "wrongsecretvalue"]:
        assert secret not in log


def test_key_injection_in_ids_is_refused_as_invalid(offline_server):
    """Ids become parts of table and blob keys: separators, traversal and NUL never get through."""
    with offline_server.http() as http:
        for raw in ["img_a%23b", "img_%2E%2E%2Fsecret", "img_a%00b", "img_" + "a" * 80, "conv_x", "img_a%20b"]:
            r = http.get(f"/v1/images/{raw}")
            assert r.status_code == 400, (raw, r.status_code, r.text)
            assert r.json()["error"]["field"] == "image_id"
            r = http.delete(f"/v1/images/{raw}")
            assert r.status_code == 400, raw
        r = http.post("/v1/images", json={"prompt": "x", "conversation_id": "conv_a#b"})
        assert r.status_code == 400 and r.json()["error"]["field"] == "conversation_id"
        assert http.get("/v1/images").json()["images"] == [], "nothing was written"
