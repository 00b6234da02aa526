//! The code map as data (`xtask/codemap.toml`): every workspace crate's layer, the order of the
//! application crates, the crates the core must not know, the protocol crates, and the exceptions
//! to the rules, each with its reason.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// The parsed `codemap.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeMap {
    pub core: Core,
    pub adapters: Crates,
    /// The application crates by name, each with its rank.
    pub application: BTreeMap<String, Application>,
    pub runtimes: Crates,
    pub fakes: Crates,
    pub tools: Crates,
    pub protocols: Protocols,
    #[serde(default, rename = "exception")]
    pub exceptions: Vec<Exception>,
}

/// The core's crates and the packages (names, or prefixes ending in `*`) none of them may link.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Core {
    pub crates: Vec<String>,
    pub forbidden: Vec<String>,
}

/// The crates of one layer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crates {
    pub crates: Vec<String>,
}

/// One application crate: it may link only application crates of a lower rank, and, among the
/// protocol crates, only the one it names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub rank: u32,
    pub protocol: Option<String>,
}

/// The protocol crates: among the application crates, each is known by the one that names it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocols {
    pub crates: Vec<String>,
}

/// A dependency the rules forbid that exists on purpose.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    pub from: String,
    /// A workspace crate or an external package.
    pub to: String,
    pub why: String,
    /// What removes the exception, when it is temporary.
    pub until: Option<String>,
}

/// A crate's place in the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    Core,
    Adapter,
    Application { rank: u32 },
    Runtime,
    Fake,
    Tool,
}

impl Layer {
    /// The layer's name as the map and the messages say it.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Core => "the core",
            Layer::Adapter => "an adapter",
            Layer::Application { .. } => "an application crate",
            Layer::Runtime => "a runtime",
            Layer::Fake => "an infrastructure fake",
            Layer::Tool => "a tool",
        }
    }
}

impl CodeMap {
    /// Reads and parses the map.
    pub fn load(path: &Path) -> Result<CodeMap, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        CodeMap::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<CodeMap, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Every crate on the map with its layer; a crate listed twice appears twice.
    pub fn entries(&self) -> Vec<(&str, Layer)> {
        let plain = [
            (&self.core.crates, Layer::Core),
            (&self.adapters.crates, Layer::Adapter),
            (&self.runtimes.crates, Layer::Runtime),
            (&self.fakes.crates, Layer::Fake),
            (&self.tools.crates, Layer::Tool),
        ];
        let mut entries: Vec<(&str, Layer)> = plain
            .into_iter()
            .flat_map(|(crates, layer)| crates.iter().map(move |c| (c.as_str(), layer)))
            .collect();
        entries.extend(
            self.application
                .iter()
                .map(|(name, app)| (name.as_str(), Layer::Application { rank: app.rank })),
        );
        entries
    }

    /// The layer of a crate on the map.
    pub fn layer(&self, name: &str) -> Option<Layer> {
        self.entries()
            .into_iter()
            .find(|(crate_name, _)| *crate_name == name)
            .map(|(_, layer)| layer)
    }

    /// Whether the core may not link `package`.
    pub fn forbidden_in_core(&self, package: &str) -> bool {
        self.core
            .forbidden
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => package.starts_with(prefix),
                None => package == pattern,
            })
    }

    /// The exception that allows `from` to depend on `to`, if there is one.
    pub fn exception(&self, from: &str, to: &str) -> Option<&Exception> {
        self.exceptions
            .iter()
            .find(|e| e.from == from && e.to == to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_key_in_the_map_is_an_error() {
        let text = r#"
            core = { crates = ["c"], forbidden = [] }
            adapters = { crates = [] }
            runtimes = { crates = [] }
            fakes = { crates = [] }
            tools = { crates = [] }
            protocols = { crates = [] }
            [application]
            app = { rank = 1, protocl = "rmcp" }
        "#;
        let err = CodeMap::parse(text).unwrap_err();
        assert!(err.contains("protocl"), "{err}");
    }

    #[test]
    fn forbidden_patterns_match_names_and_prefixes() {
        let map = CodeMap::parse(
            r#"
            core = { crates = ["c"], forbidden = ["image", "aws-*"] }
            adapters = { crates = [] }
            runtimes = { crates = [] }
            fakes = { crates = [] }
            tools = { crates = [] }
            protocols = { crates = [] }
            application = {}
            "#,
        )
        .unwrap();
        assert!(map.forbidden_in_core("image"));
        assert!(map.forbidden_in_core("aws-sdk-s3"));
        assert!(!map.forbidden_in_core("image-webp"));
        assert!(!map.forbidden_in_core("aws_lambda_events"));
        assert_eq!(map.layer("c"), Some(Layer::Core));
        assert_eq!(map.layer("d"), None);
    }
}
