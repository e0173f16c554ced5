//! The store contract, held by `MemoryStore`.

mod support;

tokengate::store_contract_tests!(tokengate::store::MemoryStore::new());

/// The same contract through `DynStore`, which must hand every method on.
mod through_dyn_store {
    tokengate::store_contract_tests!(tokengate::store::DynStore::new(
        tokengate::store::MemoryStore::new()
    ));
}
