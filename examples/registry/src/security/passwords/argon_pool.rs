//! Argon2's working memory, kept between checks: each check borrows a buffer of
//! [`Block`]s from a pool instead of allocating its own (19 MiB with the default
//! parameters). A freed buffer of that size stays with the process anyway (the
//! allocator keeps it in one of its arenas, a different one per blocking thread), so
//! allocating per check grew the registry by a buffer per arena and fragment; a pool
//! holds at most as many buffers as checks ever run at once, made on first need and
//! never freed.
//!
//! - New hashes are what `Argon2::default().hash_password` writes: Argon2id, version
//!   0x13, the default parameters, a standard PHC string.
//! - A stored hash is checked with its own algorithm, version, parameters and salt,
//!   as `PasswordVerifier` does, and the result compared in constant time
//!   (`password_hash::Output`'s equality). A hash that needs less memory than a buffer
//!   uses the start of one.
//! - A hash that needs *more* memory than a buffer (made with stronger parameters than
//!   the registry's, elsewhere or by a later default) still verifies: that check gets
//!   a buffer of its own, freed after it, as every check was before the pool. Refusing
//!   it would lock its owner out; it costs only when such hashes exist.
//! - A buffer is wiped after each use, so no check leaves its password-derived memory
//!   behind for the next one to inherit (freed memory was never wiped before).

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use argon2::password_hash::{self, Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use zeroize::Zeroize;

/// Buffers of Argon2 memory, at most `slots` of them, each big enough for `Params`'s
/// defaults.
pub struct ArgonPool {
    free: Mutex<Buffers>,
    returned: Condvar,
    slots: usize,
    /// Blocks in each buffer.
    blocks: usize,
}

struct Buffers {
    idle: Vec<Box<[Block]>>,
    /// Buffers made so far, idle or lent: never more than `slots`.
    made: usize,
}

impl ArgonPool {
    /// A pool of at most `slots` buffers (allocated when first needed). More than `slots`
    /// checks at once wait for a buffer: give the pool as many slots as checks are let
    /// run at once.
    pub fn new(slots: usize) -> Self {
        assert!(slots > 0, "an Argon2 pool needs a slot");
        Self {
            free: Mutex::new(Buffers {
                idle: Vec::with_capacity(slots),
                made: 0,
            }),
            returned: Condvar::new(),
            slots,
            blocks: Params::DEFAULT.block_count(),
        }
    }

    /// The PHC string of `password` hashed as `Argon2::default()` hashes it, with `salt`.
    /// Slow and blocking: call it off the async workers.
    pub fn hash(&self, password: &[u8], salt: Salt<'_>) -> password_hash::Result<String> {
        let (algorithm, version, params) =
            (Algorithm::default(), Version::default(), Params::default());
        let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
        let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
        let argon2 = Argon2::new(algorithm, version, params.clone());
        let output = self.with_memory(params.block_count(), |memory| {
            Output::init_with(output_len, |out| {
                Ok(argon2.hash_password_into_with_memory(password, salt_bytes, out, memory)?)
            })
        })?;
        let hash = PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&params)?,
            salt: Some(salt),
            hash: Some(output),
        };
        Ok(hash.to_string())
    }

    /// Whether `password` is the one `hash` was made from, computed with the hash's own
    /// parameters. `Err` for a hash that cannot be checked (no salt or output, an
    /// algorithm other than Argon2's, parameters Argon2 refuses), never for a wrong
    /// password. Slow and blocking: call it off the async workers.
    pub fn verify(&self, password: &[u8], hash: &PasswordHash<'_>) -> password_hash::Result<bool> {
        let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
            return Err(password_hash::Error::PhcStringField);
        };
        let algorithm = Algorithm::try_from(hash.algorithm)?;
        let version = match hash.version {
            Some(version) => Version::try_from(version)?,
            None => Version::default(),
        };
        // The output length too: `Params` reads it from the hash.
        let params = Params::try_from(hash)?;
        let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
        let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
        let blocks = params.block_count();
        let argon2 = Argon2::new(algorithm, version, params);
        let computed = self.with_memory(blocks, |memory| {
            Output::init_with(expected.len(), |out| {
                Ok(argon2.hash_password_into_with_memory(password, salt_bytes, out, memory)?)
            })
        })?;
        // `Output`'s equality is constant-time (`subtle`).
        Ok(computed == *expected)
    }

    /// Runs `f` with `blocks` blocks of memory: the start of a pooled buffer, or, past a
    /// buffer's size, a buffer of its own. Either is wiped after.
    fn with_memory<R>(&self, blocks: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
        if blocks > self.blocks {
            let mut own = vec![Block::new(); blocks];
            let result = f(&mut own);
            wipe(&mut own);
            return result;
        }
        let mut lent = Lent {
            pool: self,
            buffer: Some(self.take()),
            used: blocks,
        };
        let buffer = lent.buffer.as_mut().expect("a lent buffer");
        f(&mut buffer[..blocks])
    }

    /// An idle buffer, a new one while fewer than `slots` exist, or else the next one
    /// given back.
    fn take(&self) -> Box<[Block]> {
        let mut free = self.lock();
        loop {
            if let Some(buffer) = free.idle.pop() {
                return buffer;
            }
            if free.made < self.slots {
                free.made += 1;
                drop(free);
                return vec![Block::new(); self.blocks].into_boxed_slice();
            }
            free = self
                .returned
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Buffers> {
        // The lock guards a list of buffers only: a panic cannot leave it half-changed.
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Buffers made so far.
    #[cfg(test)]
    pub(super) fn made(&self) -> usize {
        self.lock().made
    }
}

/// A buffer lent to one check: wiped and given back when the check ends, even by a
/// panic.
struct Lent<'a> {
    pool: &'a ArgonPool,
    buffer: Option<Box<[Block]>>,
    used: usize,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(mut buffer) = self.buffer.take() {
            wipe(&mut buffer[..self.used]);
            self.pool.lock().idle.push(buffer);
            self.pool.returned.notify_one();
        }
    }
}

fn wipe(blocks: &mut [Block]) {
    for block in blocks {
        block.as_mut().zeroize();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
    use argon2::{Algorithm, Argon2, Block, Params, Version};

    use super::ArgonPool;

    const PASSWORD: &[u8] = b"correct horse battery";

    fn salt() -> SaltString {
        SaltString::encode_b64(b"sixteen byte sal").unwrap()
    }

    #[test]
    fn a_hash_made_by_argon2_default_verifies_through_the_pool() {
        let pool = ArgonPool::new(1);
        let stored = Argon2::default()
            .hash_password(PASSWORD, &salt())
            .unwrap()
            .to_string();
        let parsed = PasswordHash::new(&stored).unwrap();
        assert!(pool.verify(PASSWORD, &parsed).unwrap());
        assert!(!pool.verify(b"a wrong password", &parsed).unwrap());
        // One character off in the stored output is a wrong password too.
        let mut tampered = PasswordHash::new(&stored).unwrap();
        let mut output = tampered.hash.unwrap().as_bytes().to_vec();
        output[31] ^= 1;
        tampered.hash = Some(argon2::password_hash::Output::new(&output).unwrap());
        assert!(!pool.verify(PASSWORD, &tampered).unwrap());
        assert_eq!(pool.made(), 1);
    }

    #[test]
    fn new_hashes_are_what_argon2_default_writes() {
        let pool = ArgonPool::new(1);
        let ours = pool.hash(PASSWORD, salt().as_salt()).unwrap();
        let theirs = Argon2::default()
            .hash_password(PASSWORD, &salt())
            .unwrap()
            .to_string();
        assert_eq!(ours, theirs);
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let parsed = PasswordHash::new(&ours).unwrap();
        Argon2::default()
            .verify_password(PASSWORD, &parsed)
            .unwrap();
    }

    #[test]
    fn other_parameters_algorithms_and_versions_verify() {
        let pool = ArgonPool::new(1);
        let cases = [
            (
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(8, 1, 1, None),
            ),
            (
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(64, 3, 2, Some(16)),
            ),
            (
                Algorithm::Argon2i,
                Version::V0x13,
                Params::new(256, 2, 1, None),
            ),
            (
                Algorithm::Argon2d,
                Version::V0x10,
                Params::new(512, 1, 4, Some(64)),
            ),
            // Twice a pooled buffer: a buffer of its own for this check.
            (
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(2 * Params::DEFAULT_M_COST, 1, 1, None),
            ),
        ];
        for (algorithm, version, params) in cases {
            let params = params.unwrap();
            let what = format!("{algorithm:?} {version:?} {params:?}");
            let stored = Argon2::new(algorithm, version, params)
                .hash_password(PASSWORD, &salt())
                .unwrap()
                .to_string();
            let parsed = PasswordHash::new(&stored).unwrap();
            assert!(pool.verify(PASSWORD, &parsed).unwrap(), "{what}");
            assert!(
                !pool.verify(b"a wrong password", &parsed).unwrap(),
                "{what}"
            );
        }
        // The big one did not join the pool.
        assert_eq!(pool.made(), 1);
        let only = pool.take();
        assert_eq!(only.len(), Params::DEFAULT.block_count());
    }

    #[test]
    fn hashes_it_cannot_check_are_errors_not_wrong_passwords() {
        let pool = ArgonPool::new(1);
        for stored in [
            // No output.
            "$argon2id$v=19$m=8,t=1,p=1$c2l4dGVlbiBieXRlIHNhbA",
            // Not Argon2.
            "$pbkdf2-sha256$i=1000$c2l4dGVlbiBieXRlIHNhbA$qQ6nD4Z3R6m0LkY9vq0b1w",
            // A parameter Argon2 does not know.
            "$argon2id$v=19$m=8,t=1,p=1,x=2$c2l4dGVlbiBieXRlIHNhbA$qQ6nD4Z3R6m0LkY9vq0b1w",
            // A version Argon2 does not know.
            "$argon2id$v=18$m=8,t=1,p=1$c2l4dGVlbiBieXRlIHNhbA$qQ6nD4Z3R6m0LkY9vq0b1w",
        ] {
            let parsed = PasswordHash::new(stored).unwrap();
            assert!(pool.verify(PASSWORD, &parsed).is_err(), "{stored}");
        }
    }

    #[test]
    fn concurrent_checks_share_the_buffers() {
        let pool = Arc::new(ArgonPool::new(2));
        let cheap = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        );
        let stored = cheap.hash_password(PASSWORD, &salt()).unwrap().to_string();
        let threads = 8;
        let start = Arc::new(Barrier::new(threads));
        let checks: Vec<_> = (0..threads)
            .map(|thread| {
                let (pool, start, stored) = (Arc::clone(&pool), Arc::clone(&start), stored.clone());
                std::thread::spawn(move || {
                    let parsed = PasswordHash::new(&stored).unwrap();
                    start.wait();
                    (0..4).all(|round| {
                        let password: &[u8] = if (thread + round) % 2 == 0 {
                            PASSWORD
                        } else {
                            b"a wrong password"
                        };
                        pool.verify(password, &parsed).unwrap() == (password == PASSWORD)
                    })
                })
            })
            .collect();
        for check in checks {
            assert!(check.join().unwrap(), "a check answered wrong");
        }
        // 32 checks, eight at a time, in two buffers.
        assert!(pool.made() <= 2, "{} buffers", pool.made());
    }

    #[test]
    fn a_buffer_is_reused_and_wiped() {
        let pool = ArgonPool::new(1);
        let address = {
            let buffer = pool.take();
            let address = buffer.as_ptr();
            pool.lock().idle.push(buffer);
            address
        };
        let stored = Argon2::default()
            .hash_password(PASSWORD, &salt())
            .unwrap()
            .to_string();
        assert!(
            pool.verify(PASSWORD, &PasswordHash::new(&stored).unwrap())
                .unwrap()
        );
        let buffer = pool.take();
        assert_eq!(buffer.as_ptr(), address, "the check used another buffer");
        let zero = Block::new();
        assert!(
            buffer.iter().all(|block| block.as_ref() == zero.as_ref()),
            "the check left its memory behind"
        );
    }
}
