"""MCP as of 2026-07-28 against the real binary, as raw JSON-RPC over HTTP exactly as the spec shows
it (the Python SDK has no tasks runtime): the Tasks extension (task handles polled to their full
result, cancel, the errors), cost confirmation through `input_required` with an authenticated,
single-use `requestState`, and Origin checked before any credential."""

from __future__ import annotations

import json
import time

import httpx2 as httpx

from helpers import start_server

MODERN = "2026-07-28"
TASKS = "io.modelcontextprotocol/tasks"
ACCEPT = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


class Raw:
    """A 2026-07-28 client in a few lines: every request carries the `_meta` envelope and the
    routing headers (Mcp-Name from the tool name, uri or task id)."""

    def __init__(self, server, caps: dict | None = None):
        self.http = server.http()
        self.caps = caps or {}
        self.next_id = 0

    def request(self, method: str, params: dict | None = None, caps: dict | None = None,
                name: str | None = None) -> httpx.Response:
        params = dict(params or {})
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": self.caps if caps is None else caps,
        }
        self.next_id += 1
        headers = dict(ACCEPT, **{"MCP-Protocol-Version": MODERN, "Mcp-Method": method})
        routed = name or params.get("name") or params.get("taskId") or params.get("uri")
        if routed is not None:
            headers["Mcp-Name"] = routed
        body = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        return self.http.post("/mcp", content=json.dumps(body), headers=headers)

    def result(self, method: str, params: dict | None = None, **kw) -> dict:
        r = self.request(method, params, **kw)
        assert r.status_code == 200, r.text
        body = r.json()
        assert "result" in body, body
        return body["result"]

    def error(self, method: str, params: dict | None = None, **kw) -> tuple[int, dict]:
        r = self.request(method, params, **kw)
        return r.status_code, r.json()["error"]

    def poll(self, task_id: str, until=("completed", "cancelled", "failed"), timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            task = self.result("tasks/get", {"taskId": task_id})
            assert task["resultType"] == "complete" and task["taskId"] == task_id
            if task["status"] in until:
                return task
            assert time.monotonic() < deadline, f"task stuck: {task}"
            time.sleep(min(task["pollIntervalMs"], 500) / 1000)


def test_a_campaign_task_runs_in_the_binary_and_is_polled_to_its_full_result(offline_server):
    raw = Raw(offline_server, {"extensions": {TASKS: {}}})
    discover = raw.result("server/discover")
    assert discover["capabilities"]["extensions"][TASKS] == {}

    created = raw.result("tools/call", {"name": "openai_generate_campaign_batch", "arguments": {
        "campaign": "launch", "template": "email", "prompt": "a paper boat", "quality": "low"}})
    assert created["resultType"] == "task", created
    assert created["status"] == "working"
    assert {"taskId", "createdAt", "lastUpdatedAt", "ttlMs", "pollIntervalMs", "statusMessage"} <= created.keys()
    done = raw.poll(created["taskId"])
    assert done["status"] == "completed", done
    assert done["result"]["isError"] is False
    view = done["result"]["structuredContent"]
    assert (view["items_done"], view["items_total"]) == (4, 4)
    assert sorted(i["result"]["file_name"] for i in view["items"]) == [
        "launch_body1_v1.png", "launch_body2_v1.png", "launch_body3_v1.png", "launch_header_v1.png"]
    assert "4 of 4 item(s) done" in done["statusMessage"]

    # Cancelling a finished task: -32602, and the task is unchanged.
    status, err = raw.error("tasks/cancel", {"taskId": created["taskId"]})
    assert (status, err["code"]) == (400, -32602) and "terminal" in err["message"]
    assert raw.result("tasks/get", {"taskId": created["taskId"]})["status"] == "completed"
    # Unknown task ids, and no extension declared.
    for bad in ["job_0190a0b0-0000-7000-8000-000000000000", "nope"]:
        status, err = raw.error("tasks/get", {"taskId": bad})
        assert (status, err["code"]) == (400, -32602), bad
    status, err = raw.error("tasks/get", {"taskId": created["taskId"]}, caps={})
    assert (status, err["code"]) == (400, -32021)
    assert err["data"]["requiredCapabilities"] == {"extensions": {TASKS: {}}}
    # Mcp-Name must match the task id in the body.
    status, err = raw.error("tasks/get", {"taskId": created["taskId"]}, name="job_someone_else")
    assert (status, err["code"]) == (400, -32020)


def test_clients_that_did_not_declare_tasks_get_the_job_id(offline_server):
    raw = Raw(offline_server)
    result = raw.result("tools/call", {"name": "openai_generate_campaign_batch", "arguments": {
        "campaign": "launch", "template": "email", "prompt": "a paper boat", "quality": "low"}})
    assert result["resultType"] == "complete" and result["structuredContent"]["job_id"].startswith("job_")
    assert "openai_get_job" in result["content"][0]["text"]


def test_cost_confirmation_through_input_required(tmp_path, fake):
    fake.reset()
    server = start_server(tmp_path / "data", "confirm", fake,
                          extra_env={"IMAGEMCP_COST_CONFIRMATION_CENTS": "1"})
    try:
        raw = Raw(server, {"elicitation": {"form": {}}})
        args = {"prompt": "a red kite", "quality": "high", "size": "1024x1024"}
        asked = raw.result("tools/call", {"name": "openai_generate_image", "arguments": args})
        assert asked["resultType"] == "input_required", asked
        assert "ttlMs" not in asked and "cacheScope" not in asked
        request = asked["inputRequests"]["confirm_cost"]
        assert request["method"] == "elicitation/create" and request["params"]["mode"] == "form"
        state = asked["requestState"]
        calls_before = len(fake.requests())

        # Declined: nothing generated, nothing sent to the model.
        declined = raw.result("tools/call", {"name": "openai_generate_image", "arguments": args,
                                             "requestState": state,
                                             "inputResponses": {"confirm_cost": {"action": "decline"}}})
        assert declined["isError"] is True
        assert len(fake.requests()) == calls_before
        # Tampered.
        forged = state[:-3] + ("AAA" if not state.endswith("AAA") else "BBB")
        status, err = raw.error("tools/call", {"name": "openai_generate_image", "arguments": args,
                                               "requestState": forged,
                                               "inputResponses": {"confirm_cost": {"action": "accept", "content": {"confirm": True}}}})
        assert (status, err["code"]) == (400, -32602)
        # Accepted: runs once.
        accept = {"confirm_cost": {"action": "accept", "content": {"confirm": True}}}
        done = raw.result("tools/call", {"name": "openai_generate_image", "arguments": args,
                                         "requestState": state, "inputResponses": accept})
        assert done["resultType"] == "complete" and done["isError"] is False, done
        # Replayed.
        status, err = raw.error("tools/call", {"name": "openai_generate_image", "arguments": args,
                                               "requestState": state, "inputResponses": accept})
        assert (status, err["code"]) == (400, -32602) and "already been used" in err["message"]
        listed = raw.result("tools/call", {"name": "openai_list_images", "arguments": {}})
        assert len(listed["structuredContent"]["images"]) == 1

        # A client without elicitation is told the estimate and the argument that confirms it.
        plain = Raw(server)
        refused = plain.result("tools/call", {"name": "openai_generate_image", "arguments": args})
        assert refused["isError"] is True
        details = refused["_meta"]["io.imagemcp/error"]
        assert details["code"] == "confirmation_required" and details["argument"] == "confirm_cost_cents"
        confirmed = plain.result("tools/call", {"name": "openai_generate_image", "arguments": dict(
            args, confirm_cost_cents=details["estimate_cents"])})
        assert confirmed["isError"] is False
    finally:
        server.process.stop()


def test_origin_is_checked_before_the_credential(offline_server):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}})
    r = httpx.post(offline_server.mcp_url, content=body, headers=dict(ACCEPT, Origin="https://evil.example"))
    assert r.status_code == 403, "a foreign Origin is refused before the missing token is noticed"
    r = httpx.post(offline_server.mcp_url, content=body, headers=dict(ACCEPT, Origin=offline_server.url))
    assert r.status_code == 401
    assert httpx.get(offline_server.mcp_url, headers={"Authorization": f"Bearer {offline_server.key}"}).status_code == 405


def test_the_official_sdk_confirms_the_cost_in_both_eras(tmp_path, fake):
    """The Python SDK answers our confirmation itself: by `elicitation/create` on the call's stream
    in the handshake era, by retrying with `inputResponses` and the `requestState` on 2026-07-28."""
    import asyncio

    from mcp import types

    fake.reset()
    server = start_server(tmp_path / "data", "confirm-sdk", fake,
                          extra_env={"IMAGEMCP_COST_CONFIRMATION_CENTS": "1"})
    try:
        asked: list[str] = []

        def answer(confirm: bool):
            async def callback(context, params):
                asked.append(params.message)
                if not confirm:
                    return types.ElicitResult(action="decline")
                return types.ElicitResult(action="accept", content={"confirm": True})
            return callback

        async def call(mode: str, confirm: bool):
            from mcp import Client
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client
            http = create_mcp_http_client(headers={"Authorization": f"Bearer {server.key}"})
            async with Client(streamable_http_client(server.mcp_url, http_client=http), mode=mode,
                              elicitation_callback=answer(confirm), read_timeout_seconds=60) as client:
                return await client.call_tool("openai_generate_image",
                                              {"prompt": "a blue kite", "quality": "high", "size": "1024x1024",
                                               "fresh": True})

        for mode in ["legacy", "2026-07-28"]:
            asked.clear()
            result = asyncio.run(call(mode, True))
            assert result.is_error is False, (mode, result)
            assert len(asked) == 1 and "$" in asked[0], (mode, asked)
            result = asyncio.run(call(mode, False))
            assert result.is_error is True, mode
        listed = Raw(server).result("tools/call", {"name": "openai_list_images", "arguments": {}})
        assert len(listed["structuredContent"]["images"]) == 2, "one image per accepted call, none per decline"
    finally:
        server.process.stop()


def test_confirmation_thresholds_are_set_per_organisation_and_user(openai_server):
    s = openai_server
    with s.http() as http:
        r = http.get("/v1/settings/cost-confirmation")
        assert r.status_code == 200 and r.json()["effective_threshold_cents"] == 100
        r = http.put("/v1/settings/cost-confirmation", json={"scope": "org", "threshold_cents": 2})
        assert r.status_code == 200 and r.json()["org_threshold_cents"] == 2
        r = http.put("/v1/settings/cost-confirmation", json={"scope": "user", "threshold_cents": 1})
        assert r.json()["effective_threshold_cents"] == 1, "the lower of the two applies"
        bad = http.put("/v1/settings/cost-confirmation", json={"scope": "team", "threshold_cents": 1})
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "scope"
    raw = Raw(s)
    args = {"prompt": "a green kite", "quality": "high", "size": "1024x1024"}
    refused = raw.result("tools/call", {"name": "openai_generate_image", "arguments": args})
    assert refused["_meta"]["io.imagemcp/error"]["threshold_cents"] == 1
    with s.http() as http:
        for scope in ["user", "org"]:
            http.put("/v1/settings/cost-confirmation", json={"scope": scope, "threshold_cents": None})
        assert http.get("/v1/settings/cost-confirmation").json()["effective_threshold_cents"] == 100
    done = raw.result("tools/call", {"name": "openai_generate_image", "arguments": args})
    assert done["isError"] is False, "under the default threshold nothing is asked"
