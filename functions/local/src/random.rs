//! Secure randomness from the operating system, for keys and secrets.

/// The OS random source (`getrandom` through `rand`).
pub(crate) struct OsRandom;

impl imagemcp_core::ids::Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        use rand::TryRngCore;
        // The OS source failing is unrecoverable: no key may be made from weak randomness.
        rand::rngs::OsRng
            .try_fill_bytes(buf)
            .expect("the operating system's random source failed");
    }
}
