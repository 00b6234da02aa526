"""The Worker's heaviest request path, measured inside workerd: a password login (argon2id at the
server's full parameters, plus two DynamoDB round trips to moto), on the built bundle under
`wrangler dev --local`. Prints the median of several logins in ms; the figure backs the CPU-limit
decision in docs/deploy-cloudflare.md (Workers Paid, not Free's 10 ms).

Usage: worker_login.py [RUNS]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[2]
# The end-to-end helpers start moto and wrangler exactly as the tests do.
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from aws import Moto  # noqa: E402
from test_worker import BUNDLE, PASSWORD, new_kek, provision, start_worker, stop  # noqa: E402


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    moto = Moto()
    try:
        _, table, bucket = provision(moto)
        with tempfile.TemporaryDirectory() as directory:
            proc, url, _ = start_worker(Path(directory), BUNDLE, moto, table, bucket, new_kek(),
                                        "bench-worker-login.log")
            try:
                email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
                body = {"email": email, "password": PASSWORD}
                r = httpx.post(f"{url}/v1/auth/signup", json=body, timeout=60)
                assert r.status_code == 201, r.text
                times = []
                for _ in range(runs):
                    start = time.perf_counter()
                    r = httpx.post(f"{url}/v1/auth/login", json=body, timeout=60)
                    times.append((time.perf_counter() - start) * 1000)
                    assert r.status_code == 200, r.text
            finally:
                stop(proc)
    finally:
        moto.stop()
    print(round(statistics.median(times)))


if __name__ == "__main__":
    main()
