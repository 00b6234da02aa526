"""The MCP tools end to end: the real binary, driven by the official Python SDK client, in both
protocol eras, on the offline model and against the fake OpenAI server."""

from __future__ import annotations

import base64
from typing import Any, Literal

import pytest
from mcp import MCPError, types

from conftest import MODES
from helpers import image_size, png

pytestmark = pytest.mark.anyio

TOOLS = {
    "openai_generate_image", "openai_edit_image", "openai_list_images",
    "openai_get_image", "openai_delete_image", "openai_list_conversations",
    "openai_generate_campaign_batch", "openai_get_job",
    "openai_view_audit_log", "openai_verify_audit_log", "openai_export_audit_log",
    "openai_export_user_data", "openai_delete_user_data", "openai_list_api_keys",
    "openai_create_api_key", "openai_rotate_api_key", "openai_revoke_api_key", "openai_list_members",
    "openai_set_member_role", "openai_remove_member", "openai_invite_member",
    "openai_accept_invitation", "openai_create_team",
    "openai_usage_summary", "openai_upgrade_plan", "openai_billing_portal", "openai_set_budget",
    "openai_whoami", "openai_list_teams", "openai_rename_team", "openai_delete_team",
}


def text_of(result) -> str:
    return " ".join(c.text for c in result.content if getattr(c, "type", "") == "text")


class RawToolCall(types.Request[dict[str, Any], Literal["tools/call"]]):
    """A `tools/call` whose params go out as given: the SDK's own call_tool only sends an object of
    arguments, but a client on the wire can send any JSON."""

    method: Literal["tools/call"] = "tools/call"
    name_param = "name"


@pytest.mark.parametrize("mode", MODES)
async def test_tools_are_listed_with_schemas_and_annotations(server, mode):
    async with server.client(mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.input_schema["type"] == "object", tool.name
        assert tool.output_schema and tool.output_schema["type"] == "object", tool.name
        assert tool.annotations is not None and tool.annotations.read_only_hint is not None, tool.name
    assert tools["openai_delete_image"].annotations.destructive_hint is True
    assert tools["openai_list_images"].annotations.read_only_hint is True
    assert tools["openai_generate_image"].annotations.read_only_hint is False
    assert "prompt" in tools["openai_generate_image"].input_schema["required"]


@pytest.mark.parametrize("mode", MODES)
async def test_generate_returns_preview_resource_link_and_structured_output(server, mode):
    async with server.client(mode) as client:
        result = await client.call_tool(
            "openai_generate_image",
            {"prompt": "a red fox logo on a navy background", "size": "1536x1024", "output_format": "webp"},
        )
        assert not result.is_error, text_of(result)
        data = result.structured_content
        image = data["images"][0]
        assert image["width"] == 1536 and image["height"] == 1024 and image["format"] == "webp"
        if server.fake is None:
            assert image["model"] == "offline"
        else:
            assert image["model"].startswith("gpt-image-")
        assert data["conversation_id"].startswith("conv_") and data["turn"] == 1
        kinds = [c.type for c in result.content]
        assert "image" in kinds and "resource_link" in kinds
        preview = next(c for c in result.content if c.type == "image")
        w, h = image_size(base64.b64decode(preview.data))
        assert max(w, h) <= 512 and abs(w / h - 1.5) < 0.02, (w, h)
        link = next(c for c in result.content if c.type == "resource_link")
        assert str(link.uri) == f"image://{image['id']}"
        # The full asset, as an MCP resource, is the real file of the requested size and format.
        read = await client.read_resource(str(link.uri))
        blob = base64.b64decode(read.contents[0].blob)
        assert read.contents[0].mime_type == "image/webp"
        assert blob[:4] == b"RIFF" and image_size(blob) == (1536, 1024)
        assert len(blob) == image["size_bytes"]
    # The signed download URL serves the same bytes without the API key; a tampered one does not.
    with server.http() as http:
        direct = http.get(image["url"], headers={"Authorization": ""})
        assert direct.status_code == 200 and direct.content == blob
        tampered = image["url"].replace("sig=", "sig=00")
        assert http.get(tampered).status_code == 403


@pytest.mark.parametrize("mode", MODES)
async def test_variations_progress_and_transparency(server, mode):
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, total, message))

    async with server.client(mode) as client:
        result = await client.call_tool(
            "openai_generate_image",
            {"prompt": "a teal and gold badge", "n": 4, "background": "transparent", "size": "1024x1024"},
            progress_callback=on_progress,
        )
    assert not result.is_error, text_of(result)
    images = result.structured_content["images"]
    assert len(images) == 4 and len({i["id"] for i in images}) == 4
    assert all(i["background"] == "transparent" and i["format"] == "png" for i in images)
    assert len(seen) >= 4, seen
    progresses = [p for p, _, _ in seen]
    assert progresses == sorted(progresses) and seen[-1][0] <= seen[-1][1]


@pytest.mark.parametrize("mode", MODES)
async def test_refine_a_conversation(server, mode):
    async with server.client(mode) as client:
        first = await client.call_tool("openai_generate_image", {"prompt": "a blue mountain poster"})
        conv = first.structured_content["conversation_id"]
        second = await client.call_tool(
            "openai_generate_image", {"prompt": "make the sky orange", "conversation_id": conv}
        )
        assert not second.is_error, text_of(second)
        assert second.structured_content["conversation_id"] == conv
        assert second.structured_content["turn"] == 2
        convs = await client.call_tool("openai_list_conversations", {})
        listed = convs.structured_content["conversations"]
        assert [c["id"] for c in listed] == [conv] and listed[0]["turns"] == 2
    if server.fake is not None:
        paths = [r["path"] for r in server.fake.requests()]
        assert "/v1/images/generations" in paths and "/v1/responses" in paths, paths


@pytest.mark.parametrize("mode", MODES)
async def test_edit_stored_image_with_mask(server, mode):
    async with server.client(mode) as client:
        made = await client.call_tool("openai_generate_image", {"prompt": "a green field", "size": "1024x1024"})
        source = made.structured_content["images"][0]
        mask = base64.b64encode(png(1024, 1024, (0, 0, 0, 255), (256, 256, 768, 768))).decode()
        edited = await client.call_tool(
            "openai_edit_image",
            {"prompt": "add a red barn in the middle", "image_ids": [source["id"]], "mask_base64": mask},
        )
        assert not edited.is_error, text_of(edited)
        out = edited.structured_content
        assert out["images"][0]["source"] == "edit"
        assert out["conversation_id"] == made.structured_content["conversation_id"] and out["turn"] == 2
        upload = base64.b64encode(png(64, 48, (10, 200, 10, 255))).decode()
        uploaded = await client.call_tool("openai_edit_image", {"prompt": "make it pink", "images_base64": [upload]})
        assert not uploaded.is_error, text_of(uploaded)
        assert uploaded.structured_content["turn"] == 1


@pytest.mark.parametrize("mode", MODES)
async def test_list_get_delete(server, mode):
    async with server.client(mode) as client:
        ids = []
        for prompt in ["one yellow star", "two purple stars", "three white stars"]:
            r = await client.call_tool("openai_generate_image", {"prompt": prompt, "quality": "low"})
            ids.append(r.structured_content["images"][0]["id"])
        page1 = await client.call_tool("openai_list_images", {"limit": 2})
        cursor = page1.structured_content["next_cursor"]
        page2 = await client.call_tool("openai_list_images", {"limit": 2, "cursor": cursor})
        # The text alone is enough to act on: each image's id and prompt, and the next cursor.
        text = text_of(page1)
        assert all(i in text for i in ids[1:]) and "three white stars" in text, text
        assert f'cursor "{cursor}"' in text, text
        assert ids[0] in text_of(page2) and "cursor" not in text_of(page2)
        listed = [i["id"] for i in page1.structured_content["images"] + page2.structured_content["images"]]
        assert listed == list(reversed(ids)), "newest first, no gaps, no repeats across pages"
        assert "next_cursor" not in page2.structured_content
        got = await client.call_tool("openai_get_image", {"image_id": ids[0]})
        assert got.structured_content["id"] == ids[0] and got.structured_content["prompt"] == "one yellow star"
        assert any(c.type == "image" for c in got.content)
        deleted = await client.call_tool("openai_delete_image", {"image_id": ids[0]})
        assert deleted.structured_content == {"image_id": ids[0], "deleted": True, "already_deleted": False}
        # Idempotent, as annotated: a second delete succeeds and says so.
        again = await client.call_tool("openai_delete_image", {"image_id": ids[0]})
        assert not again.is_error, text_of(again)
        assert again.structured_content == {"image_id": ids[0], "deleted": True, "already_deleted": True}
        assert "already deleted" in text_of(again)
        again = await client.call_tool("openai_get_image", {"image_id": ids[0]})
        assert again.is_error and "deleted" in text_of(again)
        with pytest.raises(MCPError):
            await client.read_resource(f"image://{ids[0]}")
        remaining = await client.call_tool("openai_list_images", {})
        assert [i["id"] for i in remaining.structured_content["images"]] == list(reversed(ids[1:]))


@pytest.mark.parametrize("mode", MODES)
async def test_bad_inputs_get_specific_errors_and_store_nothing(server, mode):
    big_upload = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * (26 * 1024 * 1024)).decode()
    cases = [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 32001}, "prompt"),
        ({"prompt": "a cat", "size": "huge"}, "size"),
        ({"prompt": "a cat", "size": "1000x1000"}, "size"),
        ({"prompt": "a cat", "n": 0}, "n"),
        ({"prompt": "a cat", "n": 5}, "n"),
        ({"prompt": "a cat", "quality": "ultra"}, "quality"),
        ({"prompt": "a cat", "background": "transparent", "output_format": "jpeg"}, "background"),
        ({"prompt": "a cat", "conversation_id": "conv_doesnotexist"}, "conversation"),
        ({"prompt": "a cat", "qualty": "high"}, "qualty"),
        ({"prompt": "a cat", "model": "gpt-image-1"}, "model"),
    ]
    async with server.client(mode) as client:
        for args, field in cases:
            r = await client.call_tool("openai_generate_image", args)
            assert r.is_error, args
            assert field in text_of(r), (field, text_of(r))
        made = await client.call_tool("openai_generate_image", {"prompt": "a cat", "size": "1024x1024"})
        good_id = made.structured_content["images"][0]["id"]
        edit_cases = [
            ({"prompt": "x", "image_ids": ["img_unknown"]}, "not found"),
            ({"prompt": "x", "image_ids": ["../../etc/passwd"]}, "image_ids[0]"),
            ({"prompt": "x", "images_base64": [base64.b64encode(b"not an image").decode()]}, "images_base64[0]"),
            ({"prompt": "x", "images_base64": [big_upload]}, "images_base64[0]"),
            ({"prompt": "x", "image_ids": [good_id], "mask_base64": base64.b64encode(png(10, 10)).decode()}, "mask"),
            ({"prompt": "x"}, "image"),
        ]
        for args, needle in edit_cases:
            r = await client.call_tool("openai_edit_image", args)
            assert r.is_error and needle in text_of(r), (needle, text_of(r)[:300])
        for tool in ["openai_get_image", "openai_delete_image"]:
            r = await client.call_tool(tool, {"image_id": "img_nope"})
            assert r.is_error and "not found" in text_of(r)
        listed = await client.call_tool("openai_list_images", {})
        assert [i["id"] for i in listed.structured_content["images"]] == [good_id], "failed calls stored nothing"
        with pytest.raises(MCPError) as unknown_tool:
            await client.call_tool("openai_no_such_tool", {})
        assert unknown_tool.value.error.code == -32602
    if server.fake is not None:
        paths = ("/v1/images/generations", "/v1/images/edits")
        model_calls = [r for r in server.fake.requests() if r["path"] in paths]
        assert len(model_calls) == 1, "invalid requests never reach the model"


@pytest.mark.parametrize("mode", MODES)
async def test_flagged_prompt_is_refused_before_the_model(server, mode):
    async with server.client(mode) as client:
        r = await client.call_tool("openai_generate_image", {"prompt": "graphic gore and dismemberment"})
        assert r.is_error and "flagged" in text_of(r), text_of(r)
        listed = await client.call_tool("openai_list_images", {})
        assert listed.structured_content["images"] == []


async def test_auto_mode_negotiates_the_stateless_revision(offline_server):
    async with offline_server.client("auto") as client:
        assert client.session.discover_result is not None, "auto mode found server/discover"
        r = await client.call_tool("openai_generate_image", {"prompt": "a small gold coin"})
        assert not r.is_error and r.structured_content["images"][0]["model"] == "offline"


@pytest.mark.parametrize("mode", MODES)
async def test_read_only_tools_answer_within_their_output_schemas(server, mode):
    # The SDK validates each structuredContent against the tool's outputSchema, so a field the
    # schema does not allow (a `null` where it says integer, say) fails here.
    async with server.client(mode) as client:
        tools = (await client.list_tools()).tools
        no_args = [t.name for t in tools if t.annotations.read_only_hint and not t.input_schema.get("required")]
        assert "openai_usage_summary" in no_args, no_args
        for name in no_args:
            result = await client.call_tool(name, {})
            assert not result.is_error, (name, text_of(result))
            assert isinstance(result.structured_content, dict), name
        usage = (await client.call_tool("openai_usage_summary", {})).structured_content
    # Billing is off on the embedded default: the local plan, unlimited (no limit fields at all).
    assert usage["tier"] == "local", usage
    assert "included_images" not in usage and "remaining_images" not in usage, usage


@pytest.mark.parametrize("mode", MODES)
async def test_arguments_that_are_not_an_object_are_refused_and_nothing_is_made_or_charged(openai_server, mode):
    # In field order this array is n=4 at high quality: far over the confirmation threshold.
    costly = ["four costly squares", "1024x1024", "high", None, None, None, 4]
    async with openai_server.client(mode) as client:
        for tool in ["openai_generate_image", "openai_generate_campaign_batch"]:
            for arguments in [costly, "four costly squares", 4]:
                with pytest.raises(MCPError) as refused:
                    await client.session.send_request(
                        RawToolCall(params={"name": tool, "arguments": arguments}), types.CallToolResult
                    )
                assert refused.value.error.code == -32602, (tool, arguments)
                assert "`arguments` must be a JSON object" in refused.value.error.message
        assert (await client.call_tool("openai_list_images", {})).structured_content["images"] == []
        usage = (await client.call_tool("openai_usage_summary", {})).structured_content
    assert (usage["used_images"], usage["model_cost_micros"]) == (0, 0), usage
    assert openai_server.fake.requests() == [], "nothing reached the model, not even moderation"


@pytest.mark.parametrize("mode", MODES)
async def test_texts_say_what_happened(offline_server, mode):
    async with offline_server.client(mode) as client:
        args = {"prompt": "a copper teapot on a windowsill", "quality": "low"}
        first = await client.call_tool("openai_generate_image", args)
        assert text_of(first).startswith("Created 1 image(s)"), text_of(first)
        cached = await client.call_tool("openai_generate_image", args)
        assert cached.structured_content.get("cache"), cached.structured_content
        assert text_of(cached).startswith("From the cache:"), text_of(cached)
        usage = await client.call_tool("openai_usage_summary", {})
        period = f"period {usage.structured_content['period_start']} to {usage.structured_content['period_end']}"
        assert period in text_of(usage), text_of(usage)
        # Billing is off here: the refusals name no argument that does not exist.
        for name, arguments in [("openai_upgrade_plan", {"tier": "pro"}), ("openai_billing_portal", {})]:
            refused = await client.call_tool(name, arguments)
            assert refused.is_error and "billing is off" in text_of(refused), text_of(refused)
            assert "Invalid argument" not in text_of(refused), text_of(refused)
