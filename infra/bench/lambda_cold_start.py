"""Cold start of a Lambda function binary under the Lambda runtime emulator (`cargo lambda watch
--only-lambda-apis`): the time from spawning the process to the first response of an invocation
that was already waiting (a function URL GET of /healthz). Prints the median of several runs in ms.

Usage: lambda_cold_start.py BINARY [RUNS]
"""

from __future__ import annotations

import base64
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    binary = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    port = free_port()
    emulator = subprocess.Popen(
        [str(ROOT / ".venv/bin/cargo-lambda"), "lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    env = {
        "PATH": os.environ.get("PATH", ""), "AWS_LAMBDA_FUNCTION_VERSION": "1", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{port}/.rt", "AWS_LAMBDA_FUNCTION_NAME": "_",
        "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIDBENCH", "AWS_SECRET_ACCESS_KEY": "bench",
        "IMAGEMCP_TABLE": "imagemcp", "IMAGEMCP_BUCKET": "imagemcp-blobs",
        "IMAGEMCP_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/imagemcp-jobs",
        "IMAGEMCP_PUBLIC_URL": "https://images.example.com",
        "IMAGEMCP_KEK": base64.b64encode(os.urandom(32)).decode(), "RUST_LOG": "warn",
    }
    try:
        deadline = time.monotonic() + 60  # bounded wait for an external process to listen
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the runtime emulator did not start")
                time.sleep(0.05)
        samples = []
        for _ in range(runs):
            done: dict[str, float] = {}

            def invoke() -> None:
                r = httpx.get(f"http://127.0.0.1:{port}/lambda-url/_/healthz", timeout=30)
                done["at"] = time.perf_counter()
                done["status"] = r.status_code

            waiter = threading.Thread(target=invoke)
            waiter.start()
            time.sleep(0.2)  # let the invocation reach the emulator's queue before the process starts
            start = time.perf_counter()
            fn = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            waiter.join(timeout=30)
            fn.kill()
            fn.wait()
            if done.get("status") != 200:
                raise RuntimeError(f"the function did not answer: {done}")
            samples.append((done["at"] - start) * 1000)
        print(f"{statistics.median(samples):.1f}")
    finally:
        os.killpg(emulator.pid, 15)
        emulator.wait()


if __name__ == "__main__":
    main()
