//! Verification of Stripe's `Stripe-Signature` header: `t=<unix secs>,v1=<hex hmac>[,v1=…]`, the
//! HMAC-SHA256 of `<t>.<raw body>` under a webhook secret. Any `v1` matching any configured secret
//! passes (Stripe sends one `v1` per active secret while one rolls; we accept several secrets while
//! ours rolls). The timestamp must be within [`TOLERANCE_SECS`] of now, so a captured request cannot
//! be replayed later; a replay inside the window is caught by the event-id record.

use hmac::{Hmac, Mac};
use imagemcp_core::{Error, Result};
use sha2::Sha256;

/// Stripe's default tolerance.
pub const TOLERANCE_SECS: i64 = 300;

/// Checks `header` for `payload` against `secrets` at `now_secs`. The error never says which
/// secret was tried or what was expected.
pub fn verify(
    header: Option<&str>,
    payload: &[u8],
    secrets: &[String],
    now_secs: i64,
) -> Result<()> {
    let refuse = |why: &str| Err(Error::Unauthenticated(format!("Stripe signature {why}")));
    let Some(header) = header else {
        return refuse("missing");
    };
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => {
                if let Ok(bytes) = hex::decode(sig) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let Some(t) = timestamp else {
        return refuse("has no valid timestamp");
    };
    if signatures.is_empty() {
        return refuse("has no v1 signature");
    }
    if (now_secs - t).abs() > TOLERANCE_SECS {
        return refuse("is outside the 300 s tolerance");
    }
    for secret in secrets {
        for sig in &signatures {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
                continue;
            };
            mac.update(t.to_string().as_bytes());
            mac.update(b".");
            mac.update(payload);
            // Constant-time comparison.
            if mac.verify_slice(sig).is_ok() {
                return Ok(());
            }
        }
    }
    refuse("does not match")
}

/// The header Stripe would send for `payload` at `t` under `secret` (for tests and the fake).
pub fn sign(payload: &[u8], secret: &str, t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_478_400;

    fn secrets(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn accepts_a_valid_signature_and_any_matching_v1_or_secret() {
        let body = br#"{"id":"evt_1"}"#;
        let good = sign(body, "whsec_new", NOW);
        assert!(verify(Some(&good), body, &secrets(&["whsec_new"]), NOW).is_ok());
        // Rotation on our side: the old and new secrets are both configured.
        assert!(
            verify(
                Some(&good),
                body,
                &secrets(&["whsec_old", "whsec_new"]),
                NOW
            )
            .is_ok()
        );
        // Rotation on Stripe's side: two v1 signatures, one under the secret we know.
        let old = sign(body, "whsec_old", NOW);
        let v1_old = old.split_once(",v1=").unwrap().1;
        let two = format!("{good},v1={v1_old},v0=deadbeef");
        assert!(verify(Some(&two), body, &secrets(&["whsec_old"]), NOW).is_ok());
    }

    #[test]
    fn refuses_unsigned_badly_signed_tampered_and_stale() {
        let body = br#"{"id":"evt_1"}"#;
        let s = secrets(&["whsec_new"]);
        let good = sign(body, "whsec_new", NOW);
        let cases: Vec<(Option<String>, &[u8], i64)> = vec![
            (None, body, NOW),
            (Some(String::new()), body, NOW),
            (Some(format!("t={NOW}")), body, NOW),
            (Some("v1=00".into()), body, NOW),
            (Some(sign(body, "whsec_other", NOW)), body, NOW),
            (Some(good.clone()), br#"{"id":"evt_2"}"#, NOW),
            (Some(good.clone()), body, NOW + 301),
            (Some(good.clone()), body, NOW - 301),
            (Some(good.replace("v1=", "v0=")), body, NOW),
        ];
        for (header, payload, now) in cases {
            let err = verify(header.as_deref(), payload, &s, now).unwrap_err();
            assert!(matches!(err, Error::Unauthenticated(_)), "{header:?}");
            assert!(!err.to_string().contains("whsec"), "no secret in errors");
        }
        assert!(
            verify(Some(&good), body, &s, NOW + 300).is_ok(),
            "edge of tolerance"
        );
    }
}
