//! Gossip encryption keys: one primary that seals what this agent sends,
//! any number accepted to open what it receives, so a cluster rotates keys
//! without downtime (install the new key everywhere, make it primary
//! everywhere, remove the old one), as Serf's keyring does. Keys are 32
//! random bytes, written as standard base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

pub const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 24;
/// What sealing adds to a datagram: the nonce and the tag.
pub const OVERHEAD: usize = NONCE_LEN + 16;

#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; KEY_LEN]);

impl std::fmt::Debug for Key {
    /// Never prints the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key(…)")
    }
}

impl Key {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Key {
        Key(rand::random())
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl std::str::FromStr for Key {
    type Err = String;
    fn from_str(s: &str) -> Result<Key, String> {
        let bytes = STANDARD
            .decode(s.trim())
            .map_err(|_| "a key must be base64 (as `hearsay keys generate` prints)".to_string())?;
        let arr: [u8; KEY_LEN] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "a key must be {KEY_LEN} bytes ({} base64 characters), not {} bytes",
                KEY_LEN.div_ceil(3) * 4,
                b.len()
            )
        })?;
        Ok(Key(arr))
    }
}

#[derive(Clone, Debug, Default)]
pub struct Keyring {
    /// Primary first; empty means gossip goes in clear text.
    keys: Vec<Key>,
}

impl Keyring {
    /// The first key is the primary.
    pub fn new(keys: Vec<Key>) -> Keyring {
        let mut r = Keyring::default();
        for k in keys {
            r.install(k);
        }
        r
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    pub fn primary(&self) -> Option<&Key> {
        self.keys.first()
    }

    /// Accepts `k` for receiving (primary if it is the first key).
    pub fn install(&mut self, k: Key) {
        if !self.keys.contains(&k) {
            self.keys.push(k);
        }
    }

    /// Makes an installed key the primary.
    pub fn use_key(&mut self, k: &Key) -> Result<(), String> {
        let i = self
            .keys
            .iter()
            .position(|x| x == k)
            .ok_or("that key is not installed; install it first")?;
        let k = self.keys.remove(i);
        self.keys.insert(0, k);
        Ok(())
    }

    /// Stops accepting `k`; the primary cannot be removed.
    pub fn remove(&mut self, k: &Key) -> Result<(), String> {
        match self.keys.iter().position(|x| x == k) {
            Some(0) => Err("that key is the primary; make another key primary first".into()),
            Some(i) => {
                self.keys.remove(i);
                Ok(())
            }
            None => Err("that key is not installed".into()),
        }
    }

    /// `nonce | ciphertext+tag` of `plain` under the primary key, with
    /// `aad` authenticated but not encrypted.
    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let key = self.primary()?;
        let cipher = XChaCha20Poly1305::new((&key.0).into());
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
            .ok()?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Some(out)
    }

    /// Opens what [`Keyring::seal`] made with any installed key.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < OVERHEAD {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        self.keys.iter().find_map(|k| {
            XChaCha20Poly1305::new((&k.0).into())
                .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad })
                .ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_as_base64_and_bad_ones_say_why() {
        let k = Key::generate();
        assert_eq!(k.to_base64().parse::<Key>().unwrap(), k);
        assert!("not base64!".parse::<Key>().unwrap_err().contains("base64"));
        assert!("AAAA".parse::<Key>().unwrap_err().contains("32 bytes"));
        assert_eq!(format!("{k:?}"), "Key(…)");
    }

    #[test]
    fn rotation_opens_with_any_installed_key_and_seals_with_the_primary() {
        let (old, new) = (Key::generate(), Key::generate());
        let mut a = Keyring::new(vec![old.clone()]);
        let sealed_old = a.seal(b"hi", b"c1").unwrap();
        a.install(new.clone());
        assert_eq!(a.open(&sealed_old, b"c1").unwrap(), b"hi");
        a.use_key(&new).unwrap();
        let sealed_new = a.seal(b"yo", b"c1").unwrap();
        let only_old = Keyring::new(vec![old.clone()]);
        assert!(only_old.open(&sealed_new, b"c1").is_none());
        assert!(a.remove(&new).is_err(), "the primary stays");
        a.remove(&old).unwrap();
        assert!(a.open(&sealed_old, b"c1").is_none());
        assert!(a.use_key(&old).is_err());
    }

    #[test]
    fn the_associated_data_and_every_byte_are_authenticated() {
        let r = Keyring::new(vec![Key::generate()]);
        let sealed = r.seal(b"payload", b"cluster-a").unwrap();
        assert!(r.open(&sealed, b"cluster-b").is_none());
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 1;
            assert!(r.open(&t, b"cluster-a").is_none(), "byte {i}");
        }
        assert!(r.open(&sealed[..OVERHEAD - 1], b"cluster-a").is_none());
    }
}
