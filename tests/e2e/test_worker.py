"""The Cloudflare Worker end to end: the wasm32 bundle (scripts/build-worker) under
`wrangler dev --local` (workerd, with KV and Queues as wrangler provides them), its Table and
BlobStore on moto through SigV4-signed fetches, driven by the official MCP client."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from aws import Moto, admin, aws_env, free_port, presigned_signature
from helpers import LOG_DIR, ROOT, image_size

BUNDLE = ROOT / "build" / "worker" / "worker" / "shim.mjs"
# The same Worker with the test-only contract routes (feature `contract`).
CONTRACT_BUNDLE = ROOT / "build" / "worker-contract" / "worker" / "shim.mjs"
WRANGLER = ROOT / "node_modules" / ".bin" / "wrangler"


@dataclass
class Worker:
    proc: subprocess.Popen
    url: str
    key: str
    env: dict[str, str]
    log_path: Path

    def client(self, mode: str = "legacy") -> Client:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {self.key}"})
        return Client(streamable_http_client(f"{self.url}/mcp", http_client=http), mode=mode,
                      read_timeout_seconds=120)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def worker_config(directory: Path, bundle: Path, vars: dict[str, str], secrets: dict[str, str]) -> Path:
    """wrangler.toml's bindings without its `[build]` (the bundle is built once, beforehand:
    wrangler 4.86 would otherwise build twice) and with the test's vars; secrets go in `.dev.vars`,
    as `wrangler secret put` would hold them."""
    lines = [
        'name = "imagemcp-e2e"',
        f'main = "{bundle}"',
        'compatibility_date = "2026-04-20"',
        "[vars]",
        *[f"{k} = {json.dumps(v)}" for k, v in vars.items()],
        "[[kv_namespaces]]", 'binding = "CACHE"', 'id = "e2e-cache"',
        "[[queues.producers]]", 'binding = "JOBS"', 'queue = "imagemcp-jobs"',
        "[[queues.consumers]]", 'queue = "imagemcp-jobs"', "max_batch_size = 10", "max_batch_timeout = 1",
        "max_retries = 3", 'dead_letter_queue = "imagemcp-jobs-dlq"',
    ]
    config = directory / "wrangler.toml"
    config.write_text("\n".join(lines) + "\n")
    (directory / ".dev.vars").write_text("".join(f"{k}={json.dumps(v)}\n" for k, v in secrets.items()))
    return config


def provision(moto: Moto) -> tuple[dict[str, str], str, str]:
    """A fresh table and bucket on moto; the admin tool's environment for them."""
    env = aws_env(moto)
    suffix = uuid.uuid4().hex[:8]
    table, bucket = f"imagemcp-{suffix}", f"imagemcp-{suffix}"
    # The admin tool needs the SQS settings it prints even though the Worker uses Queues.
    for line in admin(env, "provision", "--table", table, "--bucket", bucket, "--queue", f"jobs-{suffix}").splitlines():
        name, value = line.split("=", 1)
        env[name] = value
    env.update({"IMAGEMCP_TABLE": table, "IMAGEMCP_BUCKET": bucket})
    return env, table, bucket


def start_worker(directory: Path, bundle: Path, moto: Moto, table: str, bucket: str, kek: str,
                 log_name: str, openai_url: str | None = None, extra_vars: dict[str, str] | None = None,
                 extra_secrets: dict[str, str] | None = None) -> tuple[subprocess.Popen, str, Path]:
    """`wrangler dev --local` serving `bundle` on a free port, bound to moto, `table` and `bucket`."""
    assert bundle.exists(), f"build the Worker first: scripts/build-worker ({bundle} is missing)"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    vars = {
        "IMAGEMCP_PUBLIC_URL": url, "IMAGEMCP_TABLE": table, "IMAGEMCP_BUCKET": bucket,
        "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": moto.url, "IMAGEMCP_SSE": "AES256",
        "IMAGEMCP_KEK_ID": "e2e-1", "IMAGEMCP_QUEUE_MAX_ATTEMPTS": "4",
    }
    secrets = {
        "AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "test-secret-key", "IMAGEMCP_KEK": kek,
        "IMAGEMCP_TOKEN_KEYS": TOKEN_KEYS,
    }
    if openai_url:
        vars["OPENAI_BASE_URL"] = f"{openai_url}/v1"
        secrets["OPENAI_API_KEY"] = OPENAI_KEY
    vars.update(extra_vars or {})
    secrets.update(extra_secrets or {})
    config = worker_config(directory, bundle, vars, secrets)
    log_path = LOG_DIR / log_name
    log = open(log_path, "wb")
    wrangler_env = {**os.environ, "WRANGLER_SEND_METRICS": "false", "CI": "true",
                    "XDG_CONFIG_HOME": str(directory / "config")}
    proc = subprocess.Popen(
        [str(WRANGLER), "dev", "--local", "-c", str(config), "--ip", "127.0.0.1", "--port", str(port),
         "--show-interactive-dev-session=false", "--persist-to", str(directory / "state"),
         # `/__scheduled?time=…` fires the Cron Trigger (the retention sweep) on demand.
         "--test-scheduled"],
        cwd=directory, env=wrangler_env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        start_new_session=True,
    )
    log.close()
    # Bounded wait for an external process to serve.
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=30).status_code == 200:
                return proc, url, log_path
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f"wrangler dev did not serve; log: {log_path.read_text()[-3000:]}")
        time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    # wrangler runs workerd as its child: stop the whole process group we started.
    os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()


# Never logged: the session-end log scan (conftest.py) looks for these.
OPENAI_KEY = "sk-worker-e2e-secret-never-logged"
PASSWORD = "correct horse battery staple, worker edition"
# The token signing key (an Ed25519 seed) the Worker signs access tokens with, as a Worker secret.
TOKEN_KEYS = "e2e-1:" + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def new_kek() -> str:
    kek = base64.b64encode(os.urandom(32)).decode()
    with open(LOG_DIR / "secrets-under-test.txt", "a") as f:
        f.write(f"{kek}\n")
    return kek


@pytest.fixture(scope="module")
def moto():
    m = Moto()
    yield m
    m.stop()


@pytest.fixture(scope="module")
def worker(tmp_path_factory, moto, fake):
    env, table, bucket = provision(moto)
    kek = new_kek()
    env.update({"IMAGEMCP_KEK": kek, "IMAGEMCP_KEK_ID": "e2e-1", "IMAGEMCP_PUBLIC_URL": "http://127.0.0.1"})
    key = admin(env, "bootstrap-key")
    with open(LOG_DIR / "secrets-under-test.txt", "a") as f:
        f.write(f"{key}\n{OPENAI_KEY}\n{TOKEN_KEYS.split(':', 1)[1]}\n{PASSWORD}\n")
    fake.reset()
    proc, url, log_path = start_worker(tmp_path_factory.mktemp("worker"), BUNDLE, moto, table, bucket, kek,
                                       "wrangler-dev.log", openai_url=fake.url)
    yield Worker(proc, url, key, env, log_path)
    stop(proc)


@pytest.mark.anyio
async def test_worker_serves_mcp_handshake_and_tools(worker):
    async with worker.client("legacy") as client:
        tools = {t.name for t in (await client.list_tools()).tools}
    assert {"openai_generate_image", "openai_list_images", "openai_generate_campaign_batch",
            "openai_get_job"} <= tools, tools


@pytest.mark.anyio
async def test_worker_generates_into_s3_and_reads_back(worker, fake):
    # The model call goes to the fake OpenAI over fetch; the image lands in S3 (moto) and the
    # records in DynamoDB, both through signed fetches; the read-back comes from S3 again.
    async with worker.client("legacy") as client:
        result = await client.call_tool("openai_generate_image", {
            "prompt": "a lighthouse at dusk, flat vector", "size": "1024x1024", "output_format": "png"})
        assert not result.is_error, result.content
        image = result.structured_content["images"][0]
        assert image["model"].startswith("gpt-image-"), "generated by the (fake) OpenAI API"
        # The chat preview, resized inside workerd by the Worker's own resizer (src/imaging.rs).
        preview = next(c for c in result.content if c.type == "image")
        assert image_size(base64.b64decode(preview.data)) == (512, 512), "longest edge 512"
        assert preview.mime_type in ("image/jpeg", "image/png"), preview.mime_type
        read = await client.read_resource(f"image://{image['id']}")
        blob = base64.b64decode(read.contents[0].blob)
    assert image_size(blob) == (1024, 1024)
    # The download URL is presigned by the Worker (aws-sigv4) for the bucket on moto.
    url = image["url"]
    assert url.startswith(f"{worker.env['AWS_ENDPOINT_URL']}/{worker.env['IMAGEMCP_BUCKET']}/"), url
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=900" in url, url
    direct = httpx.get(url, timeout=30)
    assert direct.status_code == 200 and direct.headers["content-type"] == "image/png"
    assert direct.content == blob
    # Saved under the image's file name: a query parameter S3 answers with, inside the signature.
    assert image["file_name"] == f"{image['id']}.png"
    assert direct.headers["content-disposition"] == f'attachment; filename="{image["file_name"]}"'
    assert "response-content-disposition=attachment%3B%20filename%3D%22" in url, url
    assert presigned_signature(url, worker.env["AWS_SECRET_ACCESS_KEY"]) == \
        dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))["X-Amz-Signature"], url
    assert any(r["path"].endswith("/images/generations") for r in fake.requests())
    listed = httpx.get(f"{worker.url}/v1/images", headers={"Authorization": f"Bearer {worker.key}"}, timeout=30)
    assert image["id"] in [i["id"] for i in listed.json()["images"]], listed.text


def test_worker_authenticates_keys_from_dynamodb(worker):
    # The key was written to DynamoDB (moto) by the admin tool; the Worker finds it only by a
    # signed GetItem on the same table.
    ok = httpx.get(f"{worker.url}/v1/images", headers={"Authorization": f"Bearer {worker.key}"}, timeout=30)
    assert ok.status_code == 200, ok.text
    assert "images" in ok.json()
    wrong = httpx.get(f"{worker.url}/v1/images", headers={"Authorization": "Bearer imk_nope_nope"}, timeout=30)
    assert wrong.status_code == 401
    assert "www-authenticate" in wrong.headers


async def wait_for_job(client: Client, job_id: str, timeout: float = 120) -> dict:
    """Polls `openai_get_job` until the job leaves the queue (a bounded wait on workerd's queue,
    which delivers the job's messages to the consumer); the pause between polls yields to the
    event loop."""
    deadline = time.monotonic() + timeout
    while True:
        result = await client.call_tool("openai_get_job", {"job_id": job_id})
        job = result.structured_content
        if job["status"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']} after {timeout} s: {job}"
        await asyncio.sleep(0.5)


@pytest.mark.anyio
async def test_worker_campaign_goes_through_the_queue_to_the_consumer(worker):
    # One message per item on the local Queue; workerd delivers the batch to the same Worker's
    # queue handler, which generates each item (fake OpenAI), stores it and acks its message.
    async with worker.client("legacy") as client:
        submitted = await client.call_tool("openai_generate_campaign_batch", {
            "campaign": "worker-e2e", "template": "email", "prompt": "a lighthouse at dawn",
            "idempotency_key": f"worker-e2e-{uuid.uuid4().hex}",
        })
        assert not submitted.is_error, submitted.content
        job_id = submitted.structured_content["job_id"]
        job = await wait_for_job(client, job_id)
    assert job["status"] == "done", job
    assert (job["items_total"], job["items_done"], job["items_failed"]) == (4, 4, 0), job
    names = sorted(json.dumps(item["result"]) for item in job["items"])
    assert all("worker-e2e_" in n for n in names), names
    assert "QUEUE imagemcp-jobs" in worker.log()


def test_worker_signs_up_and_logs_in_with_full_argon2(worker):
    # Password hashing runs on the Worker's request path at the server's full argon2id parameters
    # (19 MiB, t=2): the Worker targets the Workers Paid CPU limit (docs/deploy-cloudflare.md),
    # and the hash it writes is the one every runtime verifies.
    email = f"edge-{uuid.uuid4().hex[:8]}@example.com"
    password = PASSWORD
    signup = httpx.post(f"{worker.url}/v1/auth/signup", json={"email": email, "password": password}, timeout=60)
    assert signup.status_code == 201, signup.text
    login = httpx.post(f"{worker.url}/v1/auth/login", json={"email": email, "password": password}, timeout=60)
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    assert token.count(".") == 2, "an access token is a JWT"
    images = httpx.get(f"{worker.url}/v1/images", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert images.status_code == 200, images.text
    wrong = httpx.post(f"{worker.url}/v1/auth/login", json={"email": email, "password": "wrong password!"},
                       timeout=60)
    assert wrong.status_code == 401, wrong.text
    assert password not in worker.log()


@pytest.mark.parametrize("suite", ["table", "quota", "blob", "cache"])
def test_worker_adapters_meet_the_port_contracts_inside_workerd(tmp_path, moto, suite):
    # The core's contract suites, compiled into the test build and run by workerd against this
    # Worker's adapters: DynamoDB and S3 on moto over signed fetches, KV as wrangler provides it.
    _, table, bucket = provision(moto)
    proc, url, log_path = start_worker(tmp_path, CONTRACT_BUNDLE, moto, table, bucket, new_kek(),
                                       f"wrangler-contract-{suite}.log")
    try:
        name = bucket if suite == "blob" else table
        r = httpx.post(f"{url}/__test/contract/{suite}?name={name}", timeout=600)
    finally:
        stop(proc)
    assert r.status_code == 200 and r.text == f"{suite}: passed", (
        f"{suite} suite failed ({r.status_code}): {log_path.read_text(errors='replace')[-4000:]}")


def test_worker_cron_trigger_sweeps_expired_image_objects_from_s3(worker):
    """The Worker's scheduled event runs the shared retention sweep against DynamoDB and S3: an index
    item whose day is over (as `billing::retention::index_op` writes it) has its objects and itself
    deleted; one whose day is not over is left alone."""
    import boto3

    env = worker.env
    kw = {"endpoint_url": env["AWS_ENDPOINT_URL"], "region_name": "us-east-1",
          "aws_access_key_id": "AKIDTEST", "aws_secret_access_key": "test-secret-key"}
    s3, ddb = boto3.client("s3", **kw), boto3.client("dynamodb", **kw)
    bucket, table = env["IMAGEMCP_BUCKET"], env["IMAGEMCP_TABLE"]
    expired = ["orgs/org_cron/images/img_old.png", "orgs/org_cron/previews/img_old"]
    current = ["orgs/org_cron/images/img_new.png", "orgs/org_cron/previews/img_new"]
    for key in expired + current:
        s3.put_object(Bucket=bucket, Key=key, Body=b"not really a png")

    def index(day: str, day_number: int, keys: list[str], image: str) -> dict:
        item = {"pk": {"S": f"RETENTION#{day}"}, "sk": {"S": f"org_cron#{image}"},
                "blobs": {"L": [{"S": k} for k in keys]}, "expires_day": {"N": str(day_number)}}
        ddb.put_item(TableName=table, Item=item)
        return {"pk": item["pk"], "sk": item["sk"]}

    import datetime

    def day(offset: int) -> tuple[str, int]:
        number = int(time.time()) // 86_400 + offset
        return (datetime.date(1970, 1, 1) + datetime.timedelta(days=number)).isoformat(), number

    old = index(*day(-2), expired, "img_old")  # the day before yesterday: over
    new = index(*day(1), current, "img_new")  # tomorrow: not over
    now_ms = str(int(time.time() * 1000))
    r = httpx.get(f"{worker.url}/__scheduled", params={"time": now_ms}, timeout=60)
    assert r.status_code == 200, r.text

    def exists(key: str) -> bool:
        try:
            s3.head_object(Bucket=bucket, Key=key)
            return True
        except s3.exceptions.ClientError:
            return False

    assert [exists(k) for k in expired] == [False, False], "the expired objects are deleted"
    assert [exists(k) for k in current] == [True, True], "objects whose day is not over stay"
    assert "Item" not in ddb.get_item(TableName=table, Key=old)
    assert "Item" in ddb.get_item(TableName=table, Key=new)
    # Idempotent: a second run changes nothing more.
    assert httpx.get(f"{worker.url}/__scheduled", params={"time": now_ms}, timeout=60).status_code == 200
    assert [exists(k) for k in current] == [True, True]


# --- Billing and Client ID Metadata Documents on the Worker: a second Worker with Stripe secrets
# (against infra/fake-stripe) and a CIMD test allow-list naming a loopback document server.

@pytest.fixture(scope="module")
def fake_stripe():
    from test_billing import FakeStripe

    f = FakeStripe()
    yield f
    f.process.stop()


@pytest.fixture(scope="module")
def cimd_docs():
    # The slow document answers only when this fixture ends: the Worker gives up first (its fetch
    # limit has no test setting, so that test waits the Worker's 5 s).
    from test_cimd import serve_documents

    with serve_documents() as origin:
        yield origin


@pytest.fixture(scope="module")
def edge_worker(tmp_path_factory, moto, fake, fake_stripe, cimd_docs):
    from test_billing import SECRET_KEY, WEBHOOK_SECRET

    env, table, bucket = provision(moto)
    kek = new_kek()
    env.update({"IMAGEMCP_KEK": kek, "IMAGEMCP_KEK_ID": "e2e-1", "IMAGEMCP_PUBLIC_URL": "http://127.0.0.1"})
    key = admin(env, "bootstrap-key")
    with open(LOG_DIR / "secrets-under-test.txt", "a") as f:
        f.write(f"{key}\n{SECRET_KEY}\n{WEBHOOK_SECRET}\n")
    proc, url, log_path = start_worker(
        tmp_path_factory.mktemp("edge-worker"), BUNDLE, moto, table, bucket, kek, "wrangler-dev-edge.log",
        openai_url=fake.url,
        extra_vars={"STRIPE_API_BASE": fake_stripe.url, "STRIPE_PRO_PRICE": "price_pro",
                    "STRIPE_TEAM_PRICE": "price_team", "IMAGEMCP_CIMD_TEST_ALLOW_ORIGINS": cimd_docs,
                    "IMAGEMCP_COST_CONFIRMATION_CENTS": "700"},
        extra_secrets={"STRIPE_SECRET_KEY": SECRET_KEY,
                       "STRIPE_WEBHOOK_SECRET": f"whsec_old_rotated_out,{WEBHOOK_SECRET}"})
    fake_stripe.post("/_fake/config", {"webhook_url": f"{url}/webhooks/stripe"})
    yield Worker(proc, url, key, env, log_path)
    stop(proc)


def test_worker_reads_the_deployment_cost_confirmation_default(edge_worker):
    # IMAGEMCP_COST_CONFIRMATION_CENTS is a shared setting: the Worker applies it as the other
    # runtimes do (docs/settings.md), here as the threshold a user without settings gets.
    r = httpx.get(f"{edge_worker.url}/v1/settings/cost-confirmation",
                  headers={"Authorization": f"Bearer {edge_worker.key}"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["effective_threshold_cents"] == 700, r.json()


@pytest.mark.anyio
async def test_worker_billing_checkout_and_signed_webhooks_upgrade_the_org(edge_worker, fake_stripe):
    async with edge_worker.client("legacy") as client:
        free = (await client.call_tool("openai_usage_summary", {})).structured_content
        assert (free["tier"], free["included_images"]) == ("free", 10), free
        # The Worker calls the (fake) Stripe API over fetch for the Checkout session.
        up = await client.call_tool("openai_upgrade_plan", {"tier": "pro"})
        assert not up.is_error, up.content
        checkout_url = up.structured_content["checkout_url"]
        assert checkout_url.startswith(f"{fake_stripe.url}/checkout/cs_test_"), checkout_url
        # The buyer pays: the fake sends Stripe's signed events to the Worker's /webhooks/stripe.
        done = fake_stripe.post(f"/checkout/{checkout_url.rsplit('/', 1)[1]}/complete")
        results = [(d["type"], d["status"], json.loads(d["body"])["result"]) for d in done["deliveries"]]
        assert results == [("checkout.session.completed", 200, "applied"),
                           ("customer.subscription.created", 200, "applied"),
                           ("invoice.paid", 200, "applied")], results
        pro = (await client.call_tool("openai_usage_summary", {})).structured_content
        assert (pro["tier"], pro["included_images"]) == ("pro", 200), pro

        # A cancellation signed with another secret, and one with no signature at all: refused,
        # and the org stays on Pro.
        sub = next(iter(fake_stripe.get("/_fake/state")["subscriptions"]))
        event = {"id": f"evt_forged_{time.time_ns()}", "object": "event", "type": "customer.subscription.deleted",
                 "created": int(time.time()), "data": {"object": {"id": sub, "object": "subscription"}}}
        forged = fake_stripe.post("/_fake/webhooks/send", {"event": event, "secret": "whsec_attacker"})
        assert [d["status"] for d in forged["deliveries"]] == [401], forged
        unsigned = httpx.post(f"{edge_worker.url}/webhooks/stripe", content=json.dumps(event), timeout=30)
        assert unsigned.status_code == 401 and unsigned.json()["error"]["code"] == "unauthenticated"
        assert "whsec_" not in unsigned.text
        assert (await client.call_tool("openai_usage_summary", {})).structured_content["tier"] == "pro"
    assert all(r["stripe_version"] == "2025-03-31.basil" for r in fake_stripe.get("/_fake/requests"))


def cimd_authorize(worker: Worker, client_id: str, redirect_uri: str = "http://127.0.0.1:9/cimd-callback"):
    from urllib.parse import urlencode

    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                       "state": "s", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                       "code_challenge_method": "S256", "scope": "images:read", "resource": f"{worker.url}/mcp"})
    return httpx.get(f"{worker.url}/oauth/authorize?{query}", follow_redirects=False, timeout=30)


def test_worker_cimd_client_reaches_login_and_consent_naming_it(edge_worker, cimd_docs):
    import html
    import re

    meta = httpx.get(f"{edge_worker.url}/.well-known/oauth-authorization-server", timeout=30).json()
    assert meta["client_id_metadata_document_supported"] is True, meta
    # The Worker fetches the document (over its fetch, from the allow-listed loopback origin) and
    # its login page names the client from it.
    login = cimd_authorize(edge_worker, f"{cimd_docs}/client.json")
    assert login.status_code == 200, login.text[:500]
    assert "CIMD Test Client" in login.text
    # Sign in through the form: the consent page names the client and where it will be sent.
    email = f"cimd-{uuid.uuid4().hex[:8]}@example.com"
    r = httpx.post(f"{edge_worker.url}/v1/auth/signup", json={"email": email, "password": PASSWORD}, timeout=60)
    assert r.status_code == 201, r.text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', login.text))
    fields = {k: html.unescape(v) for k, v in fields.items()}
    fields.update({"action": "login", "email": email, "password": PASSWORD})
    # By hand: the session cookie is `Secure`, which a cookie jar would not send over http.
    cookie = "; ".join(c.split(";", 1)[0] for c in login.headers.get_list("set-cookie"))
    consent = httpx.post(f"{edge_worker.url}/oauth/authorize", data=fields, headers={"Cookie": cookie}, timeout=60)
    assert consent.status_code == 200, consent.text[:500]
    assert "CIMD Test Client" in consent.text and "127.0.0.1:9" in consent.text
    assert 'value="approve"' in consent.text


@pytest.mark.parametrize("url, reason", [
    ("http://metadata.example/client.json", "must use https"),
    ("https://127.0.0.2:{port}/client.json", "non-public address"),
    ("https://10.0.0.1/client.json", "non-public address"),
    ("https://[::1]:{port}/client.json", "non-public address"),
    ("https://localhost:{port}/client.json", "non-public address"),
    ("https://169.254.169.254/client.json", "non-public address"),
    ("{docs}/redirect.json", "redirects are not followed"),
    ("{docs}/big.json", "larger than 64 KiB"),
    ("{docs}/slow.json", "timed out"),
    ("{docs}/other.json", "names another client_id"),
])
def test_worker_cimd_refuses_bad_documents_with_the_reason(edge_worker, cimd_docs, url, reason):
    client_id = url.format(docs=cimd_docs, port=cimd_docs.rsplit(":", 1)[1])
    r = cimd_authorize(edge_worker, client_id)
    assert r.status_code == 400, (client_id, r.status_code, r.text[:300])
    assert "location" not in r.headers, "never redirect for a client that cannot be trusted"
    assert reason in r.text, (client_id, r.text[:500])
