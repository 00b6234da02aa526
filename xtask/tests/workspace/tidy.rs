//! The source tidy rules on this workspace's Rust files (those under `shared/`, `functions/`,
//! `infra/` and `xtask/`, build output and installed packages aside).

use std::path::{Path, PathBuf};

use xtask::tidy;

/// The workspace's Rust files with their text; the walk is checked to have found the crates.
fn sources() -> Vec<(PathBuf, String)> {
    let root = xtask::root();
    let files = tidy::rust_files(&root).expect("the source folders");
    for known in [
        "shared/core/src/lib.rs",
        "functions/lambda/src/lib.rs",
        "xtask/src/tidy.rs",
    ] {
        assert!(
            files.iter().any(|f| f == Path::new(known)),
            "the walk finds {known}"
        );
    }
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(root.join(&file)).expect("a readable source");
            (file, text)
        })
        .collect()
}

#[test]
fn every_source_file_starts_with_its_module_doc() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|(_, text)| !tidy::has_module_doc(text))
        .map(|(file, _)| file.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "these files do not start with a `//!` line saying what they are for:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn no_comment_refers_to_an_issue_by_number() {
    let mut found = Vec::new();
    for (file, text) in sources() {
        for comment in tidy::comments(&text) {
            if tidy::names_an_issue(&comment.text) {
                found.push(format!(
                    "{}:{}: {}",
                    file.display(),
                    comment.line,
                    comment.text.trim()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "comments describe the design, not its history: reword these without the issue number\n  {}",
        found.join("\n  ")
    );
}
