"""Billing end to end: the local binary with Stripe configured against `infra/fake-stripe`, driven by
the official MCP client. Free refuses what Pro unlocks and names the upgrade; `openai_upgrade_plan`
returns a Checkout URL; completing it makes the fake send Stripe's signed webhooks to the server;
the usage summary then shows Pro's limits. Replayed, badly signed and stale deliveries change nothing,
nor does a signed event for a customer the server never created."""

from __future__ import annotations

import json
import sys
import time

import httpx2 as httpx
import pytest

from conftest import MODES
from helpers import LOG_DIR, ROOT, Process, base_env, start_server

pytestmark = pytest.mark.anyio

WEBHOOK_SECRET = "whsec_e2e_billing_never_logged"
SECRET_KEY = "sk_test_e2e_billing_never_logged"


class FakeStripe:
    def __init__(self) -> None:
        self.process = Process(
            [sys.executable, str(ROOT / "infra/fake-stripe/fake_stripe.py"), "--port", "0",
             "--price", "price_pro", "--price", "price_team", "--webhook-secret", WEBHOOK_SECRET,
             "--api-key", SECRET_KEY],
            base_env(), "fake-stripe.log")
        self.url = self.process.wait_for_line("fake-stripe listening on ").rsplit(" ", 1)[1]

    def post(self, path: str, body: dict | None = None) -> dict:
        r = httpx.post(f"{self.url}{path}", json=body or {}, timeout=120)
        assert r.status_code == 200, r.text
        return r.json()

    def get(self, path: str):
        return httpx.get(f"{self.url}{path}", timeout=30).json()


@pytest.fixture
def stripe():
    f = FakeStripe()
    yield f
    f.process.stop()


@pytest.fixture
def billed(tmp_path, stripe):
    with open(LOG_DIR / "secrets-under-test.txt", "a") as f:
        f.write(f"{SECRET_KEY}\n{WEBHOOK_SECRET}\n")
    s = start_server(tmp_path / "data", "billing", extra_env={
        "STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_WEBHOOK_SECRET": f"whsec_old_rotated_out,{WEBHOOK_SECRET}",
        "STRIPE_API_BASE": stripe.url, "STRIPE_PRO_PRICE": "price_pro", "STRIPE_TEAM_PRICE": "price_team",
    })
    stripe.post("/_fake/config", {"webhook_url": f"{s.url}/webhooks/stripe"})
    yield s
    s.process.stop()


def text_of(result) -> str:
    return " ".join(c.text for c in result.content if getattr(c, "type", "") == "text")


@pytest.mark.parametrize("mode", MODES)
async def test_upgrade_through_checkout_and_signed_webhooks_lifts_the_limits(billed, stripe, mode):
    async with billed.client(mode) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert {"openai_usage_summary", "openai_upgrade_plan", "openai_billing_portal"} <= tools

        free = (await client.call_tool("openai_usage_summary", {})).structured_content
        assert (free["tier"], free["included_images"], free["used_images"]) == ("free", 10, 0), free

        # Free: one variation per request; the refusal names Pro and where to upgrade.
        refused = await client.call_tool("openai_generate_image", {"prompt": "a blue kite", "n": 4})
        assert refused.is_error
        err = refused.meta["io.imagemcp/error"]
        assert err["code"] == "plan_limit" and err["unlocking_tier"] == "pro", err
        assert err["upgrade_url"] == f"{billed.url}/billing/upgrade"
        one = await client.call_tool("openai_generate_image", {"prompt": "a blue kite"})
        assert not one.is_error, text_of(one)

        up = await client.call_tool("openai_upgrade_plan", {"tier": "pro"})
        assert not up.is_error, text_of(up)
        checkout_url = up.structured_content["checkout_url"]
        assert checkout_url.startswith(f"{stripe.url}/checkout/cs_test_"), checkout_url
        assert checkout_url in text_of(up)

        # The buyer pays: the fake completes the session and sends the signed events in order.
        done = stripe.post(f"/checkout/{checkout_url.rsplit('/', 1)[1]}/complete")
        results = [(d["type"], d["status"], json.loads(d["body"])["result"]) for d in done["deliveries"]]
        assert results == [("checkout.session.completed", 200, "applied"),
                           ("customer.subscription.created", 200, "applied"),
                           ("invoice.paid", 200, "applied")], results

        pro = (await client.call_tool("openai_usage_summary", {})).structured_content
        assert (pro["tier"], pro["included_images"], pro["remaining_images"]) == ("pro", 200, 200), pro
        assert pro["period"].startswith("P"), "the subscription's billing period, not the calendar month"
        four = await client.call_tool("openai_generate_image", {"prompt": "a blue kite", "n": 4})
        assert not four.is_error, text_of(four)
        assert (await client.call_tool("openai_usage_summary", {})).structured_content["used_images"] == 4

        portal = await client.call_tool("openai_billing_portal", {})
        assert not portal.is_error and "/portal/bps_" in portal.structured_content["portal_url"]

    # What Stripe received: one customer for the org, the Pro price, our org as the reference.
    state = stripe.get("/_fake/state")
    assert len(state["customers"]) == 1
    (session,) = state["sessions"].values()
    assert session["client_reference_id"] == "org_default" and session["status"] == "complete"
    assert all(r["stripe_version"] == "2025-03-31.basil" for r in stripe.get("/_fake/requests"))


async def test_replayed_badly_signed_and_stale_webhooks_change_nothing(billed, stripe):
    async with billed.client("legacy") as client:
        up = (await client.call_tool("openai_upgrade_plan", {"tier": "team", "seats": 7})).structured_content
        assert (up["tier"], up["seats"], up["monthly_cents"]) == ("team", 7, 19_800)
        done = stripe.post(f"/checkout/{up['checkout_url'].rsplit('/', 1)[1]}/complete")
        assert [d["status"] for d in done["deliveries"]] == [200, 200, 200]
        team = (await client.call_tool("openai_usage_summary", {})).structured_content
        assert (team["tier"], team["seats"], team["included_images"]) == ("team", 7, 2000), team

        # The subscription is deleted mid-period: Free from now on.
        sub = next(iter(stripe.get("/_fake/state")["subscriptions"]))
        deleted = stripe.post(f"/_fake/subscriptions/{sub}", {"action": "delete"})
        assert [d["status"] for d in deleted["deliveries"]] == [200]
        gone = (await client.call_tool("openai_usage_summary", {})).structured_content
        assert (gone["tier"], gone["included_images"]) == ("free", 10), gone

        # Subscribing again works (a new checkout, the same customer).
        up = (await client.call_tool("openai_upgrade_plan", {"tier": "pro"})).structured_content
        stripe.post(f"/checkout/{up['checkout_url'].rsplit('/', 1)[1]}/complete")
        assert (await client.call_tool("openai_usage_summary", {})).structured_content["tier"] == "pro"
        assert len(stripe.get("/_fake/state")["customers"]) == 1

        # Stripe retries the old cancellation: a duplicate, the new Pro plan stays.
        old = next(w for w in stripe.get("/_fake/webhooks") if w["event"] == deleted["events"][0])
        r = stripe.post("/_fake/webhooks/send", {"event": old["payload"]})
        assert json.loads(r["deliveries"][0]["body"])["result"] == "duplicate", r
        assert (await client.call_tool("openai_usage_summary", {})).structured_content["tier"] == "pro"

        # A correctly signed cancellation for a customer this server never created, naming our org in
        # its metadata (a subscription made in the dashboard, another integration): ignored.
        stranger = {**old["payload"], "id": f"evt_stranger_{time.time_ns()}", "created": int(time.time()) + 5}
        stranger["data"] = {"object": {**old["payload"]["data"]["object"], "customer": "cus_not_ours",
                                       "metadata": {"org_id": "org_default"}}}
        r = stripe.post("/_fake/webhooks/send", {"event": stranger})
        assert [(d["status"], json.loads(d["body"])["result"]) for d in r["deliveries"]] == [
            (200, "ignored: event for an unknown customer")], r
        assert (await client.call_tool("openai_usage_summary", {})).structured_content["tier"] == "pro"

        # A forged cancellation (another secret) and a stale one (signed 400 s ago): 401, no change.
        forged = {**old["payload"], "id": f"evt_forged_{time.time_ns()}", "created": int(time.time()) + 10}
        for kwargs in ({"secret": "whsec_attacker"}, {"skew_s": -400}):
            r = stripe.post("/_fake/webhooks/send", {"event": forged, **kwargs})
            assert [d["status"] for d in r["deliveries"]] == [401], r
        assert (await client.call_tool("openai_usage_summary", {})).structured_content["tier"] == "pro"

    # The unsigned case over plain HTTP: no Stripe-Signature at all.
    r = httpx.post(f"{billed.url}/webhooks/stripe", content=json.dumps(forged), timeout=30)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    assert WEBHOOK_SECRET not in r.text

