"""The README, run as written against the real binary: whom the first key acts as, another key from
`keys create` while the server runs, and the sign-up → invitation → login → acceptance → key walkthrough
(its curl commands are read from the README and sent as they stand)."""

from __future__ import annotations

import json
import re

import httpx2 as httpx

from helpers import ROOT, create_key, start_server

README = (ROOT / "README.md").read_text()


def section(heading: str) -> str:
    """The README's text under `## heading`, up to the next `## `."""
    start = README.index(f"\n## {heading}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else len(README)]


def sh_block(text: str) -> str:
    """The first ```sh block of a text."""
    return text.split("```sh\n", 1)[1].split("```", 1)[0]


def curl_commands(block: str) -> list[dict]:
    """Each `curl` of a shell block (continuation lines joined): its path, bearer variable and JSON body."""
    joined = re.sub(r"\\\n\s*", " ", block)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line.startswith("curl "):
            continue
        path = re.search(r"\$URL(/\S+)", line)
        body = re.search(r"-d '(.*)'\s*$", line)
        bearer = re.search(r"Bearer \$(\w+)", line)
        assert path and body, f"a curl the test cannot read: {line}"
        out.append({"path": path[1], "body": body[1], "bearer": bearer[1] if bearer else None})
    return out


def test_the_first_key_is_the_local_administrator_of_org_default(tmp_path):
    run = section("Run it")
    for fact in ["`admin@localhost`", "`usr_localadmin`", "`org_default`",
                 "(`images:read`, `images:write`, `admin`)"]:
        assert fact in run, f"the README does not say {fact}"
    s = start_server(tmp_path / "fresh", "readme-first-run", key="")
    try:
        first = s.process.wait_for_line("imk_")
        with s.http(first) as http:
            keys = http.get("/v1/keys").json()["keys"]
            assert [(k["org_id"], k["scopes"]) for k in keys] == [("org_default", ["images:read", "images:write", "admin"])]
            members = http.get("/v1/members").json()["members"]
            assert [(m["user_id"], set(m["roles"].values())) for m in members] == [("usr_localadmin", {"admin"})]
        # Another key, from the command the README gives, on the running server's data directory.
        more = sh_block(run)
        assert "target/release/imagemcp keys create" in more and "cargo run --release -p imagemcp -- keys create" in more
        assert "keys create --data-dir DIR" in run
        second = create_key(s.data_dir)
        with s.http(second) as http:
            assert http.get("/v1/images").status_code == 200
            assert len(http.get("/v1/keys").json()["keys"]) == 2
    finally:
        s.process.stop()


def test_the_invitation_walkthrough_works_as_written(offline_server):
    s = offline_server
    commands = curl_commands(sh_block(section("Sign up and invite someone")))
    assert [c["path"] for c in commands] == [
        "/v1/auth/signup", "/v1/invitations", "/v1/auth/login", "/v1/invitations/accept", "/v1/keys",
    ]
    variables = {"ADMIN_KEY": s.key}
    answers = {}
    with httpx.Client(base_url=s.url, timeout=120) as http:
        for c in commands:
            body = c["body"]
            if "invitation" in answers:
                body = body.replace('"inv_…"', json.dumps(answers["invitation"]["token"]))
            headers = {"Content-Type": "application/json"}
            if c["bearer"]:
                headers["Authorization"] = f"Bearer {variables[c['bearer']]}"
            r = http.post(c["path"], content=body, headers=headers)
            assert r.status_code in (200, 201), (c["path"], r.status_code, r.text)
            answers[{"/v1/auth/signup": "signup", "/v1/invitations": "invitation", "/v1/auth/login": "login",
                     "/v1/invitations/accept": "accept", "/v1/keys": "key"}[c["path"]]] = r.json()
            if c["path"] == "/v1/auth/login":
                variables["ADA_TOKEN"] = r.json()["access_token"]
    ada = answers["signup"]["user_id"]
    assert answers["accept"]["user_id"] == ada
    key = answers["key"]
    assert key["org_id"] == "org_default" and key["key"].startswith("imk_")
    # Her key acts in org_default with the invited role: she creates there, and the admin sees it.
    with s.http(key["key"]) as http:
        image = http.post("/v1/images", json={"prompt": "a teal circle"})
        assert image.status_code == 201, image.text
    with s.http() as admin:
        ids = [i["id"] for i in admin.get("/v1/images").json()["images"]]
        assert image.json()["images"][0]["id"] in ids
        roles = {m["user_id"]: set(m["roles"].values()) for m in admin.get("/v1/members").json()["members"]}
        assert roles[ada] == {"creator"}
    # The other way the README names: an admin issues her a key.
    with s.http() as admin:
        issued = admin.post(f"/v1/members/{ada}/keys", json={})
        assert issued.status_code == 201 and issued.json()["org_id"] == "org_default"
