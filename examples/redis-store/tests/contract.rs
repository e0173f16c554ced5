//! `RedisStore` against tokengate's store contract, one test per clause, each in a fresh
//! namespace on the server named in `TOKENGATE_TEST_REDIS_URL`. Without that variable each
//! test says on stderr that it was skipped, and passes; with it, a server that cannot be
//! reached fails them.

mod support;

// The macro evaluates this inside each test's `async` block, so `return` ends that test
// early, after `support::url` has said it was skipped.
tokengate::store_contract_tests!(match support::url() {
    Some(url) => support::fresh(&url).await,
    None => return,
});
