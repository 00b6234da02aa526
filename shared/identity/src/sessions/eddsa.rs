//! An Ed25519-only crypto backend for `jsonwebtoken`, installed on the Worker (wasm32).
//!
//! Why hand-written: `jsonwebtoken`'s `rust_crypto` feature is all-or-nothing — it links RSA,
//! P-256 and P-384 (with their bignum and curve arithmetic) beside Ed25519, 129 KB of the Worker's
//! gzipped bundle (measured with scripts/bench-worker), although we only ever sign and verify EdDSA (the algorithm is pinned
//! in [`super::keys::ALGORITHM`]). The crate has no finer features, but accepts a custom
//! [`CryptoProvider`]; this one delegates to `ed25519-dalek` (the same crate `rust_crypto` uses for
//! EdDSA) and refuses every other algorithm. Native builds keep `rust_crypto` (their size does not
//! matter), and this provider is unit-tested there against it.

use ed25519_dalek::pkcs8::DecodePrivateKey;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};

/// The provider: EdDSA signers and verifiers, an error for any other algorithm. JWK helpers are
/// left unimplemented: we publish our JWKs ourselves (`keys::SigningKey::public_jwk`) and never
/// parse one.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
static EDDSA_ONLY: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Makes [`EDDSA_ONLY`] the process's provider on wasm32, once; a no-op natively, where the
/// `rust_crypto` feature provides the default. Called before any key is built, so before any
/// token is signed or verified.
pub(super) fn install() {
    #[cfg(target_arch = "wasm32")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        // An `Err` means a provider is already installed, which can only be this one.
        ONCE.call_once(|| {
            let _ = EDDSA_ONLY.install_default();
        });
    }
}

struct EdSigner(ed25519_dalek::SigningKey);

impl Signer<Vec<u8>> for EdSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        Ok(self.0.sign(msg).to_bytes().to_vec())
    }
}

impl JwtSigner for EdSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

struct EdVerifier(ed25519_dalek::VerifyingKey);

impl Verifier<Vec<u8>> for EdVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        self.0
            .verify_strict(msg, &ed25519_dalek::Signature::from_slice(sig)?)
    }
}

impl JwtVerifier for EdVerifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

fn signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    if *alg != Algorithm::EdDSA || key.family() != AlgorithmFamily::Ed {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let key = ed25519_dalek::SigningKey::from_pkcs8_der(key.as_bytes())
        .map_err(|_| ErrorKind::InvalidEddsaKey)?;
    Ok(Box::new(EdSigner(key)))
}

fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if *alg != Algorithm::EdDSA || key.family() != AlgorithmFamily::Ed {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let bytes: &[u8; 32] = key
        .try_get_as_bytes()?
        .try_into()
        .map_err(|_| ErrorKind::InvalidEddsaKey)?;
    let key =
        ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| ErrorKind::InvalidEddsaKey)?;
    Ok(Box::new(EdVerifier(key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::keys::SigningKey;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn pair() -> (EncodingKey, DecodingKey) {
        let seed = [7u8; 32];
        let public = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes();
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(&seed);
        (
            EncodingKey::from_ed_der(&der),
            DecodingKey::from_ed_der(&public),
        )
    }

    #[test]
    fn signatures_match_rust_crypto_and_verify_both_ways() {
        let _ = SigningKey::from_seed("k1", [7u8; 32]).unwrap();
        let (enc, dec) = pair();
        let msg = b"header.claims";
        let ours = signer(&Algorithm::EdDSA, &enc)
            .unwrap()
            .try_sign(msg)
            .unwrap();
        // Ed25519 is deterministic: the default (rust_crypto) provider must produce the same bytes.
        let theirs = jsonwebtoken::crypto::sign(msg, &enc, Algorithm::EdDSA).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.encode(&ours), theirs);
        let v = verifier(&Algorithm::EdDSA, &dec).unwrap();
        assert!(v.verify(msg, &ours).is_ok());
        assert!(v.verify(b"header.claimz", &ours).is_err());
        let mut bad = ours.clone();
        bad[0] ^= 1;
        assert!(v.verify(msg, &bad).is_err());
        assert!(v.verify(msg, &ours[..63].to_vec()).is_err());
    }

    #[test]
    fn every_other_algorithm_and_key_family_is_refused() {
        let (enc, dec) = pair();
        for alg in [
            Algorithm::HS256,
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::PS512,
        ] {
            assert!(signer(&alg, &enc).is_err());
            assert!(verifier(&alg, &dec).is_err());
        }
        let secret = DecodingKey::from_secret(b"0123456789abcdef0123456789abcdef");
        assert!(verifier(&Algorithm::EdDSA, &secret).is_err());
        assert!(signer(&Algorithm::EdDSA, &EncodingKey::from_secret(b"x")).is_err());
        // A public key of the wrong length is an error, not a panic.
        assert!(verifier(&Algorithm::EdDSA, &DecodingKey::from_ed_der(&[1u8; 31])).is_err());
    }
}
