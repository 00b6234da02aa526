"""The AWS runtime end to end: the Lambda functions under `cargo lambda watch` on moto, driven by
the official MCP client (handshake and stateless eras) with the fake OpenAI server; the image read
back from S3 through its presigned URL; a job sent to SQS and consumed by the `batch` function, and
the same function's scheduled retention sweep deleting expired objects from S3;
Stripe's signed webhooks applied by the `webhooks` function (billing on: the org subscribes to Team)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import boto3
import httpx2 as httpx
import pytest

from aws import Lambda, Moto, admin, job, sqs_event, start_lambda
from conftest import MODES
from helpers import LOG_DIR, image_size

# Billing is on in this module: Stripe's settings come from Secrets Manager like the others. The
# API base is never called here (no checkout, no overage); the webhook secret signs the events below.
WEBHOOK_SECRET = "whsec_lambda_e2e_never_logged"
STRIPE_SECRETS = {
    "STRIPE_SECRET_KEY": "sk_test_lambda_e2e_never_logged", "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "STRIPE_API_BASE": "http://127.0.0.1:9", "STRIPE_PRO_PRICE": "price_pro", "STRIPE_TEAM_PRICE": "price_team",
}


def stripe_event(kind: str, obj: dict) -> dict:
    return {"id": f"evt_lambda_{kind.replace('.', '_')}_{time.time_ns()}", "object": "event",
            "api_version": "2025-03-31.basil", "created": int(time.time()), "livemode": False,
            "type": kind, "data": {"object": obj}}


def deliver(lam, event: dict, secret: str = WEBHOOK_SECRET, skew: int = 0, signed: bool = True):
    """POSTs `event` to the webhooks function as Stripe does (Stripe-Signature over `t.payload`)."""
    payload = json.dumps(event, separators=(",", ":")).encode()
    t = int(time.time()) + skew
    headers = {"content-type": "application/json"}
    if signed:
        mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
        headers["stripe-signature"] = f"t={t},v1={mac}"
    return httpx.post(f"{lam.url}/lambda-url/webhooks/webhooks/stripe", content=payload, headers=headers,
                      timeout=120)


def record_customer(lam, org: str, customer: str) -> None:
    """What opening the org's first checkout stores (the Stripe API is not called in this module):
    the org's customer id and the customer -> org map the webhooks find the org by."""
    ddb = boto3.client("dynamodb", endpoint_url=lam.env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                       aws_access_key_id="AKIDTEST", aws_secret_access_key="test-secret-key")
    table = lam.env["IMAGEMCP_TABLE"]
    ddb.put_item(TableName=table, Item={"pk": {"S": f"ORG#{org}"}, "sk": {"S": "STRIPE_CUSTOMER"},
                                        "customer_id": {"S": customer}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "STRIPE#customers"}, "sk": {"S": f"CUS#{customer}"},
                                        "org": {"S": org}})


def subscribe_default_org_to_team(lam) -> list:
    """Checkout completes and the Team subscription (5 seats) is created, as Stripe reports it."""
    record_customer(lam, "org_default", "cus_lambda")
    now = int(time.time())
    checkout = stripe_event("checkout.session.completed", {
        "id": "cs_test_lambda", "object": "checkout.session", "mode": "subscription",
        "customer": "cus_lambda", "client_reference_id": "org_default", "subscription": "sub_lambda"})
    created = stripe_event("customer.subscription.created", {
        "id": "sub_lambda", "object": "subscription", "customer": "cus_lambda", "status": "active",
        "metadata": {"org_id": "org_default"},
        "items": {"object": "list", "data": [{
            "id": "si_lambda", "object": "subscription_item", "quantity": 5,
            "price": {"id": "price_team", "object": "price"},
            "current_period_start": now - 60, "current_period_end": now + 30 * 86400}]}})
    return [(e, deliver(lam, e)) for e in (checkout, created)]

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def lam(fake) -> Lambda:
    moto = Moto()
    fake.reset()
    lam = start_lambda(moto, fake, STRIPE_SECRETS)
    with open(LOG_DIR / "secrets-under-test.txt", "a") as f:
        f.write(f"{STRIPE_SECRETS['STRIPE_SECRET_KEY']}\n{WEBHOOK_SECRET}\n")
    # Billing is on, so the admin's org starts on Free: it subscribes to Team before the tests (the
    # MCP test asks for 2 variations, which Free refuses).
    lam.subscribed = subscribe_default_org_to_team(lam)
    yield lam
    lam.stop()
    moto.stop()


@pytest.mark.parametrize("mode", MODES)
async def test_mcp_on_lambda_generates_into_s3_and_serves_a_presigned_url(lam, fake, mode):
    seen = []

    async def on_progress(progress, total, message):
        seen.append(progress)

    async with lam.client(mode) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert "openai_generate_image" in tools
        result = await client.call_tool(
            "openai_generate_image",
            {"prompt": "a lighthouse at dusk, flat vector", "size": "1024x1024", "output_format": "png", "n": 2},
            progress_callback=on_progress,
        )
        assert not result.is_error, result.content
        image = result.structured_content["images"][0]
        assert image["model"].startswith("gpt-image-"), "generated by the (fake) OpenAI API"
        read = await client.read_resource(f"image://{image['id']}")
        blob = base64.b64decode(read.contents[0].blob)
    if mode == "legacy":
        assert seen, "progress notifications streamed through the function URL"

    # The download URL is a presigned S3 URL on moto: it serves the stored bytes with no API key.
    url = image["url"]
    assert url.startswith(lam.env["AWS_ENDPOINT_URL"] + "/" + lam.env["IMAGEMCP_BUCKET"] + "/"), url
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=900" in url, url
    direct = httpx.get(url, timeout=30)
    assert direct.status_code == 200 and direct.headers["content-type"] == "image/png"
    assert direct.content == blob and image_size(blob) == (1024, 1024)
    assert any(r["path"].endswith("/images/generations") for r in fake.requests())


async def test_rest_api_function_refuses_without_a_key(lam):
    r = httpx.get(f"{lam.url}/lambda-url/api/v1/images", timeout=60)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    r = httpx.get(f"{lam.url}/lambda-url/api/v1/images", headers={"Authorization": f"Bearer {lam.key}"}, timeout=60)
    assert r.status_code == 200


async def test_webhooks_function_applies_signed_stripe_events_once(lam):
    # The fixture's deliveries: both verified and applied; the org is on Team.
    assert [(r.status_code, r.json()["result"]) for _, r in lam.subscribed] == [(200, "applied")] * 2
    async with lam.client("legacy") as client:
        usage = await client.call_tool("openai_usage_summary", {})
    assert not usage.is_error, usage.content
    s = usage.structured_content
    assert (s["tier"], s["seats"], s["included_images"]) == ("team", 5, 1000), s
    # A replay of an applied event changes nothing.
    event, _ = lam.subscribed[1]
    r = deliver(lam, event)
    assert r.status_code == 200 and r.json()["result"] == "duplicate", r.text
    # Unsigned, signed with another secret, stale: 401, nothing processed.
    deleted = stripe_event("customer.subscription.deleted", {**event["data"]["object"], "status": "canceled"})
    for bad in (deliver(lam, deleted, signed=False), deliver(lam, deleted, secret="whsec_other"),
                deliver(lam, deleted, skew=-400)):
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthenticated", bad.text
    async with lam.client("legacy") as client:
        still = (await client.call_tool("openai_usage_summary", {})).structured_content
    assert still["tier"] == "team", "a refused delivery changed nothing"
    # Other paths are a JSON 404.
    r = httpx.post(f"{lam.url}/lambda-url/webhooks/webhooks/slack", content=b"{}", timeout=60)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_a_job_sent_to_sqs_is_consumed_by_the_batch_function(lam):
    created = json.loads(admin(lam.env, "ping-job", "--items", "3"))
    sqs = boto3.client("sqs", endpoint_url=lam.env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                       aws_access_key_id="AKIDTEST", aws_secret_access_key="test-secret-key")
    got = sqs.receive_message(QueueUrl=lam.env["IMAGEMCP_QUEUE_URL"], MaxNumberOfMessages=10,
                              VisibilityTimeout=30, MessageSystemAttributeNames=["All"])["Messages"]
    assert [json.loads(m["Body"])["job_id"] for m in got] == [created["id"]]
    response = lam.invoke("batch", sqs_event(got))
    assert response == {"batchItemFailures": []}, response
    done = job(lam, created["id"])
    assert (done["status"], done["items_done"], done["attempts"]) == ("done", 3, 1), done



def test_the_batch_function_sweeps_expired_image_objects_on_its_schedule(lam):
    """The `batch` binary invoked with an EventBridge scheduled event (as Terraform's rule sends it)
    runs the retention sweep: the S3 objects and index item of a day that is over are deleted, those
    of a day not over stay."""
    import datetime

    kw = {"endpoint_url": lam.env["AWS_ENDPOINT_URL"], "region_name": "us-east-1",
          "aws_access_key_id": "AKIDTEST", "aws_secret_access_key": "test-secret-key"}
    s3, ddb = boto3.client("s3", **kw), boto3.client("dynamodb", **kw)
    bucket, table = lam.env["IMAGEMCP_BUCKET"], lam.env["IMAGEMCP_TABLE"]

    def indexed(offset: int, image: str) -> tuple[dict, list[str]]:
        number = int(time.time()) // 86_400 + offset
        day = (datetime.date(1970, 1, 1) + datetime.timedelta(days=number)).isoformat()
        keys = [f"orgs/org_sched/images/{image}.png", f"orgs/org_sched/previews/{image}"]
        for key in keys:
            s3.put_object(Bucket=bucket, Key=key, Body=b"not really a png")
        key = {"pk": {"S": f"RETENTION#{day}"}, "sk": {"S": f"org_sched#{image}"}}
        ddb.put_item(TableName=table, Item={**key, "blobs": {"L": [{"S": k} for k in keys]},
                                            "expires_day": {"N": str(number)}})
        return key, keys

    old, old_keys = indexed(-2, "img_old")
    new, new_keys = indexed(1, "img_new")
    event = {"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
             "source": "aws.events", "account": "123456789012", "time": "2026-11-24T00:00:00Z",
             "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/sweep"],
             "detail": {}}
    assert lam.invoke("batch", event) == {"entries": 1, "blobs": 2, "more": False}

    def exists(key: str) -> bool:
        try:
            s3.head_object(Bucket=bucket, Key=key)
            return True
        except s3.exceptions.ClientError:
            return False

    assert [exists(k) for k in old_keys + new_keys] == [False, False, True, True]
    assert "Item" not in ddb.get_item(TableName=table, Key=old)
    assert "Item" in ddb.get_item(TableName=table, Key=new)
