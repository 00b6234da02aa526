//! Campaigns as a design-ops user runs them, through the MCP handler: the roadmap's argument names
//! (and the old ones as aliases), a human campaign name turned into safe file names, each asset at
//! its exact aspect ratio, and the file names carried by downloads and resources.

use std::sync::Arc;

use imagemcp_app::App;
use imagemcp_app::auth::Caller;
use imagemcp_local::queue::SqliteQueue;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::mcp_tasks::call;

struct Rig {
    _t: TestApp,
    app: App,
    queue: Arc<SqliteQueue>,
    _fake: fake_openai::FakeOpenAi,
}

/// The app on the fake OpenAI (GPT Image 2.5 by default: any size within its rules) with a queue
/// the test drains.
async fn rig() -> Rig {
    let t = TestApp::new();
    let queue = Arc::new(SqliteQueue::open_in_memory(t.app.ports.clock.clone(), 3).unwrap());
    let (app, fake) = crate::billing::on_fake_openai(&t, |ports| ports.queue = queue.clone()).await;
    Rig {
        _t: t,
        app,
        queue,
        _fake: fake,
    }
}

impl Rig {
    async fn tool(&self, caller: &Caller, name: &str, arguments: Value) -> Value {
        let (status, m) = call(
            &self.app,
            caller,
            "tools/call",
            json!({"name": name, "arguments": arguments}),
            json!({}),
        )
        .await;
        assert_eq!(status, 200, "{m}");
        assert_eq!(m["result"]["isError"], false, "{m}");
        m["result"].clone()
    }

    /// Submits a campaign, runs it, and returns the finished job's view.
    async fn campaign(&self, caller: &Caller, arguments: Value) -> Value {
        let submitted = self
            .tool(caller, "openai_generate_campaign_batch", arguments)
            .await;
        let job_id = submitted["structuredContent"]["job_id"].clone();
        imagemcp_app::testing::drain(&self.app, self.queue.as_ref())
            .await
            .unwrap();
        let view = self
            .tool(caller, "openai_get_job", json!({"job_id": job_id}))
            .await;
        assert_eq!(view["structuredContent"]["status"], "done", "{view}");
        view["structuredContent"].clone()
    }
}

fn item<'a>(view: &'a Value, asset: &str) -> &'a Value {
    view["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["result"])
        .find(|r| r["asset_type"] == asset)
        .unwrap_or_else(|| panic!("no {asset} in {view}"))
}

#[tokio::test]
async fn a_kit_named_like_people_name_campaigns_renders_exact_ratios_under_its_file_names() {
    let r = rig().await;
    let caller = TestApp::caller("org_kit");
    let view = r
        .campaign(
            &caller,
            json!({"campaign_name": "Spring Launch", "template_type": "social_media_kit",
                   "core_prompt": "a tulip field at dawn", "quality": "low", "version": 2}),
        )
        .await;
    assert_eq!(view["items_done"], 5);
    for (asset, size, ratio) in [
        ("hero", (1536, 1024), "3:2"),
        ("square", (1024, 1024), "1:1"),
        ("story", (864, 1536), "9:16"),
        ("landscape", (1536, 864), "16:9"),
        ("portrait", (1024, 1280), "4:5"),
    ] {
        let result = item(&view, asset);
        assert_eq!(
            (result["width"].as_u64(), result["height"].as_u64()),
            (Some(size.0), Some(size.1)),
            "{asset}: {result}"
        );
        assert_eq!(result["aspect_ratio"], ratio);
        assert_eq!(result["exact_aspect"], true);
        assert_eq!(
            result["file_name"],
            format!("spring-launch_{asset}_v2.png"),
            "{result}"
        );
    }

    // The story's image: its download is saved under the file name, and its resource is named so.
    let story = item(&view, "story");
    let id = story["image_id"].as_str().unwrap();
    let got = r
        .tool(&caller, "openai_get_image", json!({"image_id": id}))
        .await;
    let url = got["structuredContent"]["url"].as_str().unwrap();
    assert!(url.contains("&name=spring-launch_story_v2.png&"), "{url}");
    let link = got["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "resource_link")
        .unwrap();
    assert_eq!(link["name"], "spring-launch_story_v2.png");
    let (_, read) = call(
        &r.app,
        &caller,
        "resources/read",
        json!({"uri": format!("image://{id}")}),
        json!({}),
    )
    .await;
    assert_eq!(
        read["result"]["contents"][0]["_meta"]["io.imagemcp/file_name"],
        "spring-launch_story_v2.png",
        "{read}"
    );
    let (_, listed) = call(&r.app, &caller, "resources/list", json!({}), json!({})).await;
    let names: Vec<&str> = listed["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(
        names.contains(&"spring-launch_portrait_v2.png"),
        "{names:?}"
    );
    // The campaign's cost is attributed under its safe name.
    let month = imagemcp_app::images::record::month_of(r.app.ports.clock.now_ms());
    let key = imagemcp_app::images::record::usage_key(
        &caller.org,
        &month,
        "cost_micros#campaign#spring-launch",
    );
    let attributed = imagemcp_core::table::Table::get(r.app.ports.table.as_ref(), &key)
        .await
        .unwrap()
        .and_then(|i| i.int("value"));
    assert!(attributed.is_some_and(|v| v > 0), "{attributed:?}");
}

#[tokio::test]
async fn the_old_argument_names_still_work_and_the_schema_shows_the_new_ones() {
    let r = rig().await;
    let caller = TestApp::caller("org_alias");
    let view = r
        .campaign(
            &caller,
            json!({"campaign": "autumn", "template": "presentation", "slides": 5,
                   "prompt": "a maple leaf", "quality": "low"}),
        )
        .await;
    let slide = item(&view, "slide01");
    assert_eq!(slide["file_name"], "autumn_slide01_v1.png");
    assert_eq!(
        (slide["width"].as_u64(), slide["height"].as_u64()),
        (Some(1536), Some(864))
    );

    let (_, tools) = call(&r.app, &caller, "tools/list", json!({}), json!({})).await;
    let tool = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "openai_generate_campaign_batch")
        .unwrap();
    let schema = &tool["inputSchema"];
    let mut required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    required.sort_unstable();
    assert_eq!(required, ["campaign_name", "core_prompt", "template_type"]);
    for old in ["campaign", "template", "prompt"] {
        assert!(schema["properties"].get(old).is_none(), "{old} in {schema}");
    }

    // A bad name is refused, naming the argument, and makes no job.
    let (_, refused) = call(
        &r.app,
        &caller,
        "tools/call",
        json!({"name": "openai_generate_campaign_batch", "arguments":
               {"campaign_name": "春", "template_type": "email", "core_prompt": "x"}}),
        json!({}),
    )
    .await;
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    let text = refused["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("campaign_name"), "{text}");
}

/// The cost confirmation estimates a campaign whichever names its arguments use: the roadmap's
/// names cannot slip past it as unparseable (estimated at nothing).
#[tokio::test]
async fn a_campaign_under_either_names_is_estimated_the_same_before_it_runs() {
    let r = rig().await;
    let estimate = |args: Value| {
        imagemcp_app::mcp::confirm::estimate_micros(&r.app, "openai_generate_campaign_batch", &args)
    };
    let new = estimate(json!({"campaign_name": "Spring Launch",
        "template_type": "social_media_kit", "core_prompt": "a tulip", "quality": "high"}));
    let old = estimate(json!({"campaign": "spring", "template": "social_media_kit",
        "prompt": "a tulip", "quality": "high"}));
    assert!(new > 0, "{new}");
    assert_eq!(new, old);
}

/// A quality or version the campaign cannot use is refused when it is submitted, naming the
/// argument, and queues nothing: not accepted and then failed item by item.
#[tokio::test]
async fn a_bad_quality_or_version_is_refused_at_submission() {
    let r = rig().await;
    let caller = TestApp::caller("org_badargs");
    for (args, field) in [
        (json!({"quality": "ultra"}), "quality"),
        (json!({"version": 0}), "version"),
        (json!({"version": 1000}), "version"),
    ] {
        let mut arguments =
            json!({"campaign_name": "Spring", "template_type": "email", "core_prompt": "a tulip"});
        arguments
            .as_object_mut()
            .unwrap()
            .extend(args.as_object().unwrap().clone());
        let (_, m) = call(
            &r.app,
            &caller,
            "tools/call",
            json!({"name": "openai_generate_campaign_batch", "arguments": arguments}),
            json!({}),
        )
        .await;
        assert_eq!(m["result"]["isError"], true, "{args}: {m}");
        assert_eq!(
            m["result"]["_meta"]["io.imagemcp/error"]["field"], field,
            "{m}"
        );
    }
    let counts = r.queue.counts().await.unwrap();
    assert_eq!((counts.ready, counts.waiting), (0, 0), "nothing was queued");
}
