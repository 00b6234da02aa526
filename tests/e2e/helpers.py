"""Start the real binaries (imagemcp, fake-openai) on free loopback ports and talk to them."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"
IMAGEMCP = Path(os.environ.get("IMAGEMCP_BIN", TARGET / "imagemcp"))
FAKE_OPENAI = Path(os.environ.get("FAKE_OPENAI_BIN", TARGET / "fake-openai"))
LOG_DIR = Path(os.environ.get("IMAGEMCP_TEST_LOGS", ROOT / "target" / "e2e-logs"))
# The secrets of the runs, one a line: no log line may contain one (checked when the session ends,
# in conftest.py).
SECRETS_FILE = LOG_DIR / "secrets-under-test.txt"


def remember_secret(value: str) -> None:
    """Records a secret of this run, for the log scan at the end of the session."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(SECRETS_FILE, "a") as f:
        f.write(value + "\n")


class Process:
    """A child process whose stdout lines are collected and whose stderr goes to a log file."""

    # Every log file a process of this session wrote: the session-end scan must cover each.
    logs: set[Path] = set()

    def __init__(self, args: list[str], env: dict[str, str], log_name: str):
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / log_name
        Process.logs.add(self.log_path)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL, text=True
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for_line(self, prefix: str, timeout: float = 60.0) -> str:
        """The first stdout line starting with `prefix` (waits on the pipe, not on a clock loop)."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: any(l.startswith(prefix) for l in self.lines) or self.proc.poll() is not None, timeout
            )
            for line in self.lines:
                if line.startswith(prefix):
                    return line
        raise RuntimeError(f"{prefix!r} never printed (ok={ok}); log: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "IMAGEMCP_"))}
    env.setdefault("RUST_LOG", "info")
    return env


@dataclass
class FakeOpenAi:
    process: Process
    url: str

    def control(self, method: str, path: str, body=None):
        r = httpx.request(method, f"{self.url}/_fake/{path}", json=body, timeout=10)
        r.raise_for_status()
        return r.json() if r.content else None

    def reset(self) -> None:
        self.control("POST", "reset")

    def faults(self, faults: list[dict]) -> None:
        self.control("POST", "faults", faults)

    def requests(self) -> list[dict]:
        return self.control("GET", "requests")


def start_fake_openai(name: str = "fake-openai") -> FakeOpenAi:
    p = Process([str(FAKE_OPENAI), "--addr", "127.0.0.1:0"], base_env(), f"{name}.log")
    line = p.wait_for_line("http://")
    return FakeOpenAi(p, line.strip().rstrip("/"))


def create_key(data_dir: Path) -> str:
    out = subprocess.run(
        [str(IMAGEMCP), "keys", "create", "--data-dir", str(data_dir)],
        env=base_env(), capture_output=True, text=True, timeout=60, check=True,
    )
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, f"keys create must print the key alone: {out.stdout!r}"
    return lines[0]


@dataclass
class Server:
    process: Process
    url: str
    key: str
    data_dir: Path
    fake: FakeOpenAi | None = None
    banner: list[str] = field(default_factory=list)

    @property
    def mcp_url(self) -> str:
        return f"{self.url}/mcp"

    def client(self, mode: str = "auto", key: str | None = None) -> Client:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {key or self.key}"})
        return Client(streamable_http_client(self.mcp_url, http_client=http), mode=mode, read_timeout_seconds=120)

    def http(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key or self.key}"}, timeout=120)

    def log(self) -> str:
        return self.process.log_path.read_text()


def start_server(data_dir: Path, name: str, fake: FakeOpenAi | None = None, key: str | None = None,
                 extra_env: dict[str, str] | None = None) -> Server:
    key = key if key is not None else create_key(data_dir)
    env = base_env()
    env["IMAGEMCP_LOG_FORMAT"] = "json"
    if fake is not None:
        env["OPENAI_API_KEY"] = "sk-test-secret-key-never-logged"
        env["OPENAI_BASE_URL"] = f"{fake.url}/v1"
    env.update(extra_env or {})
    p = Process([str(IMAGEMCP), "serve", "--addr", "127.0.0.1:0", "--data-dir", str(data_dir)], env, f"{name}.log")
    line = p.wait_for_line("imagemcp listening on ")
    url = line.split(" on ", 1)[1].strip()
    return Server(p, url, key, data_dir, fake, list(p.lines))


def png(width: int, height: int, rgba=(0, 0, 0, 255), transparent_box: tuple[int, int, int, int] | None = None) -> bytes:
    """A minimal RGBA PNG encoder (zlib + struct), so the tests need no imaging library."""
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            if transparent_box and transparent_box[0] <= x < transparent_box[2] and transparent_box[1] <= y < transparent_box[3]:
                row += bytes([0, 0, 0, 0])
            else:
                row += bytes(rgba)
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b"")


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, JPEG or WebP from its header."""
    if data.startswith(b"\x89PNG"):
        return struct.unpack(">II", data[16:24])
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i < len(data):
            marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2):
                h, w = struct.unpack(">HH", data[i + 5:i + 9])
                return w, h
            i += 2 + length
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = data[12:16]
        if kind == b"VP8L":
            b = data[21:25]
            w = 1 + (((b[1] & 0x3F) << 8) | b[0])
            h = 1 + (((b[3] & 0xF) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
            return w, h
        if kind == b"VP8X":
            w = 1 + int.from_bytes(data[24:27], "little")
            h = 1 + int.from_bytes(data[27:30], "little")
            return w, h
        if kind == b"VP8 ":
            w, h = struct.unpack("<HH", data[26:30])
            return w & 0x3FFF, h & 0x3FFF
    raise ValueError("unknown image format")


def rpc(method: str, params: dict | None = None, id: int = 1) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": id, "method": method, "params": params or {}})
