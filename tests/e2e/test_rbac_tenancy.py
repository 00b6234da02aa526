"""The access model against the running server: the whole role x action matrix, walked through the
routes and tools that perform each action, and tenant isolation (another org's ids are "not found",
never "forbidden", on every read, write and delete route and tool)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio

ROLES = ["admin", "creator", "reviewer", "viewer"]

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


def provision(http, email: str, role: str) -> tuple[str, str]:
    """A new member of the admin's org with `role`, and an admin-scoped key for them there."""
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
                async with s.client("2026-07-28", key=key) as mcp:
                    listed = {t.name for t in (await mcp.list_tools()).tools}

                    async def edit_probe():
                        result = await mcp.call_tool("openai_edit_image", {"prompt": "make it blue", "image_ids": [theirs]})
                        if not result.is_error:
                            return "allowed"
                        assert "does not allow" in text_of(result), text_of(result)
                        return "denied"

                    def delete_own_probe():
                        # Give the member an image of their own (as a creator, briefly), then try
                        # to delete it with their real role.
                        set_role(user_id, "creator")
                        own = ok(http.post("/v1/images", json={"prompt": "my own square", "fresh": True}), 201)["images"][0]["id"]
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
        for (role, action), got in seen.items():
            want = "allowed" if action in MATRIX[role] else "denied"
            assert got == want, f"{role} × {action}: {got}, the matrix says {want}"
        assert len(seen) == len(ROLES) * (len(every_action) - len(NO_SURFACE_YET))

        # Every change above was audited, and the chain holds.
        log = ok(admin.get("/v1/audit", params={"limit": 200, "verify": "true"}), 200)
        actions = {e["action"] for e in log["entries"]}
        assert {"member.provision", "key.create", "member.role_change", "image.generate", "image.delete"} <= actions
        assert log["verification"]["ok"] is True


async def test_another_orgs_ids_are_not_found_everywhere(offline_server):
    s = offline_server
    with s.http() as a:
        # Bob joins org A; his personal org B is where the other tenant's data lives.
        bob_id, bob_key_in_a = provision(a, "bob@tenant.example", "creator")
        with s.http(bob_key_in_a) as bob_a:
            keys = ok(bob_a.get("/v1/keys"), 200)["keys"]
            assert len(keys) == 1
        a_members = ok(a.get("/v1/members"), 200)["members"]
        a_team = next(iter(next(m for m in a_members if m["user_id"] != bob_id)["roles"]))

    # Bob makes himself a key in his personal org B, where he is the admin.
    org_b = await personal_org(s, bob_key_in_a)
    with s.http(bob_key_in_a) as bob_a:
        key_b = ok(bob_a.post("/v1/keys", json={"org_id": org_b, "scopes": "admin"}), 201)
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
        assert ok(b.get("/v1/audit/verify"), 200)["ok"] is True
    assert a_key and a_team and len(not_found) == len(checks)


async def personal_org(s, key: str) -> str:
    """The personal org of a key's owner, from their GDPR export (the only place a member learns
    their other organisations' ids without a listing route)."""
    import io
    import json
    import zipfile

    with s.http(key) as http:
        export = ok(http.post("/v1/me/export"), 201)
        data = http.get(export["url"], headers={"Authorization": ""}).content
    profile = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("profile.json"))
    return profile["personal_org"]
