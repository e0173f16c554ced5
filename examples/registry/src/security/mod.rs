//! What stands between the registry and guessers, floods and readers of its disk.

pub mod passwords;
pub mod sealer;
pub mod search_turns;
pub mod wrong_codes;
