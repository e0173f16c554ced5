//! The registry's key for secrets at rest: two-factor secrets are sealed under it.

use std::path::Path;

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use tokengate::TotpSecret;
use zeroize::Zeroizing;

use crate::error::ApiError;

/// Encrypts and decrypts TOTP secrets with the registry's key.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl Sealer {
    /// The key in `<data>/secret.key` (created, readable by its owner only, when missing).
    pub fn from_file(path: &Path) -> std::io::Result<Self> {
        let key = match std::fs::read(path) {
            Ok(key) => Zeroizing::new(key),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = random_key()?;
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, crate::storage::PRIVATE_FILE);
                std::io::Write::write_all(&mut options.open(path)?, &key[..])?;
                key
            }
            Err(error) => return Err(error),
        };
        if key.len() != 32 {
            return Err(std::io::Error::other(format!(
                "{} is not a 32-byte key",
                path.display()
            )));
        }
        Ok(Self::with_key(&key))
    }

    /// A key that lives as long as the process (`--memory`).
    pub fn ephemeral() -> std::io::Result<Self> {
        Ok(Self::with_key(&random_key()?))
    }

    fn with_key(key: &[u8]) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(key)),
        }
    }

    pub fn seal(&self, secret: &TotpSecret) -> Result<String, ApiError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| ApiError::internal("cannot seal a secret", e))?;
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), secret.expose_bytes())
            .map_err(|_| ApiError::internal("cannot seal a secret", "encryption failed"))?;
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn open(&self, sealed: &str) -> Result<TotpSecret, ApiError> {
        let damaged = || ApiError::internal("a stored second factor is damaged", "cannot open it");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| damaged())?;
        if bytes.len() < 12 {
            return Err(damaged());
        }
        let (nonce, sealed) = bytes.split_at(12);
        let plain = Zeroizing::new(
            self.cipher
                .decrypt(Nonce::from_slice(nonce), sealed)
                .map_err(|_| damaged())?,
        );
        TotpSecret::from_bytes(&plain).map_err(|_| damaged())
    }
}

fn random_key() -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut key = Zeroizing::new(vec![0u8; 32]);
    getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(key)
}
