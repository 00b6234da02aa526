//! The architecture's invariants, checked from the manifests: dependencies point inward only, and
//! the core stays free of I/O, runtimes and SDKs (so it builds for wasm32 and every runtime).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The names in a manifest's `[dependencies]` table (not dev or build dependencies).
fn dependencies(manifest: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(manifest)).expect("manifest");
    let mut in_deps = false;
    let mut names = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && let Some((name, _)) = line.split_once('=') {
            let name = name.trim().trim_end_matches(".workspace").to_owned();
            if !name.is_empty() && !name.starts_with('#') {
                names.push(name);
            }
        }
    }
    names
}

/// The names in every dependency table of a manifest: `[dependencies]`, `[build-dependencies]`,
/// `[target.'…'.dependencies]`, and `[dev-dependencies]` (also per target) when `dev` is set.
fn all_dependencies(manifest: &Path, dev: bool) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).expect("manifest");
    let mut in_deps = false;
    let mut names = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps =
                line.ends_with("dependencies]") && (dev || !line.ends_with("dev-dependencies]"));
            continue;
        }
        if in_deps
            && !line.starts_with('#')
            && let Some((name, _)) = line.split_once('=')
        {
            let name = name.trim().trim_end_matches(".workspace").to_owned();
            if !name.is_empty() {
                names.push(name);
            }
        }
    }
    names
}

/// Every package of the workspace (the root manifest's `members`), by name, with its manifest.
fn workspace_packages() -> HashMap<String, PathBuf> {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).expect("root manifest");
    let (_, members) = text.split_once("members = [").expect("workspace members");
    let (members, _) = members.split_once(']').expect("the end of the members");
    members
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .map(|member| {
            let manifest = root().join(member).join("Cargo.toml");
            let text = std::fs::read_to_string(&manifest).expect("member manifest");
            let name = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("name = "))
                .expect("a package name")
                .trim_matches('"')
                .to_owned();
            (name, manifest)
        })
        .collect()
}

/// The workspace packages `package` depends on, directly or not: its own dev-dependencies
/// included (its tests and benches link them), those of the packages it reaches not (Cargo never
/// builds them for it).
fn reachable_from(package: &str) -> BTreeSet<String> {
    let packages = workspace_packages();
    let mut seen = BTreeSet::new();
    let mut todo = vec![(package.to_owned(), true)];
    while let Some((name, dev)) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        for dep in all_dependencies(&packages[&name], dev) {
            if packages.contains_key(&dep) {
                todo.push((dep, false));
            }
        }
    }
    seen
}

#[test]
fn the_lambda_functions_never_link_sqlite() {
    // SQLite is the embedded default's; the functions' zips carry only what runs on AWS.
    let packages = workspace_packages();
    let reached = reachable_from("imagemcp-lambda");
    assert!(
        reached.contains("imagemcp-aws") && reached.contains("imagemcp-offline"),
        "the walk follows the path dependencies: {reached:?}"
    );
    for name in &reached {
        for dep in all_dependencies(&packages[name], name == "imagemcp-lambda") {
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
    let deps = all_dependencies(&root().join("shared/dynamo/Cargo.toml"), false);
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
    let deps = dependencies("shared/core/Cargo.toml");
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
    let app = dependencies("shared/app/Cargo.toml");
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
    }
    for manifest in [
        "shared/openai/Cargo.toml",
        "shared/dynamo/Cargo.toml",
        "shared/local/Cargo.toml",
        "shared/native/Cargo.toml",
        "shared/offline/Cargo.toml",
        "shared/aws/Cargo.toml",
    ] {
        let deps = dependencies(manifest);
        assert!(
            !deps.contains(&"imagemcp-app".to_owned()),
            "{manifest} must not depend on imagemcp-app"
        );
    }
}

#[test]
fn shared_dependencies_are_pinned_once_in_the_workspace() {
    for manifest in [
        "shared/core",
        "shared/app",
        "shared/openai",
        "shared/dynamo",
        "shared/local",
        "shared/native",
        "shared/offline",
        "shared/aws",
        "functions/local",
        "functions/lambda",
        "infra/fake-openai",
    ] {
        let text =
            std::fs::read_to_string(root().join(manifest).join("Cargo.toml")).expect("manifest");
        for line in text.lines() {
            let line = line.trim();
            // Table headers such as `[target.'cfg(not(target_arch = "wasm32"))'.dependencies]`
            // contain `= "` without pinning anything.
            if line.starts_with('[') {
                continue;
            }
            if let Some((_, value)) = line.split_once('=')
                && value.trim().starts_with('"')
                && !line.starts_with("name")
                && !line.starts_with("description")
                && !line.starts_with("path")
                && !line.starts_with("version.")
            {
                panic!(
                    "{manifest}/Cargo.toml pins a version itself ({line}); pin it in [workspace.dependencies]"
                );
            }
        }
    }
}
