//! The store contract, held by `MemoryStore`.

mod support;

tokengate::store_contract_tests!(tokengate::store::MemoryStore::new());
