//! Shared by the registry's tests.
#![allow(dead_code)]

pub mod registry;
