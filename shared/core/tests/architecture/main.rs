//! The architecture's invariants, checked from the manifests: dependencies point inward only, and
//! the core stays free of I/O, runtimes and SDKs (so it builds for wasm32 and every runtime).

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
    for adapter in ["imagemcp-openai", "imagemcp-local", "imagemcp-aws"] {
        assert!(
            !app.contains(&adapter.to_owned()),
            "imagemcp-app must not depend on the adapter {adapter}"
        );
    }
    for manifest in [
        "shared/openai/Cargo.toml",
        "shared/local/Cargo.toml",
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
        "shared/local",
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
