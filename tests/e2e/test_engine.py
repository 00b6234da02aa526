"""The generation engine against the real binary: a campaign batch whose process is killed
(SIGKILL) mid-batch is finished by the next process on the same data directory, with every item
generated exactly once; the same submission with one idempotency key is one job. On a Free
organisation (billing on, against the fake Stripe) a kill while items are in flight neither burns
quota nor stores an item twice, and the campaign's files download under their names."""

from __future__ import annotations

import json
import signal
import time

import httpx2 as httpx
import pytest

from helpers import LOG_DIR, image_size, start_fake_openai, start_server
from test_billing import SECRET_KEY, WEBHOOK_SECRET, FakeStripe

MODERN = "2026-07-28"
ACCEPT = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
GENERATIONS = "/v1/images/generations"


def call_tool(server, name: str, arguments: dict) -> dict:
    """One `tools/call` in the 2026-07-28 shape; its `structuredContent`."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": name, "arguments": arguments,
        "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN,
                  "io.modelcontextprotocol/clientCapabilities": {}}}}
    headers = dict(ACCEPT, **{"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": name})
    with server.http() as http:
        r = http.post("/mcp", content=json.dumps(body), headers=headers)
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    assert result["isError"] is False, result
    return result["structuredContent"]


def wait_for(server, job_id: str, done, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        view = call_tool(server, "openai_get_job", {"job_id": job_id})
        if done(view):
            return view
        assert time.monotonic() < deadline, f"job stuck: {view}"
        time.sleep(0.1)


def generations(fake) -> int:
    return sum(1 for r in fake.requests() if r["path"] == GENERATIONS)


def test_a_batch_killed_after_item_3_of_10_is_finished_by_the_next_process_exactly_once(tmp_path):
    fake = start_fake_openai("fake-openai-engine")
    data = tmp_path / "data"
    campaign = {"campaign": "crash", "template": "presentation", "slides": 10, "prompt": "a paper boat",
                "quality": "low", "idempotency_key": "crash-test-1"}
    first = second = None
    try:
        # Seven of the ten renders hang: the consumer finishes three items, then the process dies.
        fake.faults([{"hang_ms": 600_000, "times": 7, "path": "/images/generations"}])
        first = start_server(data, "imagemcp-engine-1", fake)
        job = call_tool(first, "openai_generate_campaign_batch", campaign)
        assert (job["items_total"], job["items_done"]) == (10, 0)
        view = wait_for(first, job["job_id"], lambda v: v["items_done"] >= 3)
        assert view["items_done"] == 3, view
        assert generations(fake) == 10, "three finished, seven hanging"
        first.process.proc.send_signal(signal.SIGKILL)
        first.process.proc.wait(timeout=15)
        first.process.stop()

        fake.reset()
        second = start_server(data, "imagemcp-engine-2", fake, key=first.key)
        # The same submission is the same job, whatever state it is in.
        again = call_tool(second, "openai_generate_campaign_batch", campaign)
        assert again["job_id"] == job["job_id"]
        done = wait_for(second, job["job_id"], lambda v: v["status"] in ("done", "failed"))
        assert (done["status"], done["items_done"], done["items_failed"]) == ("done", 10, 0), done
        assert generations(fake) == 7, "only the unfinished items were generated again"

        names = sorted(i["result"]["file_name"] for i in done["items"])
        assert names == sorted(f"crash_slide{n:02}_v1.png" for n in range(1, 11)), names
        ids = [i["result"]["image_id"] for i in done["items"]]
        assert len(set(ids)) == 10, "one image per item"
        with second.http() as http:
            listed = http.get("/v1/images", params={"limit": 100}).json()["images"]
        assert sorted(i["id"] for i in listed) == sorted(ids), "no duplicate and no missing image"
        assert "redelivering the jobs a previous process left unfinished" in second.log()
    finally:
        for s in (first, second):
            if s is not None:
                s.process.stop()
        fake.process.stop()


def in_flight(fake) -> int:
    """Generation requests the fake has received and not answered yet."""
    return sum(1 for r in fake.requests() if r["path"] == GENERATIONS and r.get("status") is None)


def billed_server(data, name: str, fake, stripe: FakeStripe, key: str | None = None):
    """The local binary with billing on: its organisation has no subscription, so it is on Free
    (10 images a period)."""
    with open(LOG_DIR / "secrets-under-test.txt", "a") as f:
        f.write(f"{SECRET_KEY}\n{WEBHOOK_SECRET}\n")
    return start_server(data, name, fake, key=key, extra_env={
        "STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": stripe.url, "STRIPE_PRO_PRICE": "price_pro", "STRIPE_TEAM_PRICE": "price_team",
    })


@pytest.mark.parametrize("kill_after", [1, 6])
def test_a_free_campaign_killed_with_items_in_flight_ends_with_each_item_once_and_its_quota_whole(
        tmp_path, kill_after):
    fake = start_fake_openai(f"fake-openai-free-crash-{kill_after}")
    stripe = FakeStripe()
    data = tmp_path / "data"
    # Ten slides on Free's ten images: one image held twice or kept by a dead process, and the
    # last item fails "used up".
    campaign = {"campaign_name": "Crash Test", "template_type": "presentation", "slides": 10,
                "core_prompt": "a paper boat", "quality": "low"}
    first = second = None
    try:
        fake.faults([{"latency_ms": 1000}])
        first = billed_server(data, f"imagemcp-free-crash-{kill_after}-1", fake, stripe)
        job = call_tool(first, "openai_generate_campaign_batch", campaign)
        deadline = time.monotonic() + 90
        # Killed while renders are in flight (their quota held), after `kill_after` were asked for.
        while not (generations(fake) >= kill_after and in_flight(fake) >= 1):
            assert time.monotonic() < deadline, (
                f"within 90 s, never {kill_after} renders asked for with one in flight: {fake.requests()}")
            time.sleep(0.05)
        first.process.proc.send_signal(signal.SIGKILL)
        first.process.proc.wait(timeout=15)
        first.process.stop()

        second = billed_server(data, f"imagemcp-free-crash-{kill_after}-2", fake, stripe, key=first.key)
        done = wait_for(second, job["job_id"], lambda v: v["status"] in ("done", "failed"))
        assert (done["status"], done["items_done"], done["items_failed"]) == ("done", 10, 0), done
        ids = sorted(i["result"]["image_id"] for i in done["items"])
        assert len(set(ids)) == 10, "one image per item"
        listed = call_tool(second, "openai_list_images", {"limit": 100})["images"]
        assert sorted(i["id"] for i in listed) == ids, "no image made twice, none orphaned but listed"
        with second.http() as http:
            usage = http.get("/v1/billing/usage")
        assert usage.status_code == 200, usage.text
        summary = usage.json()
        assert (summary["tier"], summary["used_images"], summary["remaining_images"]) == ("free", 10, 0), summary

        # The campaign's files: 16:9 slides, downloaded under their names.
        slide = next(i["result"] for i in done["items"] if i["result"]["asset_type"] == "slide03")
        assert slide["file_name"] == "crash-test_slide03_v1.png"
        image = call_tool(second, "openai_get_image", {"image_id": slide["image_id"]})
        assert image["file_name"] == "crash-test_slide03_v1.png"
        download = httpx.get(image["url"], timeout=30)
        assert download.status_code == 200
        assert download.headers["content-disposition"] == 'attachment; filename="crash-test_slide03_v1.png"'
        assert image_size(download.content) == (1536, 864)
    finally:
        for s in (first, second):
            if s is not None:
                s.process.stop()
        fake.process.stop()
        stripe.process.stop()


def test_repeats_come_from_the_cache_over_rest_and_admins_see_the_metrics(offline_server):
    s = offline_server
    body = {"prompt": "a lighthouse on a rocky cliff at sunset", "size": "1024x1024", "quality": "low"}
    with s.http() as http:
        first = http.post("/v1/images", json=body)
        assert first.status_code == 201, first.text
        assert "cache" not in first.json()
        again = http.post("/v1/images", json=dict(body, prompt="Lighthouse on rocky cliffs at sunset."))
        assert again.status_code == 200, again.text
        hit = again.json()
        assert hit["cache"]["tier"] in ("l1", "l2", "l3") and hit["cost_micros"] == 0
        assert [i["id"] for i in hit["images"]] == [i["id"] for i in first.json()["images"]]
        different = http.post("/v1/images", json=dict(body, prompt="a lighthouse on a rocky cliff at sunrise"))
        assert different.status_code == 201 and "cache" not in different.json()

        metrics = http.get("/v1/metrics")
        assert metrics.status_code == 200, metrics.text
        m = metrics.json()
        assert (m["requests"], m["images"]) == (3, 2), m
        assert m["cache"]["misses"] == 2 and m["cache"]["l1_hits"] + m["cache"]["l2_hits"] + m["cache"]["l3_hits"] == 1
        assert m["cache"]["hit_rate_milli"] == 333

        off = http.put("/v1/settings/cache", json={"enabled": False})
        assert off.status_code == 200 and off.json() == {"enabled": False}
        assert http.get("/v1/settings/cache").json() == {"enabled": False}
        assert http.post("/v1/images", json=body).status_code == 201, "opted out: made again"
        bad = http.put("/v1/settings/cache", json={"enabled": "yes"})
        assert bad.status_code == 400, bad.text
