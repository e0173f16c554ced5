//! A small axum API behind tokengate: a public read route, a protected read route and a
//! write route. Tokens are created at start-up and printed with curl lines to paste.
//!
//! Run with `cargo run --example axum --features axum`, then paste the printed lines.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use tokengate::store::MemoryStore;
use tokengate::{Authenticated, NewToken, TokenAuthLayer, Tokens};

async fn public(who: Option<Authenticated>) -> String {
    match who {
        Some(who) => format!("hello, {} (you did not need a token here)\n", who.owner()),
        None => "hello, stranger\n".to_owned(),
    }
}

async fn read_notes(who: Authenticated) -> String {
    format!("notes of {}: none yet\n", who.owner())
}

async fn write_note(who: Authenticated, note: String) -> String {
    format!("saved a {}-byte note for {}\n", note.len(), who.owner())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen: SocketAddr = std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("127.0.0.1:3000")
        .parse()?;
    let tokens = Tokens::builder(MemoryStore::new()).prefix("demo")?.build();
    let full = tokens
        .create("alice", NewToken::read_write().name("full"))
        .await?;
    let read_only = tokens
        .create("alice", NewToken::read_only().name("read-only"))
        .await?;
    let remote_only = tokens
        .create(
            "bob",
            NewToken::read_write().allow_cidrs(["203.0.113.0/24"]),
        )
        .await?;

    let protected = Router::new()
        .route("/notes", get(read_notes).post(write_note))
        // `route_layer`: a path that is no route stays a 404, not a demand for a token.
        .route_layer(TokenAuthLayer::new(tokens.clone()).realm("notes"));
    let app = Router::new()
        .route("/", get(public))
        .layer(TokenAuthLayer::new(tokens.clone()).optional())
        .merge(protected);

    let listener = tokio::net::TcpListener::bind(listen).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("listening on {base}\n");
    println!("# anyone may read the front page:");
    println!("curl -i {base}/");
    println!("\n# a full-permission token reads and writes:");
    let full = full.token.expose_secret();
    println!("curl -i -H 'Authorization: Bearer {full}' {base}/notes");
    println!("curl -i -H 'Authorization: Bearer {full}' -d 'remember the milk' {base}/notes");
    println!("\n# a read-only token reads, and its write is refused with 403:");
    let read_only = read_only.token.expose_secret();
    println!("curl -i -H 'Authorization: Bearer {read_only}' {base}/notes");
    println!("curl -i -H 'Authorization: Bearer {read_only}' -d 'x' {base}/notes");
    println!("\n# a token bound to 203.0.113.0/24 is refused from here with 403:");
    let remote_only = remote_only.token.expose_secret();
    println!("curl -i -H 'Authorization: Bearer {remote_only}' {base}/notes");
    println!("\n# no token, or a mistyped one: 401");
    println!("curl -i {base}/notes");
    println!("curl -i -H 'Authorization: Bearer demo_oops' {base}/notes");

    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
