//! Two registry processes on one PostgreSQL database and one shared data folder behave as
//! one registry: a publish on one installs from the other at once, a token revoked on one
//! is refused by the other on its very next request, a password changed on one ends
//! the sessions of both, and a team's access changed on one is what the other allows.
//!
//! Needs a PostgreSQL server: the URL comes from `TOKENGATE_TEST_POSTGRES_URL` (as for the
//! library's PostgreSQL tests); each run makes a database of its own there and drops it.
//! Without the variable it says it skipped; with it and no server, it fails. Built with the
//! registry's `postgres` feature only (`cargo test --all-features`); without it, a stand-in
//! says so.

mod support;

#[cfg(feature = "postgres")]
#[path = "nodes/on_server.rs"]
mod on_server;

/// Says why this binary runs nothing without the feature, rather than passing silently.
#[cfg(not(feature = "postgres"))]
#[test]
fn two_nodes_need_the_postgres_feature() {
    support::skipped(
        "nodes: two registry processes on one database need `--features postgres` and a \
         server in TOKENGATE_TEST_POSTGRES_URL (see the README's Contributing section)",
    );
}
