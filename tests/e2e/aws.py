"""The AWS runtime on this machine: moto (infra/moto/serve.py) as DynamoDB, S3 and SQS, and the
Lambda functions under `cargo lambda watch` (the Lambda runtime emulator), provisioned and keyed
with `imagemcp-aws-admin`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx2 as httpx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from helpers import LOG_DIR, ROOT, TARGET, FakeOpenAi, Process, base_env

VENV_BIN = ROOT / ".venv" / "bin"
ADMIN = Path(os.environ.get("IMAGEMCP_AWS_ADMIN_BIN", TARGET / "imagemcp-aws-admin"))
MAX_ATTEMPTS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Moto:
    """moto on a free loopback port; it exits when its stdin (our pipe) closes."""

    def __init__(self) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self._log = open(LOG_DIR / "moto.log", "ab")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "python"), str(ROOT / "infra/moto/serve.py")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        assert self.url.startswith("http://127.0.0.1:"), f"moto did not start: {self.url!r}"

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=15)
        self._log.close()


def presigned_signature(url: str, secret: str) -> str:
    """The SigV4 query signature a presigned S3 GET `url` must carry (host signed, UNSIGNED-PAYLOAD),
    computed here with `secret`: S3 checks it, moto does not, so tests compare it themselves. The
    URL's parameters are taken as they are encoded (canonical: uppercase escapes, `%20`)."""
    parts = urllib.parse.urlsplit(url)
    pairs = sorted(tuple(p.split("=", 1)) for p in parts.query.split("&"))
    params = dict(pairs)
    query = "&".join(f"{k}={v}" for k, v in pairs if k != "X-Amz-Signature")
    canonical = f"GET\n{parts.path}\n{query}\nhost:{parts.netloc}\n\nhost\nUNSIGNED-PAYLOAD"
    scope = urllib.parse.unquote(params["X-Amz-Credential"]).split("/", 1)[1]
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = f"AWS4-HMAC-SHA256\n{params['X-Amz-Date']}\n{scope}\n{digest}"
    key = f"AWS4{secret}".encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def aws_env(moto: Moto) -> dict[str, str]:
    env = base_env()
    env.update({
        "AWS_ENDPOINT_URL": moto.url, "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "test-secret-key",
    })
    return env


def admin(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([str(ADMIN), *args], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"imagemcp-aws-admin {args}: {out.stderr}"
    return out.stdout.strip()


@dataclass
class Lambda:
    """The functions under `cargo lambda watch`, on moto, with a bootstrap API key."""

    watch: subprocess.Popen
    url: str
    env: dict[str, str]
    key: str
    log_path: Path

    @property
    def mcp_url(self) -> str:
        return f"{self.url}/lambda-url/mcp/mcp"

    def client(self, mode: str) -> Client:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {self.key}"})
        return Client(streamable_http_client(self.mcp_url, http_client=http), mode=mode, read_timeout_seconds=120)

    def invoke(self, function: str, event: dict) -> dict:
        """Invokes a function directly, as an event source mapping does."""
        r = httpx.post(f"{self.url}/2015-03-31/functions/{function}/invocations", json=event, timeout=120)
        r.raise_for_status()
        return r.json()

    def stop(self) -> None:
        # watch runs each function as its child: stop the whole process group we started.
        try:
            os.killpg(self.watch.pid, signal.SIGTERM)
            self.watch.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.watch.pid, signal.SIGKILL)
            self.watch.wait()


def start_lambda(moto: Moto, fake: FakeOpenAi, extra_secrets: dict[str, str] | None = None) -> Lambda:
    env = aws_env(moto)
    suffix = uuid.uuid4().hex[:8]
    table, bucket = f"imagemcp-{suffix}", f"imagemcp-{suffix}"
    queues = admin(env, "provision", "--table", table, "--bucket", bucket, "--queue", f"jobs-{suffix}",
                   "--max-attempts", str(MAX_ATTEMPTS))
    for line in queues.splitlines():
        name, value = line.split("=", 1)
        env[name] = value
    # The secrets live in Secrets Manager, as deployed: the functions read them at cold start.
    secrets = boto3.client("secretsmanager", endpoint_url=moto.url, region_name="us-east-1",
                           aws_access_key_id="AKIDTEST", aws_secret_access_key="test-secret-key")
    kek = base64.b64encode(os.urandom(32)).decode()
    secret = secrets.create_secret(Name=f"imagemcp-{suffix}/app", SecretString=json.dumps({
        "OPENAI_API_KEY": "sk-test-secret-key-never-logged", "IMAGEMCP_KEK_ID": "e2e-1", "IMAGEMCP_KEK": kek,
        **(extra_secrets or {}),
    }))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env.update({
        "IMAGEMCP_TABLE": table, "IMAGEMCP_BUCKET": bucket, "IMAGEMCP_QUEUE_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "IMAGEMCP_PUBLIC_URL": f"{url}/lambda-url/mcp", "IMAGEMCP_SECRET_ARNS": secret["ARN"],
        "OPENAI_BASE_URL": f"{fake.url}/v1",
        "CARGO_TARGET_DIR": str(TARGET.parent),
    })
    key = admin(env, "bootstrap-key")
    # The session-end log scan (conftest.py) checks that neither appears in any log of the run.
    with open(LOG_DIR / "secrets-under-test.txt", "a") as f:
        f.write(f"{kek}\n{key}\n")
    log_path = LOG_DIR / "cargo-lambda-watch.log"
    log = open(log_path, "ab")
    watch = subprocess.Popen(
        [str(VENV_BIN / "cargo-lambda"), "lambda", "watch", "--ignore-changes", "--quiet",
         "-A", "127.0.0.1", "-P", str(port), "-p", "imagemcp-lambda"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
    )
    lam = Lambda(watch, url, env, key, log_path)
    # Bounded wait for an external process: the emulator, then the api function's first start.
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{url}/lambda-url/api/healthz", timeout=60).status_code == 200:
                return lam
        except httpx.TransportError:
            pass
        if watch.poll() is not None or time.monotonic() > deadline:
            lam.stop()
            raise RuntimeError(f"cargo lambda watch did not serve; log: {log_path.read_text()[-3000:]}")
        time.sleep(0.2)


def sqs_event(messages: list[dict]) -> dict:
    """The event Lambda's SQS poller sends, from messages received with boto3."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m.get("MD5OfBody", ""),
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:imagemcp-jobs",
        "awsRegion": "us-east-1",
    } for m in messages]}


def job(lam: Lambda, job_id: str) -> dict:
    return json.loads(admin(lam.env, "job", job_id))
