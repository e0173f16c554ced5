//! Wrong one-time passwords, counted per account and per sender, so that six digits cannot
//! be guessed by brute force and guessers cannot lock the owner out.

use std::net::IpAddr;
use std::time::Duration;

use tokengate::{ClientBucket, TokenId};

/// Wrong one-time passwords one sender (a token, or an address) may send for an account
/// in a window; past it that sender's codes are refused until the window ends, the right
/// one too: six digits are few enough to guess by brute force otherwise.
const WRONG_CODES_PER_SENDER: u32 = 10;
/// Wrong one-time passwords an account may be sent in a window from everywhere. Past it,
/// a sender that has sent a wrong code itself is refused, while one that has not (the
/// owner, elsewhere) still gets its code checked: guessers cannot lock the owner out.
const WRONG_CODES_PER_ACCOUNT: u32 = 10;
/// How long wrong codes are remembered: as long as wrong passwords.
const WRONG_CODES_WINDOW: Duration = crate::security::passwords::WINDOW;

/// Who sent a one-time password: the token it came with, and the client's address. Each
/// is counted on its own.
#[derive(Clone, Copy, Debug)]
pub struct Sender {
    token: Option<TokenId>,
    address: Option<ClientBucket>,
}

impl Sender {
    /// A code sent with `token` (none for a login) from `address`.
    pub fn new(token: Option<TokenId>, address: Option<IpAddr>) -> Self {
        Self {
            token,
            address: address.map(ClientBucket::from),
        }
    }

    fn keys(&self, user: &str) -> impl Iterator<Item = SenderKey> + use<> {
        let user = user.to_owned();
        let token = self.token.map(|id| SenderKey::Token(user.clone(), id));
        let address = self.address.map(|ip| SenderKey::Address(user, ip));
        token.into_iter().chain(address)
    }
}

#[derive(Clone, Hash, PartialEq, Eq)]
enum SenderKey {
    Token(String, TokenId),
    Address(String, ClientBucket),
}

/// Wrong one-time passwords (and recovery codes) per account and per sender, forgotten
/// after [`WRONG_CODES_WINDOW`], for at most 100,000 keys each.
pub struct WrongCodes {
    by_account: moka::sync::Cache<String, u32>,
    by_sender: moka::sync::Cache<SenderKey, u32>,
}

impl Default for WrongCodes {
    fn default() -> Self {
        Self {
            by_account: crate::security::passwords::windowed(WRONG_CODES_WINDOW),
            by_sender: crate::security::passwords::windowed(WRONG_CODES_WINDOW),
        }
    }
}

impl WrongCodes {
    pub fn exhausted(&self, user: &str, sender: &Sender) -> bool {
        let own = sender
            .keys(user)
            .map(|key| self.by_sender.get(&key).unwrap_or(0))
            .max()
            .unwrap_or(0);
        let account = self.by_account.get(user).unwrap_or(0);
        own >= WRONG_CODES_PER_SENDER || (account >= WRONG_CODES_PER_ACCOUNT && own > 0)
    }

    /// Counts a wrong code. Codes are checked under the registry's write lock, so counts
    /// never race.
    pub fn count(&self, user: &str, sender: &Sender) {
        let wrong = self.by_account.get(user).unwrap_or(0);
        self.by_account
            .insert(user.to_owned(), wrong.saturating_add(1));
        for key in sender.keys(user) {
            let wrong = self.by_sender.get(&key).unwrap_or(0);
            self.by_sender.insert(key, wrong.saturating_add(1));
        }
    }
}
