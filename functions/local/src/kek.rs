//! The key-encryption keys of a local install: from configuration, or made on first run and kept
//! in the data directory (`kek.json`, mode 0600) so a laptop install encrypts at rest with no setup.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use imagemcp_app::crypto::{Keyring, parse_kek};
use serde::{Deserialize, Serialize};

use crate::settings::Settings;

const FILE: &str = "kek.json";

#[derive(Serialize, Deserialize)]
struct KekFile {
    current: String,
    /// Every KEK by id, base64; older ones stay until no data key is wrapped by them.
    keys: BTreeMap<String, String>,
}

fn fresh_key() -> String {
    let mut key = [0u8; 32];
    imagemcp_core::ids::Random::fill(&imagemcp_native::OsRandom, &mut key);
    STANDARD.encode(key)
}

fn read(path: &Path) -> Result<Option<KekFile>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                format!("{} is corrupt", path.display())
            })?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn write(path: &Path, file: &KekFile) -> Result<()> {
    crate::write_private(path, &serde_json::to_vec_pretty(file)?)
}

fn keyring_of(file: &KekFile) -> Result<Keyring> {
    let current = file
        .keys
        .get(&file.current)
        .context("kek.json names a current key it does not hold")?;
    let previous = file
        .keys
        .iter()
        .filter(|(id, _)| **id != file.current)
        .map(|(id, key)| Ok((id.clone(), parse_kek("kek.json", key)?)))
        .collect::<imagemcp_core::Result<Vec<_>>>()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Keyring::new(
        (
            &file.current,
            parse_kek("kek.json", current).map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
        previous,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// The keyring the settings call for, making the data directory's KEK on first use.
pub(crate) fn keyring(settings: &Settings) -> Result<Keyring> {
    match &settings.app.kek {
        Some(configured) => configured.keyring().map_err(|e| anyhow::anyhow!("{e}")),
        None => {
            let path = settings.data_dir.join(FILE);
            let file = match read(&path)? {
                Some(file) => file,
                None => {
                    let file = KekFile {
                        current: "local-1".into(),
                        keys: BTreeMap::from([("local-1".into(), fresh_key())]),
                    };
                    write(&path, &file)?;
                    file
                }
            };
            keyring_of(&file)
        }
    }
}

/// Makes a new current KEK in the data directory, keeping the old ones for unwrapping. Refused
/// when the KEK comes from configuration: then the operator rotates it there.
pub(crate) fn rotate_file(settings: &Settings) -> Result<String> {
    if settings.app.kek.is_some() {
        bail!(
            "IMAGEMCP_KEK is set: rotate by setting a new IMAGEMCP_KEK and IMAGEMCP_KEK_ID and moving \
             the old one to IMAGEMCP_KEK_PREVIOUS, then run this command to re-wrap the data keys"
        );
    }
    let path = settings.data_dir.join(FILE);
    let mut file = match read(&path)? {
        Some(file) => file,
        None => bail!("no {FILE} in the data directory yet: nothing to rotate"),
    };
    let next = (1..)
        .map(|n| format!("local-{n}"))
        .find(|id| !file.keys.contains_key(id))
        .context("no free key id")?;
    file.keys.insert(next.clone(), fresh_key());
    file.current = next.clone();
    write(&path, &file)?;
    Ok(next)
}
