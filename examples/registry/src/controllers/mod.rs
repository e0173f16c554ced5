//! The registry's npm API, one module per resource.

pub mod orgs;
pub mod packages;
pub mod profile;
pub mod search;
pub mod stars;
pub mod tokens;
pub mod trust;
pub mod users;
