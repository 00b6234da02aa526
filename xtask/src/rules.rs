//! The code map's rules, checked against every dependency of every member: which layer may link
//! which, which packages the core and the application crates may not know, and that every version
//! is pinned once, in `[workspace.dependencies]`.
//!
//! Linked dependencies (`[dependencies]`, `[build-dependencies]`, and both under `[target.…]`) follow
//! the layers: the core links no crate of the workspace, an adapter only the core, an application
//! crate the core and application crates of a lower rank, a runtime anything but another runtime,
//! a fake or a tool. Tests (`[dev-dependencies]`) may also use the crate itself and the fakes, and an
//! application crate's tests real adapters; no test uses a runtime or a tool.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::codemap::{CodeMap, Layer};
use crate::manifest::{Dependency, Member, Workspace};

/// The rule a violation breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Every workspace crate is on the map once, every crate on the map is in the workspace, and
    /// the map's own entries are consistent.
    Map,
    /// The core links no workspace crate and no I/O, runtime or protocol package.
    Core,
    /// An adapter links only the core.
    Adapters,
    /// An application crate links the core and application crates of a lower rank only.
    Application,
    /// Among the application crates only the one that names a protocol crate links it.
    Protocols,
    /// A runtime links the core, adapters and application crates only.
    Runtimes,
    /// An infrastructure fake links only the core.
    Fakes,
    /// A tool links no workspace crate.
    Tools,
    /// Tests use no runtime, no tool and nothing the layers forbid besides the crate itself, the
    /// fakes and, for application crates, the adapters.
    Tests,
    /// Every dependency inherits its pin from `[workspace.dependencies]`, path dependencies
    /// included, and every member inherits the workspace's package fields.
    Pins,
    /// Every exception on the map is still needed.
    Exceptions,
}

/// One broken rule, with a message that names the manifest entry and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.rule, self.message)
    }
}

/// The keys a member may add to a workspace pin.
const MEMBER_KEYS: [&str; 2] = ["features", "optional"];

/// Checks the workspace against the map; an empty list means every rule holds.
pub fn check(workspace: &Workspace, map: &CodeMap) -> Vec<Violation> {
    let mut out = Vec::new();
    check_map(workspace, map, &mut out);
    let mut used = BTreeSet::new();
    for member in workspace.members.values() {
        for field in &member.own_package_fields {
            out.push(Violation {
                rule: Rule::Pins,
                message: format!(
                    "{} sets `{field}` itself: write `{field}.workspace = true`",
                    member.name
                ),
            });
        }
        for dependency in &member.dependencies {
            check_pin(workspace, member, dependency, &mut out);
            let Some(from) = map.layer(&member.name) else {
                continue;
            };
            if let Some(violation) = arrow(workspace, map, member, from, dependency) {
                let exception = map
                    .exceptions
                    .iter()
                    .position(|e| e.from == member.name && e.to == dependency.package);
                match exception {
                    Some(index) => {
                        used.insert(index);
                    }
                    None => out.push(violation),
                }
            }
        }
    }
    for (index, exception) in map.exceptions.iter().enumerate() {
        if !used.contains(&index) {
            out.push(Violation {
                rule: Rule::Exceptions,
                message: format!(
                    "the exception {} -> {} is no longer needed: remove it from xtask/codemap.toml",
                    exception.from, exception.to
                ),
            });
        }
    }
    out
}

/// The map's completeness and consistency.
fn check_map(workspace: &Workspace, map: &CodeMap, out: &mut Vec<Violation>) {
    let mut violation = |message: String| {
        out.push(Violation {
            rule: Rule::Map,
            message,
        })
    };
    let mut listed: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, _) in map.entries() {
        *listed.entry(name).or_default() += 1;
    }
    for name in workspace.members.keys() {
        match listed.get(name.as_str()) {
            None => violation(format!(
                "{name} is a workspace crate missing from xtask/codemap.toml: give it a layer"
            )),
            Some(1) => {}
            Some(n) => violation(format!("{name} is on the map {n} times")),
        }
    }
    for name in listed.keys() {
        if !workspace.members.contains_key(*name) {
            violation(format!(
                "{name} is on the map but not a workspace crate: remove it or add the crate"
            ));
        }
    }
    let mut owners: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, app) in &map.application {
        if let Some(protocol) = &app.protocol {
            if !map.protocols.crates.contains(protocol) {
                violation(format!(
                    "{name} names {protocol}, which is not among the protocol crates"
                ));
            }
            owners.entry(protocol).or_default().push(name);
        }
    }
    for (protocol, crates) in owners {
        if crates.len() > 1 {
            out.push(Violation {
                rule: Rule::Protocols,
                message: format!("{protocol} is named by more than one crate: {crates:?}"),
            });
        }
    }
}

/// The pin rule for one entry.
fn check_pin(
    workspace: &Workspace,
    member: &Member,
    dependency: &Dependency,
    out: &mut Vec<Violation>,
) {
    let mut violation = |message: String| {
        out.push(Violation {
            rule: Rule::Pins,
            message,
        })
    };
    let name = &member.name;
    let key = &dependency.key;
    if !dependency.inherited {
        violation(format!(
            "{name} pins {dependency} itself: pin it once in [workspace.dependencies] and write \
             `{key}.workspace = true` (or `{{ workspace = true, features = [...] }}`)"
        ));
        return;
    }
    for extra in &dependency.keys {
        if !MEMBER_KEYS.contains(&extra.as_str()) {
            violation(format!(
                "{name} sets `{extra}` on {dependency}: a member adds only `features` and \
                 `optional` to a workspace pin (set the rest on the pin)"
            ));
        }
    }
    match workspace.pins.get(key) {
        None => violation(format!(
            "{name} inherits {dependency}, which [workspace.dependencies] does not pin"
        )),
        Some(pin) => {
            if let Some(path) = &pin.path
                && workspace.member_in(path).is_none()
            {
                violation(format!(
                    "[workspace.dependencies] {key} points to {path}, which is not a workspace member"
                ));
            }
        }
    }
}

/// The violation an entry would be without an exception, if the layers forbid it.
fn arrow(
    workspace: &Workspace,
    map: &CodeMap,
    member: &Member,
    from: Layer,
    dependency: &Dependency,
) -> Option<Violation> {
    let to = dependency.package.as_str();
    let name = &member.name;
    if workspace.members.contains_key(to) {
        // A crate missing from the map is reported once, by the map rule.
        let to_layer = map.layer(to)?;
        let allowed = links(from, to_layer)
            || (!dependency.kind.links() && (to == name || tests_use(from, to_layer)));
        if allowed {
            return None;
        }
        let (rule, rule_text) = if dependency.kind.links() {
            (layer_rule(from), layer_text(from))
        } else {
            (
                Rule::Tests,
                "tests may add the crate itself and the fakes (and, in an application crate, \
                 the adapters) to what the crate links, never a runtime or a tool",
            )
        };
        return Some(Violation {
            rule,
            message: format!(
                "{name} ({}) depends on {to} ({}) in {dependency}: {rule_text}",
                from.name(),
                to_layer.name()
            ),
        });
    }
    if !dependency.kind.links() {
        return None;
    }
    match from {
        Layer::Core if map.forbidden_in_core(to) => Some(Violation {
            rule: Rule::Core,
            message: format!(
                "{name} (the core) depends on {to} in {dependency}: the core knows no I/O, \
                 runtime, protocol or SDK package"
            ),
        }),
        Layer::Application { .. }
            if map.protocols.crates.iter().any(|p| p == to)
                && map
                    .application
                    .get(name)
                    .and_then(|a| a.protocol.as_deref())
                    != Some(to) =>
        {
            Some(Violation {
                rule: Rule::Protocols,
                message: format!(
                    "{name} depends on {to} in {dependency}: among the application crates only \
                     the one the map gives `protocol = \"{to}\"` knows it"
                ),
            })
        }
        _ => None,
    }
}

/// Whether a crate of layer `from` may link a crate of layer `to`.
fn links(from: Layer, to: Layer) -> bool {
    match (from, to) {
        (Layer::Adapter | Layer::Fake, Layer::Core) => true,
        (Layer::Application { .. }, Layer::Core) => true,
        (Layer::Application { rank: a }, Layer::Application { rank: b }) => b < a,
        (Layer::Runtime, Layer::Core | Layer::Adapter | Layer::Application { .. }) => true,
        _ => false,
    }
}

/// Whether the tests of a crate of layer `from` may use a crate of layer `to` that it may not link.
fn tests_use(from: Layer, to: Layer) -> bool {
    matches!(
        (from, to),
        (
            Layer::Adapter | Layer::Application { .. } | Layer::Runtime,
            Layer::Fake
        ) | (Layer::Application { .. }, Layer::Adapter)
    )
}

fn layer_rule(layer: Layer) -> Rule {
    match layer {
        Layer::Core => Rule::Core,
        Layer::Adapter => Rule::Adapters,
        Layer::Application { .. } => Rule::Application,
        Layer::Runtime => Rule::Runtimes,
        Layer::Fake => Rule::Fakes,
        Layer::Tool => Rule::Tools,
    }
}

fn layer_text(layer: Layer) -> &'static str {
    match layer {
        Layer::Core => "the core depends on no crate of the workspace",
        Layer::Adapter => {
            "an adapter depends only on the core (and on a building block the map names as an exception)"
        }
        Layer::Application { .. } => {
            "an application crate depends only on the core and on application crates of a lower rank"
        }
        Layer::Runtime => {
            "a runtime depends only on the core, the adapters and the application crates"
        }
        Layer::Fake => "an infrastructure fake depends only on the core",
        Layer::Tool => "a tool depends on no crate of the workspace",
    }
}

#[cfg(test)]
mod tests {
    //! Each rule on a small workspace shaped like ours: clean as given, and broken by one entry.

    use super::*;

    const MAP: &str = r#"
        core = { crates = ["core"], forbidden = ["tokio", "aws-*", "rmcp", "axum"] }
        adapters = { crates = ["store", "mapping"] }
        runtimes = { crates = ["server", "edge"] }
        fakes = { crates = ["fake"] }
        tools = { crates = ["xtask"] }
        protocols = { crates = ["rmcp", "axum"] }

        [application]
        tenancy = { rank = 1 }
        accounts = { rank = 2 }
        billing = { rank = 2 }
        mcp = { rank = 3, protocol = "rmcp" }
        http = { rank = 4, protocol = "axum" }

        [[exception]]
        from = "store"
        to = "mapping"
        why = "the mapping is the store's building block"
    "#;

    const WASM: &str = "target.'cfg(target_arch = \"wasm32\")'.dependencies";

    /// The members and their dependency lines, by table.
    fn members() -> Vec<(String, Vec<(String, String)>)> {
        let member = |name: &str, deps: &[(&str, &str)]| {
            let deps = deps
                .iter()
                .map(|(table, line)| ((*table).to_owned(), (*line).to_owned()))
                .collect();
            (name.to_owned(), deps)
        };
        let n = "dependencies";
        let dev = "dev-dependencies";
        vec![
            member("core", &[(n, "serde.workspace = true")]),
            member(
                "store",
                &[
                    (n, "core.workspace = true"),
                    (n, "mapping.workspace = true"),
                    (n, r#"tokio = { workspace = true, features = ["time"] }"#),
                    (
                        dev,
                        r#"store = { workspace = true, features = ["testing"] }"#,
                    ),
                    (dev, "fake.workspace = true"),
                ],
            ),
            member("mapping", &[(n, "core.workspace = true")]),
            member("tenancy", &[(n, "core.workspace = true")]),
            member(
                "accounts",
                &[
                    (n, "core.workspace = true"),
                    (n, "tenancy.workspace = true"),
                ],
            ),
            member(
                "billing",
                &[
                    (n, "tenancy.workspace = true"),
                    (dev, "store.workspace = true"),
                ],
            ),
            member(
                "mcp",
                &[
                    (n, "accounts.workspace = true"),
                    (n, "billing.workspace = true"),
                    (n, "rmcp.workspace = true"),
                ],
            ),
            member(
                "http",
                &[
                    (n, "mcp.workspace = true"),
                    (n, "axum.workspace = true"),
                    (WASM, "getrandom_03.workspace = true"),
                ],
            ),
            member(
                "server",
                &[
                    (n, "http.workspace = true"),
                    (n, "store.workspace = true"),
                    (n, "core.workspace = true"),
                    (dev, "fake.workspace = true"),
                ],
            ),
            member("edge", &[(n, "http.workspace = true")]),
            member(
                "fake",
                &[
                    (n, "core.workspace = true"),
                    (n, r#"axum = { workspace = true, features = ["http1"] }"#),
                ],
            ),
            member("xtask", &[(n, "toml.workspace = true")]),
        ]
    }

    fn check_members(members: &[(String, Vec<(String, String)>)], map: &str) -> Vec<Violation> {
        let names: Vec<&str> = members.iter().map(|(name, _)| name.as_str()).collect();
        let mut root = format!(
            "[workspace]\nmembers = {names:?}\n[workspace.dependencies]\n\
             serde = \"1\"\ntokio = \"1\"\naxum = \"0.8\"\nrmcp = \"1\"\ntoml = \"1\"\n\
             aws-sdk-s3 = \"1\"\ngetrandom_03 = {{ package = \"getrandom\", version = \"0.3\" }}\n"
        );
        for name in &names {
            root.push_str(&format!("{name} = {{ path = \"crates/{name}\" }}\n"));
        }
        let manifests = members.iter().map(|(name, deps)| {
            let mut text = format!(
                "[package]\nname = \"{name}\"\nversion.workspace = true\nedition.workspace = true\n"
            );
            // Lines for the `package` table go under the header above.
            for (_, line) in deps.iter().filter(|(t, _)| t == "package") {
                text.push_str(&format!("{line}\n"));
            }
            let mut tables: Vec<&str> = Vec::new();
            for (table, _) in deps.iter().filter(|(t, _)| t != "package") {
                if !tables.contains(&table.as_str()) {
                    tables.push(table);
                }
            }
            for table in tables {
                text.push_str(&format!("[{table}]\n"));
                for (_, line) in deps.iter().filter(|(t, _)| t == table) {
                    text.push_str(&format!("{line}\n"));
                }
            }
            (format!("crates/{name}"), text)
        });
        let workspace = Workspace::parse(&root, manifests).expect("the fixture parses");
        let map = CodeMap::parse(map).expect("the fixture map parses");
        check(&workspace, &map)
    }

    /// The violations once `line` is added to `member`'s `table` (the member is created if new).
    fn with(member: &str, table: &str, line: &str) -> Vec<Violation> {
        let mut members = members();
        match members.iter_mut().find(|(name, _)| name == member) {
            Some((_, deps)) => deps.push((table.to_owned(), line.to_owned())),
            None => members.push((member.to_owned(), vec![(table.to_owned(), line.to_owned())])),
        }
        check_members(&members, MAP)
    }

    /// The single rule the violations break.
    fn only(violations: Vec<Violation>) -> Rule {
        assert_eq!(violations.len(), 1, "{violations:#?}");
        violations[0].rule
    }

    #[test]
    fn the_fixture_is_clean() {
        assert_eq!(check_members(&members(), MAP), []);
    }

    #[test]
    fn a_crate_missing_from_the_map_or_a_stale_entry_breaks_the_map() {
        let violations = with("jobs", "dependencies", "core.workspace = true");
        assert_eq!(only(violations.clone()), Rule::Map);
        assert!(
            violations[0]
                .message
                .contains("jobs is a workspace crate missing")
        );
        let map = MAP.replace(r#""mapping"]"#, r#""mapping", "ghost"]"#);
        assert_eq!(only(check_members(&members(), &map)), Rule::Map);
        let map = MAP.replace(r#"["server", "edge"]"#, r#"["server", "edge", "store"]"#);
        assert_eq!(only(check_members(&members(), &map)), Rule::Map);
    }

    #[test]
    fn the_core_links_no_crate_of_ours_and_no_io() {
        assert_eq!(
            only(with("core", "dependencies", "tokio.workspace = true")),
            Rule::Core
        );
        assert_eq!(
            only(with("core", "dependencies", "aws-sdk-s3.workspace = true")),
            Rule::Core
        );
        assert_eq!(
            only(with("core", WASM, "rmcp.workspace = true")),
            Rule::Core
        );
        assert_eq!(
            only(with("core", "build-dependencies", "axum.workspace = true")),
            Rule::Core
        );
        assert_eq!(
            only(with("core", "dependencies", "store.workspace = true")),
            Rule::Core
        );
        assert_eq!(
            only(with("core", "dependencies", "tenancy.workspace = true")),
            Rule::Core
        );
    }

    #[test]
    fn an_adapter_links_only_the_core_and_its_named_building_blocks() {
        let rule = |member, line| only(with(member, "dependencies", line));
        assert_eq!(rule("mapping", "store.workspace = true"), Rule::Adapters);
        assert_eq!(rule("store", "tenancy.workspace = true"), Rule::Adapters);
        assert_eq!(rule("store", "server.workspace = true"), Rule::Adapters);
        assert_eq!(
            only(with("store", WASM, "http.workspace = true")),
            Rule::Adapters
        );
        // Without its exception, the building block is an arrow between two adapters.
        let map = MAP.replace("from = \"store\"", "from = \"mapping\"");
        let rules: Vec<Rule> = check_members(&members(), &map)
            .into_iter()
            .map(|v| v.rule)
            .collect();
        assert_eq!(rules, [Rule::Adapters, Rule::Exceptions]);
    }

    #[test]
    fn application_crates_point_down_the_ranks_and_never_to_an_adapter_or_runtime() {
        let rule = |member, line| only(with(member, "dependencies", line));
        assert_eq!(
            rule("tenancy", "accounts.workspace = true"),
            Rule::Application
        );
        assert_eq!(
            rule("accounts", "billing.workspace = true"),
            Rule::Application
        );
        assert_eq!(rule("mcp", "http.workspace = true"), Rule::Application);
        assert_eq!(rule("billing", "store.workspace = true"), Rule::Application);
        assert_eq!(rule("http", "edge.workspace = true"), Rule::Application);
        assert_eq!(rule("http", "fake.workspace = true"), Rule::Application);
    }

    #[test]
    fn only_the_crate_that_names_a_protocol_links_it() {
        let rule = |member, table, line| only(with(member, table, line));
        assert_eq!(
            rule("billing", "dependencies", "rmcp.workspace = true"),
            Rule::Protocols
        );
        assert_eq!(rule("mcp", WASM, "axum.workspace = true"), Rule::Protocols);
        let twice = MAP.replace(
            "billing = { rank = 2 }",
            "billing = { rank = 2, protocol = \"rmcp\" }",
        );
        assert_eq!(only(check_members(&members(), &twice)), Rule::Protocols);
        // Tests may use a protocol crate: they are not the crate's own code.
        assert_eq!(
            with("billing", "dev-dependencies", "axum.workspace = true"),
            []
        );
    }

    #[test]
    fn a_runtime_links_no_other_runtime_fake_or_tool() {
        let rule = |line| only(with("server", "dependencies", line));
        assert_eq!(rule("edge.workspace = true"), Rule::Runtimes);
        assert_eq!(rule("fake.workspace = true"), Rule::Runtimes);
        assert_eq!(rule("xtask.workspace = true"), Rule::Runtimes);
    }

    #[test]
    fn fakes_and_tools_stand_apart() {
        assert_eq!(
            only(with("fake", "dependencies", "store.workspace = true")),
            Rule::Fakes
        );
        assert_eq!(
            only(with("xtask", "dependencies", "core.workspace = true")),
            Rule::Tools
        );
        assert_eq!(
            only(with("store", "dependencies", "fake.workspace = true")),
            Rule::Adapters
        );
    }

    #[test]
    fn tests_use_no_runtime_tool_or_higher_crate() {
        let rule = |member, line| only(with(member, "dev-dependencies", line));
        assert_eq!(rule("store", "server.workspace = true"), Rule::Tests);
        assert_eq!(rule("tenancy", "mcp.workspace = true"), Rule::Tests);
        assert_eq!(rule("mapping", "store.workspace = true"), Rule::Tests);
        assert_eq!(rule("server", "xtask.workspace = true"), Rule::Tests);
        assert_eq!(rule("core", "fake.workspace = true"), Rule::Tests);
    }

    #[test]
    fn every_version_and_path_is_pinned_in_the_workspace() {
        let rule = |line| only(with("store", "dependencies", line));
        assert_eq!(rule(r#"serde_json = "1""#), Rule::Pins);
        assert_eq!(
            rule(r#"serde_json = { version = "1", features = ["std"] }"#),
            Rule::Pins
        );
        assert_eq!(rule(r#"tenancy2 = { path = "../tenancy" }"#), Rule::Pins);
        assert_eq!(rule("hyper.workspace = true"), Rule::Pins);
        assert_eq!(
            rule(r#"axum = { workspace = true, default-features = false }"#),
            Rule::Pins
        );
        assert_eq!(
            only(with("store", WASM, r#"getrandom = "0.3""#)),
            Rule::Pins
        );
        let own = r#"billing = { path = ".", features = ["testing"] }"#;
        assert_eq!(only(with("billing", "dev-dependencies", own)), Rule::Pins);
        // A package field the workspace gives, set by the member itself.
        assert_eq!(
            only(with("store", "package", r#"license = "MIT""#)),
            Rule::Pins
        );
    }

    #[test]
    fn an_exception_nothing_uses_is_reported() {
        let map = format!("{MAP}\n[[exception]]\nfrom = \"tenancy\"\nto = \"axum\"\nwhy = \"w\"\n");
        let violations = check_members(&members(), &map);
        assert_eq!(only(violations.clone()), Rule::Exceptions);
        assert!(violations[0].message.contains("tenancy -> axum"));
    }
}
