//! The code map (`xtask/codemap.toml`) against every manifest of the workspace, one test per rule,
//! and the invariants that concern single crates: what the Lambda functions link, what the DynamoDB
//! mapping and the core know, which way the application and the adapters point.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use xtask::codemap::CodeMap;
use xtask::manifest::Workspace;
use xtask::rules::{self, Rule, Violation};

static WORKSPACE: LazyLock<Workspace> =
    LazyLock::new(|| Workspace::load(&xtask::root()).expect("the workspace's manifests"));

static MAP: LazyLock<CodeMap> =
    LazyLock::new(|| CodeMap::load(&xtask::codemap_path()).expect("xtask/codemap.toml"));

static VIOLATIONS: LazyLock<Vec<Violation>> = LazyLock::new(|| rules::check(&WORKSPACE, &MAP));

/// Fails with every violation of `rule`, one a line.
fn holds(rule: Rule) {
    let broken: Vec<String> = VIOLATIONS
        .iter()
        .filter(|v| v.rule == rule)
        .map(|v| v.message.clone())
        .collect();
    assert!(
        broken.is_empty(),
        "{rule:?} is broken (the rules are in xtask/codemap.toml):\n  {}",
        broken.join("\n  ")
    );
}

/// One test per rule, named for the invariant it keeps.
macro_rules! rule_tests {
    ($($name:ident: $($rule:ident),+;)*) => {$(
        #[test]
        fn $name() {
            $(holds(Rule::$rule);)+
        }
    )*};
}

rule_tests! {
    every_workspace_crate_is_on_the_code_map: Map;
    the_core_links_no_crate_of_ours_and_no_io_runtime_protocol_or_sdk: Core;
    adapters_link_only_the_core: Adapters;
    application_crates_point_down_their_ranks: Application;
    only_the_mcp_crate_knows_rmcp_and_only_the_http_crate_axum: Protocols;
    runtimes_link_only_what_is_below_them: Runtimes;
    fakes_and_tools_stand_apart: Fakes, Tools;
    tests_use_no_runtime_or_tool: Tests;
    shared_dependencies_are_pinned_once_in_the_workspace: Pins;
    every_exception_is_still_needed: Exceptions;
}

/// The packages a member links (every table but the dev ones, per target too), and those its
/// tests use when `dev` is set.
fn dependencies(package: &str, dev: bool) -> Vec<String> {
    WORKSPACE
        .members
        .get(package)
        .unwrap_or_else(|| panic!("{package} is not a workspace crate"))
        .dependencies
        .iter()
        .filter(|d| dev || d.kind.links())
        .map(|d| d.package.clone())
        .collect()
}

/// The workspace packages `package` depends on, directly or not: its own dev-dependencies
/// included (its tests and benches link them), those of the packages it reaches not (Cargo never
/// builds them for it).
fn reachable_from(package: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![(package.to_owned(), true)];
    while let Some((name, dev)) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        for dep in dependencies(&name, dev) {
            if WORKSPACE.members.contains_key(&dep) {
                todo.push((dep, false));
            }
        }
    }
    seen
}

#[test]
fn the_lambda_functions_never_link_sqlite() {
    // SQLite is the embedded default's; the functions' zips carry only what runs on AWS.
    let reached = reachable_from("imagemcp-lambda");
    assert!(
        reached.contains("imagemcp-aws") && reached.contains("imagemcp-offline"),
        "the walk follows the path dependencies: {reached:?}"
    );
    for name in &reached {
        for dep in dependencies(name, name == "imagemcp-lambda") {
            assert!(
                dep != "rusqlite" && dep != "imagemcp-local",
                "imagemcp-lambda reaches {dep} through {name}"
            );
        }
    }
}

#[test]
fn the_dynamodb_mapping_knows_no_sdk_or_runtime() {
    // One mapping for the SDK and the Worker's `fetch`: it must build for both, so it names neither.
    let deps = dependencies("imagemcp-dynamo", false);
    for name in &deps {
        assert!(
            !name.starts_with("aws")
                && !["reqwest", "worker", "tokio", "hyper", "imagemcp-app"]
                    .contains(&name.as_str()),
            "imagemcp-dynamo must not depend on {name}"
        );
    }
    assert!(deps.contains(&"imagemcp-core".to_owned()));
}

#[test]
fn core_knows_nothing_of_io_runtimes_or_sdks() {
    let forbidden = [
        "tokio",
        "axum",
        "reqwest",
        "hyper",
        "rusqlite",
        "rmcp",
        "worker",
        "lambda_http",
        "lambda_runtime",
        "image",
        "imagemcp-app",
        "imagemcp-openai",
        "imagemcp-local",
        "imagemcp-dynamo",
        "imagemcp-offline",
        "imagemcp-native",
    ];
    let deps = dependencies("imagemcp-core", false);
    assert!(!deps.is_empty(), "the core's dependencies are read");
    for name in &deps {
        assert!(
            !forbidden.contains(&name.as_str()) && !name.starts_with("aws-"),
            "imagemcp-core must not depend on {name}"
        );
    }
}

#[test]
fn dependencies_point_inward() {
    // The app depends on core only among our crates; adapters never depend on the app.
    let app = dependencies("imagemcp-app", false);
    assert!(app.contains(&"imagemcp-core".to_owned()));
    for adapter in [
        "imagemcp-openai",
        "imagemcp-dynamo",
        "imagemcp-local",
        "imagemcp-native",
        "imagemcp-offline",
        "imagemcp-aws",
    ] {
        assert!(
            !app.contains(&adapter.to_owned()),
            "imagemcp-app must not depend on the adapter {adapter}"
        );
        assert!(
            !dependencies(adapter, false).contains(&"imagemcp-app".to_owned()),
            "{adapter} must not depend on imagemcp-app"
        );
    }
}
