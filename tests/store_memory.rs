//! The store contract, held by `MemoryStore`.

mod support;

store_contract!(async { tokengate::MemoryStore::new() }.await);
