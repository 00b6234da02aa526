#!/usr/bin/env python3
"""fake-stripe: a local stand-in for the parts of Stripe's API imagemcp uses, for tests only.

Speaks Stripe's wire format: form-encoded requests (`a[b][0]=c` brackets), JSON responses, errors as
`{"error": {"type", "code", "message", "param"}}`, `Authorization: Bearer sk_...`, `Idempotency-Key`
replay (same key and body: the first answer again; same key, other body: 400 idempotency_error).
Can also *send* webhooks, signed the way Stripe signs them (`Stripe-Signature: t=...,v1=HMAC-SHA256
(secret, "t.payload")`), so an end-to-end test can drive checkout -> subscription -> org upgraded.

Stdlib only (no pip install needed). Run:

    python3 infra/fake-stripe/fake_stripe.py --port 0 --webhook-url http://127.0.0.1:8787/webhooks/stripe \
        --webhook-secret whsec_test

The first stdout line is `fake-stripe listening on http://127.0.0.1:PORT`. See README.md for routes.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import json
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_fake{next(_ids):06d}{secrets.token_hex(4)}"


def parse_form(body: str) -> dict:
    """Stripe's nested form encoding (`line_items[0][price]=x`) into nested dicts/lists."""
    out: dict = {}
    for key, value in urllib.parse.parse_qsl(body, keep_blank_values=True, strict_parsing=False):
        parts = re.findall(r"[^\[\]]+", key)
        if not parts:
            continue
        node = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return out


def sign(payload: bytes, secret: str, t: int) -> str:
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class StripeError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 type_: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type_

    def body(self) -> dict:
        err = {"type": self.type, "message": self.message}
        if self.param:
            err["param"] = self.param
        if self.code:
            err["code"] = self.code
        return {"error": err}


class State:
    """Everything the fake remembers; one lock guards it all (requests are small)."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.args = args
        self.base = ""
        self.webhook_url: str | None = args.webhook_url
        self.webhook_secret: str = args.webhook_secret
        self.prices: set[str] = set(args.price or [])
        self.reset()

    def reset(self):
        self.customers: dict[str, dict] = {}
        self.sessions: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {}
        self.meter_events: dict[str, dict] = {}
        self.idempotency: dict[str, tuple[str, int, dict]] = {}
        self.requests: list[dict] = []
        self.faults: list[dict] = []
        self.latency_ms = self.args.latency_ms
        self.webhooks_sent: list[dict] = []
        self.clock_offset = 0

    def now(self) -> int:
        return int(time.time()) + self.clock_offset

    # -- API objects ------------------------------------------------------------------------------

    def create_customer(self, form: dict) -> dict:
        cus = {
            "id": new_id("cus"), "object": "customer", "created": self.now(), "livemode": False,
            "name": form.get("name"), "email": form.get("email"), "metadata": form.get("metadata", {}),
        }
        self.customers[cus["id"]] = cus
        return cus

    def create_checkout(self, form: dict) -> dict:
        if form.get("mode") != "subscription":
            raise StripeError(400, "mode must be subscription for this fake", "mode")
        customer = form.get("customer")
        if not customer or customer not in self.customers:
            raise StripeError(400, f"No such customer: '{customer}'", "customer", "resource_missing")
        items = form.get("line_items", {})
        item = items.get("0") if isinstance(items, dict) else None
        if not item or not item.get("price"):
            raise StripeError(400, "Missing required param: line_items[0][price].", "line_items[0][price]",
                              "parameter_missing")
        if self.prices and item["price"] not in self.prices:
            raise StripeError(400, f"No such price: '{item['price']}'", "line_items[0][price]", "resource_missing")
        try:
            quantity = int(item.get("quantity", "1"))
        except ValueError:
            raise StripeError(400, "Invalid integer: quantity", "line_items[0][quantity]")
        if quantity < 1 or quantity > 9999:
            raise StripeError(400, "quantity must be between 1 and 9999", "line_items[0][quantity]")
        for url in ("success_url", "cancel_url"):
            if not form.get(url, "").startswith(("http://", "https://")):
                raise StripeError(400, f"Invalid URL: {url}", url, "url_invalid")
        sid = new_id("cs_test")
        session = {
            "id": sid, "object": "checkout.session", "mode": "subscription", "status": "open",
            "customer": customer, "client_reference_id": form.get("client_reference_id"),
            "metadata": form.get("metadata", {}), "success_url": form["success_url"],
            "cancel_url": form["cancel_url"], "url": f"{self.base}/checkout/{sid}", "subscription": None,
            "created": self.now(), "livemode": False, "payment_status": "unpaid",
            "_price": item["price"], "_quantity": quantity,
            "_sub_metadata": form.get("subscription_data", {}).get("metadata", {}),
        }
        self.sessions[sid] = session
        return public(session)

    def create_portal(self, form: dict) -> dict:
        customer = form.get("customer")
        if not customer or customer not in self.customers:
            raise StripeError(400, f"No such customer: '{customer}'", "customer", "resource_missing")
        pid = new_id("bps")
        return {"id": pid, "object": "billing_portal.session", "customer": customer,
                "return_url": form.get("return_url"), "url": f"{self.base}/portal/{pid}", "livemode": False,
                "created": self.now()}

    def create_meter_event(self, form: dict) -> dict:
        name = form.get("event_name")
        payload = form.get("payload", {})
        if not name:
            raise StripeError(400, "Missing required param: event_name.", "event_name", "parameter_missing")
        if payload.get("stripe_customer_id") not in self.customers:
            raise StripeError(400, "No such customer in payload[stripe_customer_id]",
                              "payload[stripe_customer_id]", "resource_missing")
        if not re.fullmatch(r"\d+", payload.get("value", "")):
            raise StripeError(400, "payload[value] must be a whole number", "payload[value]")
        ident = form.get("identifier") or new_id("mev")
        # Stripe de-duplicates meter events on `identifier` (within 24 h).
        if ident in self.meter_events:
            raise StripeError(400, "An event with this identifier already exists", "identifier",
                              "duplicate_meter_event")
        event = {"object": "billing.meter_event", "event_name": name, "identifier": ident,
                 "payload": payload, "timestamp": int(form.get("timestamp") or self.now()),
                 "created": self.now(), "livemode": False}
        self.meter_events[ident] = event
        return event

    # -- subscriptions and the webhooks they send -------------------------------------------------

    def subscription_object(self, sub: dict) -> dict:
        return {
            "id": sub["id"], "object": "subscription", "customer": sub["customer"], "status": sub["status"],
            "metadata": sub["metadata"], "created": sub["created"], "livemode": False,
            "cancel_at_period_end": False,
            "items": {"object": "list", "data": [{
                "id": sub["item_id"], "object": "subscription_item", "quantity": sub["quantity"],
                "price": {"id": sub["price"], "object": "price", "recurring": {"interval": "month"}},
                "current_period_start": sub["period_start"], "current_period_end": sub["period_end"],
            }]},
        }

    def event(self, kind: str, obj: dict) -> dict:
        return {"id": new_id("evt"), "object": "event", "api_version": "2025-03-31.basil",
                "created": self.now(), "livemode": False, "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None}, "type": kind, "data": {"object": obj}}

    def complete_checkout(self, sid: str) -> list[dict]:
        session = self.sessions.get(sid)
        if session is None:
            raise StripeError(404, f"No such checkout.session: '{sid}'", "id", "resource_missing")
        if session["status"] != "open":
            raise StripeError(400, "This Checkout Session is no longer open.", None, "checkout_session_completed")
        now = self.now()
        sub = {"id": new_id("sub"), "item_id": new_id("si"), "customer": session["customer"],
               "status": "active", "price": session["_price"], "quantity": session["_quantity"],
               "metadata": session["_sub_metadata"], "created": now, "period_start": now,
               "period_end": now + 30 * 86400}
        self.subscriptions[sub["id"]] = sub
        session.update(status="complete", payment_status="paid", subscription=sub["id"])
        events = [self.event("checkout.session.completed", public(session))]
        events.append(self.event("customer.subscription.created", self.subscription_object(sub)))
        events.append(self.event("invoice.paid", {
            "id": new_id("in"), "object": "invoice", "customer": sub["customer"], "subscription": sub["id"],
            "status": "paid", "amount_paid": 0, "currency": "usd"}))
        return events

    def change_subscription(self, sub_id: str, form: dict) -> list[dict]:
        sub = self.subscriptions.get(sub_id)
        if sub is None:
            raise StripeError(404, f"No such subscription: '{sub_id}'", "id", "resource_missing")
        action = form.get("action", "update")
        if action == "delete":
            sub["status"] = "canceled"
            return [self.event("customer.subscription.deleted", self.subscription_object(sub))]
        if action == "payment_failed":
            sub["status"] = "past_due"
            return [self.event("invoice.payment_failed", {
                "id": new_id("in"), "object": "invoice", "customer": sub["customer"], "subscription": sub_id,
                "status": "open", "attempt_count": 1})]
        if "price" in form:
            sub["price"] = form["price"]
        if "quantity" in form:
            sub["quantity"] = int(form["quantity"])
        if "status" in form:
            sub["status"] = form["status"]
        return [self.event("customer.subscription.updated", self.subscription_object(sub))]


def public(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def deliver(state: State, events: list[dict], secret: str | None = None, skew_s: int = 0) -> list[dict]:
    """POSTs each event, in order, signed with the webhook secret; returns what the app answered."""
    results = []
    if not state.webhook_url:
        return [{"event": e["id"], "type": e["type"], "status": None, "error": "no --webhook-url"} for e in events]
    for event in events:
        payload = json.dumps(event, separators=(",", ":")).encode()
        header = sign(payload, secret or state.webhook_secret, int(time.time()) + skew_s)
        req = urllib.request.Request(state.webhook_url, data=payload, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8", "Stripe-Signature": header,
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, body = resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read().decode()
        except OSError as e:
            status, body = None, str(e)
        result = {"event": event["id"], "type": event["type"], "status": status, "body": body}
        with state.lock:
            state.webhooks_sent.append({**result, "payload": event})
        results.append(result)
    return results


ROUTES = {
    "/v1/customers": "create_customer",
    "/v1/checkout/sessions": "create_checkout",
    "/v1/billing_portal/sessions": "create_portal",
    "/v1/billing/meter_events": "create_meter_event",
}


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-stripe/1"
    state: State

    def log_message(self, fmt, *args):  # stderr, one line per request, never the Authorization header
        sys.stderr.write("fake-stripe: " + (fmt % args) + "\n")

    def _send(self, status: int, body, content_type: str = "application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", new_id("req"))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        st = self.state
        path = urllib.parse.urlparse(self.path).path
        if path == "/_fake/health":
            return self._send(200, b"ok", "text/plain")
        if path == "/_fake/requests":
            with st.lock:
                return self._send(200, st.requests)
        if path == "/_fake/meter_events":
            with st.lock:
                return self._send(200, list(st.meter_events.values()))
        if path == "/_fake/webhooks":
            with st.lock:
                return self._send(200, st.webhooks_sent)
        if path == "/_fake/state":
            with st.lock:
                return self._send(200, {"customers": st.customers, "subscriptions": st.subscriptions,
                                        "sessions": {k: public(v) for k, v in st.sessions.items()}})
        m = re.fullmatch(r"/checkout/(cs_test_\w+)", path)
        if m:
            with st.lock:
                session = st.sessions.get(m.group(1))
            if session is None:
                return self._send(404, b"no such checkout session", "text/plain")
            page = (f"<!doctype html><title>Fake Checkout</title><h1>Subscribe</h1><p>{session['_price']} "
                    f"x {session['_quantity']}</p><form method=post action=/checkout/{session['id']}/complete>"
                    f"<button>Pay</button></form>")
            return self._send(200, page.encode(), "text/html; charset=utf-8")
        if re.fullmatch(r"/portal/bps_\w+", path):
            return self._send(200, b"<!doctype html><title>Fake Billing Portal</title>", "text/html")
        return self._send(404, StripeError(404, f"Unrecognized request URL (GET: {path}).").body())

    def do_POST(self):
        st = self.state
        path = urllib.parse.urlparse(self.path).path
        raw = self._body()
        if path.startswith("/_fake/") or path.startswith("/checkout/"):
            return self._control(path, raw)
        if path not in ROUTES:
            return self._send(404, StripeError(404, f"Unrecognized request URL (POST: {path}).").body())
        entry = {"method": "POST", "path": path, "idempotency_key": self.headers.get("Idempotency-Key"),
                 "stripe_version": self.headers.get("Stripe-Version"), "form": None, "status": None}
        status, body = self._api(path, raw, entry)
        entry["status"] = status
        with st.lock:
            st.requests.append(entry)
        self._send(status, body)

    def _api(self, path: str, raw: bytes, entry: dict) -> tuple[int, dict]:
        st = self.state
        auth = self.headers.get("Authorization", "")
        key = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        if not key.startswith(("sk_test_", "sk_live_", "rk_test_")) or (st.args.api_key and key != st.args.api_key):
            return 401, StripeError(401, "Invalid API Key provided.", type_="invalid_request_error").body()
        ctype = self.headers.get("Content-Type", "")
        if not ctype.startswith("application/x-www-form-urlencoded"):
            return 400, StripeError(400, "Stripe expects application/x-www-form-urlencoded bodies.").body()
        form = parse_form(raw.decode())
        entry["form"] = form
        with st.lock:
            fault = st.faults.pop(0) if st.faults and st.faults[0].get("path", path) == path else None
            latency = st.latency_ms
        if latency:
            time.sleep(latency / 1000)
        if fault:
            if fault.get("hang_ms"):
                time.sleep(fault["hang_ms"] / 1000)
            status = int(fault.get("status", 500))
            err = StripeError(status, fault.get("message", "An unknown error occurred"),
                              type_="api_error" if status >= 500 else "invalid_request_error")
            return status, err.body()
        idem = self.headers.get("Idempotency-Key")
        with st.lock:
            if idem and idem in st.idempotency:
                prev_body, prev_status, prev_resp = st.idempotency[idem]
                if prev_body != raw.decode():
                    return 400, StripeError(400, "Keys for idempotent requests can only be used with the same "
                                                 "parameters they were first used with.",
                                            type_="idempotency_error").body()
                entry["replayed"] = True
                return prev_status, prev_resp
            try:
                resp = getattr(st, ROUTES[path])(form)
                status = 200
            except StripeError as e:
                status, resp = e.status, e.body()
            if idem:
                st.idempotency[idem] = (raw.decode(), status, resp)
        return status, resp

    def _control(self, path: str, raw: bytes):
        st = self.state
        try:
            data = json.loads(raw) if raw.strip().startswith(b"{") or raw.strip().startswith(b"[") else \
                parse_form(raw.decode())
        except ValueError:
            return self._send(400, {"error": "control bodies are JSON"})
        try:
            if path == "/_fake/reset":
                with st.lock:
                    st.reset()
                return self._send(200, {"reset": True})
            if path == "/_fake/faults":
                faults = data if isinstance(data, list) else [data]
                expanded = []
                for f in faults:
                    if "latency_ms" in f:
                        with st.lock:
                            st.latency_ms = int(f["latency_ms"])
                        continue
                    expanded += [f] * int(f.get("times", 1))
                with st.lock:
                    st.faults += expanded
                    return self._send(200, {"queued": len(st.faults)})
            if path == "/_fake/config":
                with st.lock:
                    if "webhook_url" in data:
                        st.webhook_url = data["webhook_url"]
                    if "webhook_secret" in data:
                        st.webhook_secret = data["webhook_secret"]
                    if "clock_offset_s" in data:
                        st.clock_offset = int(data["clock_offset_s"])
                return self._send(200, {"ok": True})
            m = re.fullmatch(r"/(?:_fake/)?checkout/(cs_test_\w+)/complete", path)
            if m:
                with st.lock:
                    events = st.complete_checkout(m.group(1))
                results = deliver(st, events)
                return self._send(200, {"events": [e["id"] for e in events], "deliveries": results})
            m = re.fullmatch(r"/_fake/subscriptions/(sub_\w+)", path)
            if m:
                with st.lock:
                    events = st.change_subscription(m.group(1), data)
                return self._send(200, {"events": [e["id"] for e in events], "deliveries": deliver(st, events)})
            if path == "/_fake/webhooks/send":
                # Sends a given event JSON as is (optionally signed with another secret or skewed in time):
                # tests of replays, stale and badly signed deliveries.
                event = data["event"]
                results = deliver(st, [event], data.get("secret"), int(data.get("skew_s", 0)))
                return self._send(200, {"deliveries": results})
        except StripeError as e:
            return self._send(e.status, e.body())
        except (KeyError, TypeError, ValueError) as e:
            return self._send(400, {"error": f"bad control request: {e}"})
        return self._send(404, {"error": f"no control route {path}"})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--webhook-url", help="where to POST signed webhooks (the app's /webhooks/stripe)")
    p.add_argument("--webhook-secret", default="whsec_fake", help="the signing secret (whsec_...)")
    p.add_argument("--api-key", help="accept only this secret key (default: any sk_test_/sk_live_)")
    p.add_argument("--price", action="append", help="a known price id (repeat); default: any")
    p.add_argument("--latency-ms", type=int, default=0)
    args = p.parse_args()
    state = State(args)
    Handler.state = state
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    state.base = f"http://{args.host}:{server.server_address[1]}"
    print(f"fake-stripe listening on {state.base}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
