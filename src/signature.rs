//! HMAC-SHA-256, the one signature of the extension: tenant tokens and JWTs
//! (api/tokens.rs) and the context a Citus coordinator carries to its
//! workers (api/citus.rs).

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], message: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length (a long one is hashed): this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac
}

/// The signature of `message` with `key`.
pub fn sign(key: &[u8], message: &[u8]) -> Vec<u8> {
    mac(key, message).finalize().into_bytes().to_vec()
}

/// Whether `signature` is `message`'s with `key`, compared in constant time.
pub fn verify(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    mac(key, message).verify_slice(signature).is_ok()
}
