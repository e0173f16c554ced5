//! The registry's npm API, one module per resource.

pub mod orgs;
pub mod packages;
pub mod profile;
pub mod search;
pub mod stage;
pub mod stars;
pub mod tokens;
pub mod trust;
pub mod users;

/// A new id: a random UUID (version 4), as npm's trusted publishers and stages have.
pub fn new_uuid() -> Result<String, crate::error::ApiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| crate::error::ApiError::internal("cannot make an id", e))?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}
