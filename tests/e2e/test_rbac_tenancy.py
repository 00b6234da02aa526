"""The access model against the running server: the whole role x action matrix, walked through the
routes and tools that perform each action, and tenant isolation (another org's ids are "not found",
never "forbidden", on every read, write and delete route and tool)."""

from __future__ import annotations

import secrets

import httpx2 as httpx
import pytest

from test_oauth_browser import remember_secret

pytestmark = pytest.mark.anyio

ROLES = ["admin", "creator", "reviewer", "viewer"]
PASSWORD = "tenancy-password-" + secrets.token_hex(6)

# A copy of core's `rbac::MATRIX`, checked against what the server prints, so a change to the
# matrix is a deliberate change to this test too.
MATRIX = {
    "admin": {"view_images", "generate", "edit", "delete_own", "delete_any", "manage_brand_kits", "review",
              "manage_members", "manage_own_keys", "manage_billing", "view_audit_log", "export_data",
              "view_usage"},
    "creator": {"view_images", "generate", "edit", "delete_own", "manage_own_keys", "view_usage"},
    "reviewer": {"view_images", "review", "manage_own_keys", "view_usage"},
    "viewer": {"view_images"},
}

# Actions that no route or tool performs yet (brand kits, reviews, billing, usage arrive with their
# features); the walk fails when one gains a surface without gaining a probe here.
NO_SURFACE_YET = {"manage_brand_kits", "review", "manage_billing", "view_usage"}


def ok(r, *codes):
    assert r.status_code in codes, (r.status_code, r.text)
    return r.json() if r.content else None


# What a credential of each role carries by default, and at most (`Role::scopes`).
ROLE_SCOPES = {
    "admin": ["images:read", "images:write", "admin"],
    "creator": ["images:read", "images:write"],
    "reviewer": ["images:read", "images:write"],
    "viewer": ["images:read"],
}


def provision(http, email: str, role: str) -> tuple[str, str]:
    """A new member of the admin's org with `role`, and a key the admin issues them there asking
    for `admin` (the key gets what the role can use)."""
    user = ok(http.post("/v1/members", json={"email": email, "role": role, "name": role.title()}), 201)
    key = ok(http.post(f"/v1/members/{user['user_id']}/keys", json={"scopes": "admin", "label": role}), 201)
    return user["user_id"], key["key"]


def text_of(result) -> str:
    return " ".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def outcome(r) -> str:
    if r.status_code in (200, 201):
        return "allowed"
    assert r.status_code == 403, (r.status_code, r.text)
    assert r.json()["error"]["code"] == "forbidden"
    return "denied"


async def test_every_role_and_action_against_the_running_server(offline_server):
    s = offline_server
    with s.http() as admin:
        matrix = ok(admin.get("/v1/rbac"), 200)
        assert {r: set(a) for r, a in matrix["roles"].items()} == MATRIX
        every_action = {a["action"] for a in matrix["actions"]}
        assert every_action == MATRIX["admin"]

        team = ok(admin.get("/v1/members"), 200)["members"][0]["roles"]
        default_team = next(iter(team))
        users = {role: provision(admin, f"{role}@rbac.example", role) for role in ROLES}
        theirs = ok(admin.post("/v1/images", json={"prompt": "an admin's square", "fresh": True}), 201)["images"][0]["id"]

        def set_role(user_id: str, role: str):
            ok(admin.put(f"/v1/members/{user_id}/role", json={"role": role, "team_id": default_team}), 200)

        seen = {}
        for role, (user_id, key) in users.items():
            with s.http(key) as http:
                # The key carries what the role can use, whatever it was asked for: whoami says
                # so to every role, and the key listing to those who may list keys.
                me = ok(http.get("/v1/me"), 200)
                assert (me["user_id"], me["role"], me["scopes"]) == (user_id, role, ROLE_SCOPES[role])
                if "manage_own_keys" in MATRIX[role]:
                    listed = ok(http.get("/v1/keys"), 200)["keys"]
                    assert [k["scopes"] for k in listed] == [ROLE_SCOPES[role]], listed
                async with s.client("2026-07-28", key=key) as mcp:
                    listed = {t.name for t in (await mcp.list_tools()).tools}

                    async def edit_probe():
                        result = await mcp.call_tool("openai_edit_image", {"prompt": "make it blue", "image_ids": [theirs]})
                        if not result.is_error:
                            return "allowed"
                        assert "does not allow" in text_of(result), text_of(result)
                        return "denied"

                    def delete_own_probe():
                        # Give the member an image of their own (as a creator, briefly, with a key
                        # made meanwhile: their own key keeps the scopes of the role it was made
                        # for), then try to delete it with their real role.
                        set_role(user_id, "creator")
                        as_creator = ok(admin.post(f"/v1/members/{user_id}/keys", json={"label": "probe"}), 201)["key"]
                        with s.http(as_creator) as creator:
                            own = ok(creator.post("/v1/images", json={"prompt": "my own square", "fresh": True}), 201)["images"][0]["id"]
                        set_role(user_id, role)
                        return outcome(http.delete(f"/v1/images/{own}"))

                    def delete_any_probe():
                        victim = ok(admin.post("/v1/images", json={"prompt": "a victim square", "fresh": True}), 201)["images"][0]["id"]
                        return outcome(http.delete(f"/v1/images/{victim}"))

                    probes = {
                        "view_images": lambda: outcome(http.get("/v1/images")),
                        "generate": lambda: outcome(http.post("/v1/images", json={"prompt": "a probe", "fresh": True})),
                        "delete_own": delete_own_probe,
                        "delete_any": delete_any_probe,
                        "manage_members": lambda: outcome(http.get("/v1/members")),
                        "manage_own_keys": lambda: outcome(http.post("/v1/keys", json={"scopes": "images:read"})),
                        "view_audit_log": lambda: outcome(http.get("/v1/audit")),
                        "export_data": lambda: outcome(http.post("/v1/audit/export", json={})),
                    }
                    assert set(probes) | {"edit"} | NO_SURFACE_YET == every_action, "every action has a probe"
                    for action, probe in probes.items():
                        seen[(role, action)] = probe()
                    seen[(role, "edit")] = await edit_probe()
                    # tools/list shows exactly the tools the role may call.
                    assert ("openai_generate_image" in listed) == ("generate" in MATRIX[role])
                    assert ("openai_view_audit_log" in listed) == ("view_audit_log" in MATRIX[role])
                    assert ("openai_list_members" in listed) == ("manage_members" in MATRIX[role])
                    assert ("openai_create_api_key" in listed) == ("manage_own_keys" in MATRIX[role])
                    assert ("openai_upgrade_plan" in listed) == ("manage_billing" in MATRIX[role])
                    assert ("openai_usage_summary" in listed) == ("view_usage" in MATRIX[role])
                    assert {"openai_whoami", "openai_list_teams"} <= listed, role
                    assert ("openai_rename_team" in listed) == ("manage_members" in MATRIX[role])
                    assert ("openai_delete_team" in listed) == ("manage_members" in MATRIX[role])
        for (role, action), got in seen.items():
            want = "allowed" if action in MATRIX[role] else "denied"
            assert got == want, f"{role} × {action}: {got}, the matrix says {want}"
        assert len(seen) == len(ROLES) * (len(every_action) - len(NO_SURFACE_YET))

        # Every change above was audited, and the chain holds.
        log = ok(admin.get("/v1/audit", params={"limit": 200, "verify": "true"}), 200)
        actions = {e["action"] for e in log["entries"]}
        assert {"member.provision", "key.create", "member.role_change", "image.generate", "image.delete"} <= actions
        assert log["verification"]["ok"] is True


def login(s, email: str, **extra) -> dict:
    r = httpx.post(f"{s.url}/v1/auth/login", json={"email": email, "password": PASSWORD, **extra})
    tokens = ok(r, 200)
    remember_secret(tokens["access_token"])
    remember_secret(tokens["refresh_token"])
    return tokens


async def test_another_orgs_ids_are_not_found_everywhere(offline_server):
    s = offline_server
    # Bob signs up (his personal org B is where the other tenant's data lives) and joins org A.
    remember_secret(PASSWORD)
    for email in ("bob@tenant.example", "mallory@tenant.example"):
        ok(httpx.post(f"{s.url}/v1/auth/signup", json={"email": email, "password": PASSWORD}), 201)
    home = login(s, "bob@tenant.example")
    org_b = home["org_id"]
    with s.http() as a:
        inv = ok(a.post("/v1/invitations", json={"email": "bob@tenant.example", "role": "creator"}), 201)
        remember_secret(inv["token"])
    with s.http(home["access_token"]) as bob_b:
        bob_id = ok(bob_b.post("/v1/invitations/accept", json={"token": inv["token"]}), 200)["user_id"]
    # A login naming org A acts there, as a creator; one naming B, as B's admin.
    in_a = login(s, "bob@tenant.example", org_id="org_default")
    assert (in_a["org_id"], in_a["scope"]) == ("org_default", "images:read images:write")
    in_b = login(s, "bob@tenant.example", org_id=org_b)
    assert (in_b["org_id"], in_b["scope"]) == (org_b, "images:read images:write admin")
    with s.http(in_a["access_token"]) as bob_a:
        bob_key_in_a = ok(bob_a.post("/v1/keys", json={"label": "bob in A"}), 201)["key"]
        me = ok(bob_a.get("/v1/me"), 200)
        assert {o["org_id"]: o["role"] for o in me["organisations"]} == {"org_default": "creator", org_b: "admin"}
    with s.http(bob_key_in_a) as bob_a:
        keys = ok(bob_a.get("/v1/keys"), 200)["keys"]
        assert len(keys) == 1
    with s.http() as a:
        a_members = ok(a.get("/v1/members"), 200)["members"]
        a_team = next(iter(next(m for m in a_members if m["user_id"] != bob_id)["roles"]))

    # Bob makes himself an admin key in B with his B session.
    with s.http(in_b["access_token"]) as bob_b:
        key_b = ok(bob_b.post("/v1/keys", json={"scopes": "admin"}), 201)
    with s.http(key_b["key"]) as b:
        img_b = ok(b.post("/v1/images", json={"prompt": "tenant B's secret"}), 201)
        image_b = img_b["images"][0]["id"]
        conv_b = img_b["conversation_id"]
        carol = ok(b.post("/v1/members", json={"email": "carol@tenant.example", "role": "viewer"}), 201)["user_id"]
        team_b = ok(b.post("/v1/teams", json={"name": "B team"}), 201)["team_id"]
        b_key_id = key_b["key_id"]

    not_found = []
    with s.http() as a:
        checks = {
            "GET image": a.get(f"/v1/images/{image_b}"),
            "GET content": a.get(f"/v1/images/{image_b}/content"),
            "DELETE image": a.delete(f"/v1/images/{image_b}"),
            "refine conversation": a.post("/v1/images", json={"prompt": "x", "conversation_id": conv_b}),
            "PUT role": a.put(f"/v1/members/{carol}/role", json={"role": "admin"}),
            "DELETE member": a.delete(f"/v1/members/{carol}"),
            "issue key": a.post(f"/v1/members/{carol}/keys", json={"scopes": "images:read"}),
            "role in B's team": a.put(f"/v1/members/{bob_id}/role", json={"role": "viewer", "team_id": team_b}),
            "invite to B's team": a.post("/v1/invitations", json={"email": "eve@x.example", "role": "admin", "team_id": team_b}),
            "key in B": a.post("/v1/keys", json={"org_id": org_b, "scopes": "admin"}),
            "rotate B's key": a.post(f"/v1/keys/{b_key_id}/rotate"),
            "revoke B's key": a.delete(f"/v1/keys/{b_key_id}"),
            "rename B's team": a.patch(f"/v1/teams/{team_b}", json={"name": "mine now"}),
            "delete B's team": a.delete(f"/v1/teams/{team_b}"),
            "log in to B as an outsider": httpx.post(f"{s.url}/v1/auth/login", json={
                "email": "mallory@tenant.example", "password": PASSWORD, "org_id": org_b}),
            "log in to an org that does not exist": httpx.post(f"{s.url}/v1/auth/login", json={
                "email": "mallory@tenant.example", "password": PASSWORD, "org_id": "org_" + "0" * 32}),
        }
        for name, r in checks.items():
            assert r.status_code == 404, (name, r.status_code, r.text)
            assert r.json()["error"]["code"] == "not_found", name
            not_found.append(name)
        # The same answer as for ids that exist nowhere: no existence oracle.
        ghost = a.get("/v1/images/img_00000000000000000000000000000000")
        assert ghost.status_code == 404 and ghost.json()["error"]["code"] == "not_found"
        log = ok(a.get("/v1/audit", params={"user_id": carol}), 200)
        assert log["entries"] == []
        listed = ok(a.get("/v1/images"), 200)["images"]
        assert image_b not in {i["id"] for i in listed}
        assert team_b not in {t["team_id"] for t in ok(a.get("/v1/teams"), 200)["teams"]}
        a_key = ok(a.get("/v1/keys"), 200)["keys"][0]["key_id"]

    async with s.client("2026-07-28") as mcp:
        calls = {
            "openai_get_image": {"image_id": image_b},
            "openai_delete_image": {"image_id": image_b},
            "openai_edit_image": {"prompt": "steal it", "image_ids": [image_b]},
            "openai_generate_image": {"prompt": "x", "conversation_id": conv_b},
            "openai_set_member_role": {"user_id": carol, "role": "admin"},
            "openai_remove_member": {"user_id": carol},
            "openai_invite_member": {"email": "eve@x.example", "role": "admin", "team_id": team_b},
            "openai_rotate_api_key": {"key_id": b_key_id},
            "openai_revoke_api_key": {"key_id": b_key_id},
            "openai_create_api_key": {"org_id": org_b},
            "openai_rename_team": {"team_id": team_b, "name": "mine now"},
            "openai_delete_team": {"team_id": team_b},
        }
        for name, args in calls.items():
            result = await mcp.call_tool(name, args)
            assert result.is_error, name
            assert "not found" in text_of(result), (name, text_of(result))
            assert "forbidden" not in text_of(result).lower(), name
        resource = f"image://{image_b}"
        with pytest.raises(Exception) as err:
            await mcp.read_resource(resource)
        assert "not found" in str(err.value).lower()

    # B is untouched.
    with s.http(key_b["key"]) as b:
        assert ok(b.get(f"/v1/images/{image_b}"), 200)["id"] == image_b
        assert {m["user_id"] for m in ok(b.get("/v1/members"), 200)["members"]} == {bob_id, carol}
        assert "B team" in {t["name"] for t in ok(b.get("/v1/teams"), 200)["teams"]}
        assert ok(b.get("/v1/audit/verify"), 200)["ok"] is True
    assert a_key and a_team and len(not_found) == len(checks)

