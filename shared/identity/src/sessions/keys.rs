//! The keys that sign access tokens: Ed25519, each named by a `kid`, in a set with one current key
//! (signs) and any number of previous keys (still verify), so keys rotate without logging anyone out.
//!
//! Configuration format (`IMAGEMCP_TOKEN_KEYS`, or the local binary's `token-signing.keys` file):
//! comma-separated `kid:seed` pairs, the seed being 32 bytes in unpadded base64url; the first pair
//! is the current key. To rotate, put a new pair first and keep the old one until every token it
//! signed has expired ([`super::ACCESS_TOKEN_TTL`]), then drop it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use imagemcp_core::ids::Random;
use imagemcp_core::{Error, Result};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Value, json};

/// The one algorithm tokens are signed and verified with. Verification pins it: a token naming any
/// other algorithm (`none`, `HS256` keyed with our public key, …) is refused before any crypto runs.
pub const ALGORITHM: Algorithm = Algorithm::EdDSA;

/// The PKCS#8 v1 DER prefix of an Ed25519 private key; the 32-byte seed follows it.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// One Ed25519 key pair. The seed never leaves this type except through [`SigningKey::to_config`].
pub struct SigningKey {
    kid: String,
    seed: [u8; 32],
    public: [u8; 32],
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("seed", &"[redacted]")
            .finish()
    }
}

fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 64
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl SigningKey {
    /// The key pair of a 32-byte seed.
    pub fn from_seed(kid: &str, seed: [u8; 32]) -> Result<Self> {
        if !valid_kid(kid) {
            return Err(Error::invalid(
                "token key id",
                "must be 1 to 64 characters of [A-Za-z0-9._-]",
            ));
        }
        super::eddsa::install();
        let public = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes();
        let mut der = PKCS8_ED25519_PREFIX.to_vec();
        der.extend_from_slice(&seed);
        Ok(Self {
            kid: kid.to_owned(),
            seed,
            public,
            encoding: EncodingKey::from_ed_der(&der),
            decoding: DecodingKey::from_ed_der(&public),
        })
    }

    /// A new random key.
    pub fn generate(random: &dyn Random) -> Result<Self> {
        let mut seed = [0u8; 32];
        random.fill(&mut seed);
        let mut id = [0u8; 6];
        random.fill(&mut id);
        Self::from_seed(&format!("k{}", hex::encode(id)), seed)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The `kid:seed` form of the configuration format. Secret: write it only to protected storage.
    pub fn to_config(&self) -> String {
        format!("{}:{}", self.kid, URL_SAFE_NO_PAD.encode(self.seed))
    }

    /// The public key as a JWK (RFC 8037), for `/.well-known/jwks.json`.
    pub fn public_jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "use": "sig",
            "alg": "EdDSA",
            "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(self.public),
        })
    }

    /// The raw public key (tests forge tokens with it).
    pub fn public_bytes(&self) -> [u8; 32] {
        self.public
    }
}

/// The current signing key and the previous keys that still verify.
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<SigningKey>,
}

impl KeySet {
    /// A set whose first key signs. Refuses an empty set and repeated key ids.
    pub fn new(keys: Vec<SigningKey>) -> Result<Self> {
        if keys.is_empty() {
            return Err(Error::invalid("token keys", "at least one key is needed"));
        }
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.kid == k.kid) {
                return Err(Error::invalid(
                    "token keys",
                    format!("key id `{}` appears twice", k.kid),
                ));
            }
        }
        Ok(Self { keys })
    }

    /// Parses the configuration format (see the module docs). Errors never echo the secret.
    pub fn parse(config: &str) -> Result<Self> {
        let mut keys = Vec::new();
        for pair in config.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (kid, seed) = pair
                .split_once(':')
                .ok_or_else(|| Error::invalid("token keys", "each key must be `kid:seed`"))?;
            let seed: [u8; 32] = URL_SAFE_NO_PAD
                .decode(seed.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    Error::invalid(
                        "token keys",
                        format!("the seed of key `{kid}` must be 32 bytes of base64url"),
                    )
                })?;
            keys.push(SigningKey::from_seed(kid.trim(), seed)?);
        }
        Self::new(keys)
    }

    /// The configuration form of the whole set. Secret.
    pub fn to_config(&self) -> String {
        self.keys
            .iter()
            .map(SigningKey::to_config)
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn current(&self) -> &SigningKey {
        &self.keys[0]
    }

    /// The key a token names, if it is one of ours.
    pub fn find(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// Every public key, as a JWK Set.
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.keys.iter().map(SigningKey::public_jwk).collect::<Vec<_>>() })
    }

    /// Signs claims with the current key, naming it in the `kid` header.
    pub fn sign<T: serde::Serialize>(&self, claims: &T) -> Result<String> {
        let key = self.current();
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(key.kid.clone());
        header.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| Error::internal(format!("signing an access token: {e}")))
    }

    /// The decoding key of a token's `kid`.
    pub(super) fn decoding(&self, kid: &str) -> Option<&DecodingKey> {
        self.find(kid).map(|k| &k.decoding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_and_hides_secrets() {
        let a = SigningKey::from_seed("a", [1; 32]).unwrap();
        let b = SigningKey::from_seed("b", [2; 32]).unwrap();
        let set = KeySet::new(vec![a, b]).unwrap();
        let parsed = KeySet::parse(&set.to_config()).unwrap();
        assert_eq!(parsed.current().kid(), "a");
        assert_eq!(
            parsed.find("b").unwrap().public_bytes(),
            set.find("b").unwrap().public_bytes()
        );
        assert!(!format!("{set:?}").contains(&URL_SAFE_NO_PAD.encode([1u8; 32])));
        for bad in ["", "a", "a:short", "a:AAAA,a:AAAA", "bad kid!:AAAA"] {
            assert!(KeySet::parse(bad).is_err(), "{bad}");
        }
        let dup = format!("x:{0},x:{0}", URL_SAFE_NO_PAD.encode([3u8; 32]));
        let err = KeySet::parse(&dup).unwrap_err().to_string();
        assert!(!err.contains(&URL_SAFE_NO_PAD.encode([3u8; 32])), "{err}");
    }
}
