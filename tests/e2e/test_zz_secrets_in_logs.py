"""Runs last (file order): no secret used anywhere in this run — passwords, OAuth codes, access and
refresh tokens recorded by the tests, the fake OpenAI key — appears in any captured log line."""

from __future__ import annotations

from helpers import LOG_DIR

FIXED_SECRETS = ["sk-test-secret-key-never-logged"]


def test_no_secret_appears_in_any_log_line():
    recorded = LOG_DIR / "secrets-under-test.txt"
    secrets = set(FIXED_SECRETS)
    if recorded.exists():
        secrets |= {line.strip() for line in recorded.read_text().splitlines() if line.strip()}
    logs = [p for p in LOG_DIR.glob("*.log")]
    assert logs, "the e2e run captured no logs"
    leaks = []
    for path in logs:
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for secret in secrets:
                if secret in line:
                    leaks.append(f"{path.name}:{n}: {secret[:8]}…")
    assert not leaks, leaks
