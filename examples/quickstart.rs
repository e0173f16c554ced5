//! A tour of the token manager on the in-memory store: create three kinds of token, list
//! them, check each against reads and writes from two addresses, revoke one.
//!
//! Run with `cargo run --example quickstart`.

use std::net::IpAddr;

use tokengate::store::{MemoryStore, Page};
use tokengate::{Action, NewToken, Tokens};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tokens = Tokens::builder(MemoryStore::new()).prefix("npm")?.build();

    let full = tokens
        .create("alice", NewToken::read_write().name("laptop"))
        .await?;
    let read_only = tokens
        .create("alice", NewToken::read_only().name("CI mirror"))
        .await?;
    let office = tokens
        .create(
            "alice",
            NewToken::read_write()
                .name("office")
                .allow_cidrs(["10.0.0.0/8", "2001:db8::/32"]),
        )
        .await?;

    println!("Created three tokens for alice (each shown once, in full):");
    for (label, created) in [
        ("full", &full),
        ("read-only", &read_only),
        ("office", &office),
    ] {
        println!("  {label:<10} {}", created.token.expose_secret());
    }

    println!("\nWhat `npm token list` would show (no secrets):");
    let listing = tokens.list("alice", Page::default()).await?;
    for token in &listing.tokens {
        let cidr = if token.cidr.is_empty() {
            "any address".to_owned()
        } else {
            token.cidr.to_string()
        };
        println!(
            "  key {}  token {}…  {:<10} {:<10} from {}",
            token.id,
            token.token_prefix,
            token.name.as_deref().unwrap_or("-"),
            token.grants.broadest().as_str(),
            cidr
        );
    }
    println!("  ({} tokens in all)", listing.total);

    let clients: [IpAddr; 2] = ["10.1.2.3".parse()?, "203.0.113.9".parse()?];
    println!("\nChecks:");
    for (label, created) in [
        ("full", &full),
        ("read-only", &read_only),
        ("office", &office),
    ] {
        for client in clients {
            for (label_of_action, action) in [("read", Action::Read), ("write", Action::Write)] {
                let verdict = match tokens
                    .authenticate(created.token.expose_secret(), Some(client), action)
                    .await
                {
                    Ok(who) => format!("allowed for {}", who.owner()),
                    Err(refused) => format!("refused: {refused}"),
                };
                println!("  {label:<10} {label_of_action:<5} from {client:<12} → {verdict}");
            }
        }
    }

    println!(
        "\nRevoking the full-permission token by its id {}…",
        full.listing.id
    );
    tokens.revoke(full.listing.id.as_str()).await?;
    match tokens
        .authenticate(full.token.expose_secret(), Some(clients[0]), Action::Read)
        .await
    {
        Ok(_) => println!("  still accepted (this is a bug)"),
        Err(refused) => println!("  next request → refused: {refused}"),
    }
    Ok(())
}
