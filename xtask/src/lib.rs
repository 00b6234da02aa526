//! The workspace's own checks, in the spirit of rust-analyzer's `xtask tidy`: the code map
//! (`codemap.toml`, read by [`codemap`]) gives every crate a layer, [`rules`] checks every dependency
//! table of every manifest ([`manifest`]) against it, and [`tidy`] checks the sources. The tests in
//! `tests/workspace` apply them to this workspace: `cargo test -p xtask`.

pub mod codemap;
pub mod manifest;
pub mod rules;
pub mod tidy;

use std::path::{Path, PathBuf};

/// The workspace root: the folder above this crate.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace root")
        .to_path_buf()
}

/// The code map's file.
pub fn codemap_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("codemap.toml")
}
