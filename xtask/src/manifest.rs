//! The workspace as its manifests declare it: the members, the `[workspace.dependencies]` pins, and
//! every dependency of every member with the table it sits in (`[dependencies]`,
//! `[dev-dependencies]`, `[build-dependencies]`, each also under `[target.'cfg(…)'.…]`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use toml::{Table, Value};

/// The workspace: its members by package name, and the dependency pins of the root manifest.
#[derive(Debug)]
pub struct Workspace {
    pub members: BTreeMap<String, Member>,
    pub pins: BTreeMap<String, Pin>,
}

/// One member crate.
#[derive(Debug)]
pub struct Member {
    pub name: String,
    /// The member's folder, relative to the workspace root, as the root manifest lists it.
    pub dir: String,
    /// The `[package]` keys that a member should inherit (`version`, `edition`, …) but sets itself.
    pub own_package_fields: Vec<String>,
    pub dependencies: Vec<Dependency>,
}

/// One entry of the root manifest's `[workspace.dependencies]`.
#[derive(Debug)]
pub struct Pin {
    /// The package the entry names (its `package` key, or the entry's own name).
    pub package: String,
    /// The folder of a path dependency, as written.
    pub path: Option<String>,
}

/// Which kind of dependency table an entry sits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Normal,
    Dev,
    Build,
}

impl Kind {
    /// Whether the entry is linked into the crate itself (rather than only into its tests).
    pub fn links(self) -> bool {
        self != Kind::Dev
    }
}

/// One entry of one dependency table of a member.
#[derive(Debug)]
pub struct Dependency {
    /// The name the entry is written under (the crate's name in code).
    pub key: String,
    /// The package it names, through the workspace pin when it inherits one.
    pub package: String,
    pub kind: Kind,
    /// The `cfg(…)` or target triple of a `[target.….dependencies]` table.
    pub target: Option<String>,
    /// Whether the entry says `workspace = true`.
    pub inherited: bool,
    /// The entry's keys other than `workspace`; a bare version string counts as `version`.
    pub keys: Vec<String>,
}

impl fmt::Display for Dependency {
    /// The table and the key, as a manifest spells them: `[target.'cfg(x)'.dev-dependencies] tokio`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = match self.kind {
            Kind::Normal => "dependencies",
            Kind::Dev => "dev-dependencies",
            Kind::Build => "build-dependencies",
        };
        match &self.target {
            Some(target) => write!(f, "[target.'{target}'.{table}] {}", self.key),
            None => write!(f, "[{table}] {}", self.key),
        }
    }
}

/// The `[package]` keys every member inherits from `[workspace.package]`.
const INHERITED_PACKAGE_FIELDS: [&str; 4] = ["version", "edition", "rust-version", "license"];

/// The dependency tables of a manifest (or of one of its `[target.…]` tables), by kind; Cargo
/// still accepts the underscore spellings.
const TABLES: [(&str, Kind); 5] = [
    ("dependencies", Kind::Normal),
    ("dev-dependencies", Kind::Dev),
    ("dev_dependencies", Kind::Dev),
    ("build-dependencies", Kind::Build),
    ("build_dependencies", Kind::Build),
];

impl Workspace {
    /// Reads the workspace rooted at `root`: its `Cargo.toml` and every member's.
    pub fn load(root: &Path) -> Result<Workspace, String> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
        };
        let root_text = read(&root.join("Cargo.toml"))?;
        let mut manifests = Vec::new();
        for dir in member_dirs(&parse(&root_text, "Cargo.toml")?, root)? {
            let text = read(&root.join(&dir).join("Cargo.toml"))?;
            manifests.push((dir, text));
        }
        Workspace::parse(&root_text, manifests)
    }

    /// Builds the workspace from the root manifest's text and each member's folder and manifest text.
    pub fn parse(
        root_manifest: &str,
        members: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Workspace, String> {
        let root = parse(root_manifest, "Cargo.toml")?;
        let pins = table(&root, "workspace")
            .and_then(|w| table(w, "dependencies"))
            .map(|deps| {
                deps.iter()
                    .map(|(key, value)| {
                        let spec = value.as_table();
                        let field = |name: &str| {
                            spec.and_then(|t| t.get(name))
                                .and_then(Value::as_str)
                                .map(str::to_owned)
                        };
                        let pin = Pin {
                            package: field("package").unwrap_or_else(|| key.clone()),
                            path: field("path"),
                        };
                        (key.clone(), pin)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut workspace = Workspace {
            members: BTreeMap::new(),
            pins,
        };
        for (dir, text) in members {
            let manifest = parse(&text, &format!("{dir}/Cargo.toml"))?;
            let member = workspace.member(dir, &manifest)?;
            workspace.members.insert(member.name.clone(), member);
        }
        Ok(workspace)
    }

    fn member(&self, dir: String, manifest: &Table) -> Result<Member, String> {
        let package = table(manifest, "package")
            .ok_or_else(|| format!("{dir}/Cargo.toml has no [package]"))?;
        let name = package
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{dir}/Cargo.toml has no package name"))?
            .to_owned();
        let own_package_fields = INHERITED_PACKAGE_FIELDS
            .iter()
            .filter(|field| {
                package
                    .get(**field)
                    .is_some_and(|v| !v.as_table().is_some_and(is_inherited))
            })
            .map(|field| (*field).to_owned())
            .collect();
        let mut dependencies = Vec::new();
        self.collect(manifest, None, &mut dependencies);
        if let Some(targets) = table(manifest, "target") {
            for (target, tables) in targets {
                if let Some(tables) = tables.as_table() {
                    self.collect(tables, Some(target), &mut dependencies);
                }
            }
        }
        Ok(Member {
            name,
            dir,
            own_package_fields,
            dependencies,
        })
    }

    /// Adds the entries of every dependency table in `tables` (a manifest or a `[target.…]` table).
    fn collect(&self, tables: &Table, target: Option<&String>, out: &mut Vec<Dependency>) {
        for (table_name, kind) in TABLES {
            let Some(entries) = table(tables, table_name) else {
                continue;
            };
            for (key, spec) in entries {
                let (inherited, keys, package) = match spec {
                    Value::Table(spec) => (
                        is_inherited(spec),
                        spec.keys().filter(|k| *k != "workspace").cloned().collect(),
                        spec.get("package").and_then(Value::as_str),
                    ),
                    _ => (false, vec!["version".to_owned()], None),
                };
                let package = match (inherited, self.pins.get(key)) {
                    (true, Some(pin)) => pin.package.clone(),
                    _ => package.unwrap_or(key).to_owned(),
                };
                out.push(Dependency {
                    key: key.clone(),
                    package,
                    kind,
                    target: target.cloned(),
                    inherited,
                    keys,
                });
            }
        }
    }

    /// The member whose folder is `dir` (written with or without a leading `./`).
    pub fn member_in(&self, dir: &str) -> Option<&Member> {
        let dir = dir.trim_start_matches("./").trim_end_matches('/');
        self.members.values().find(|m| m.dir == dir)
    }
}

/// The members' folders: the root manifest's `workspace.members`, a trailing `/*` expanded to the
/// folders below it that hold a `Cargo.toml`.
fn member_dirs(root_manifest: &Table, root: &Path) -> Result<Vec<String>, String> {
    let members = table(root_manifest, "workspace")
        .and_then(|w| w.get("members"))
        .and_then(Value::as_array)
        .ok_or("the root Cargo.toml has no workspace.members")?;
    let mut dirs = Vec::new();
    for member in members {
        let member = member
            .as_str()
            .ok_or("a workspace member that is not a string")?;
        match member.strip_suffix("/*") {
            Some(parent) => {
                let entries = std::fs::read_dir(root.join(parent))
                    .map_err(|e| format!("workspace member {member}: {e}"))?;
                let mut found: Vec<String> = entries
                    .filter_map(Result::ok)
                    .filter(|e| e.path().join("Cargo.toml").is_file())
                    .map(|e| format!("{parent}/{}", e.file_name().to_string_lossy()))
                    .collect();
                found.sort();
                dirs.extend(found);
            }
            None if member.contains(['*', '?', '[']) => {
                return Err(format!(
                    "workspace member {member}: only a trailing `/*` is understood here"
                ));
            }
            None => dirs.push(member.trim_end_matches('/').to_owned()),
        }
    }
    Ok(dirs)
}

fn parse(text: &str, name: &str) -> Result<Table, String> {
    text.parse::<Table>().map_err(|e| format!("{name}: {e}"))
}

fn table<'a>(parent: &'a Table, key: &str) -> Option<&'a Table> {
    parent.get(key).and_then(Value::as_table)
}

fn is_inherited(spec: &Table) -> bool {
    spec.get("workspace").and_then(Value::as_bool) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = r#"
        [workspace]
        members = ["a"]
        [workspace.dependencies]
        a = { path = "a" }
        tokio = { version = "1", features = ["sync"] }
        rand_03 = { package = "rand", version = "0.3" }
    "#;

    const A: &str = r#"
        [package]
        name = "a"
        version.workspace = true
        edition = "2021"

        [dependencies]
        tokio = { workspace = true, features = ["time"] }
        serde = "1"

        [target.'cfg(target_arch = "wasm32")'.dependencies]
        rand_03.workspace = true

        [dev-dependencies]
        a = { path = ".", features = ["testing"] }

        [build-dependencies]
        cc = { version = "1", default-features = false }
    "#;

    #[test]
    fn every_table_is_read_with_its_kind_target_and_keys() {
        let ws = Workspace::parse(ROOT, [("a".to_owned(), A.to_owned())]).unwrap();
        let a = &ws.members["a"];
        assert_eq!(a.own_package_fields, ["edition"]);
        let seen: Vec<String> = a
            .dependencies
            .iter()
            .map(|d| format!("{d} -> {} {} {:?}", d.package, d.inherited, d.keys))
            .collect();
        assert_eq!(
            seen,
            [
                r#"[dependencies] serde -> serde false ["version"]"#,
                r#"[dependencies] tokio -> tokio true ["features"]"#,
                r#"[dev-dependencies] a -> a false ["features", "path"]"#,
                r#"[build-dependencies] cc -> cc false ["default-features", "version"]"#,
                r#"[target.'cfg(target_arch = "wasm32")'.dependencies] rand_03 -> rand true []"#,
            ]
        );
        assert_eq!(ws.pins["a"].path.as_deref(), Some("a"));
        assert_eq!(ws.member_in("./a/").map(|m| m.name.as_str()), Some("a"));
    }

    #[test]
    fn a_manifest_that_is_not_toml_is_an_error_naming_it() {
        let err = Workspace::parse(ROOT, [("a".to_owned(), "[package".to_owned())]).unwrap_err();
        assert!(err.starts_with("a/Cargo.toml: "), "{err}");
    }
}
