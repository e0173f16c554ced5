//! A data folder written by the release before the metadata database (JSON files, see
//! `tests/fixtures/README.md`) opens with today's registry, and everything in it is served:
//! users log in with their passwords and second factors, packages install, private ones
//! stay private, tokens keep working, stars and 2FA rules hold.

mod support;

use std::path::Path;

use support::client::Client;
use support::registry::{PASSWORD, Registry};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/data-0.1");
const CAROL_SECRET: &str = "JKCAKGA3LTIIB3WYFTXLYMNHVK5VUPUV";
/// Bob's read-only token in the fixture, less its `npm_` prefix (see the fixture's README).
const BOB_TOKEN_AFTER_PREFIX: &str = "RMKqh6mxcW39cIl1cpw4sGHaCALEv7zkA0FCqgw";
const IMPORTED: &str = "imported the JSON files of an earlier release";

fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_folder(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn a_data_folder_from_before_the_database_is_served_whole() {
    let data = tempfile::tempdir().unwrap();
    copy_folder(Path::new(FIXTURE), data.path());
    let client = Client {
        registry: Registry::start("127.0.0.1:0", data.path()).await,
    };
    // The log is read as it comes: the import's line was written before the address.
    for _ in 0..100 {
        if client.registry.logged(IMPORTED) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        client.registry.logged(IMPORTED),
        1,
        "the JSON files are imported once"
    );
    what_the_fixture_holds_is_served(&client).await;
    second_factors_carry_over(&client).await;

    // Started again, it reads the database, not the JSON files.
    client.registry.stop().await;
    let client = Client {
        registry: Registry::start("127.0.0.1:0", data.path()).await,
    };
    assert_eq!(client.registry.logged(IMPORTED), 0);
    what_the_fixture_holds_is_served(&client).await;
}

async fn what_the_fixture_holds_is_served(client: &Client) {
    let bob = format!("npm_{BOB_TOKEN_AFTER_PREFIX}");

    let public = client.send("GET", "/left-pad-lite", None, "").await;
    assert_eq!(public.status, 200, "{}", public.body);
    let packument = public.json();
    assert_eq!(packument["dist-tags"]["latest"], "1.1.0");
    assert_eq!(packument["dist-tags"]["beta"], "2.0.0-beta.1");
    assert_eq!(packument["versions"].as_object().unwrap().len(), 3);
    assert_eq!(packument["users"]["bob"], true);
    assert!(
        packument["readme"]
            .as_str()
            .unwrap()
            .contains("left-pad-lite")
    );

    // Each tarball is the very bytes published, with what npm checks them against.
    for version in ["1.0.0", "1.1.0", "2.0.0-beta.1"] {
        let file = format!("left-pad-lite-{version}.tgz");
        let tarball = client
            .send("GET", &format!("/left-pad-lite/-/{file}"), None, "")
            .await;
        assert_eq!(tarball.status, 200, "{file}");
        let published = std::fs::read(
            Path::new(FIXTURE)
                .join("packages/left-pad-lite")
                .join(&file),
        )
        .unwrap();
        assert_eq!(tarball.bytes, published, "{file}");
        assert_eq!(
            tarball.header("content-length"),
            Some(published.len().to_string().as_str())
        );
        let integrity = packument["versions"][version]["dist"]["integrity"]
            .as_str()
            .unwrap();
        assert!(integrity.starts_with("sha512-"), "{integrity}");
    }

    // The private package answers its maintainers only, through their old tokens too.
    let hidden = client.send("GET", "/@alice%2fsecret", None, "").await;
    assert_eq!(hidden.status, 404);
    let shown = client.send("GET", "/@alice%2fsecret", Some(&bob), "").await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    let shown = shown.json();
    let maintainers: Vec<&str> = shown["maintainers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(maintainers, ["alice", "bob"]);
    let tarball = client
        .send("GET", "/@alice/secret/-/secret-1.0.0.tgz", Some(&bob), "")
        .await;
    assert_eq!(tarball.status, 200);
    let anonymous = client
        .send("GET", "/@alice/secret/-/secret-1.0.0.tgz", None, "")
        .await;
    assert_eq!(anonymous.status, 404);

    // Passwords and second factors carry over.
    assert_eq!(client.login("alice", PASSWORD).await.status, 201);
    assert_eq!(client.login("alice", "wrong password!").await.status, 401);
    // Search and stars come from the index.
    let found = client.send("GET", "/-/v1/search?text=pad", None, "").await;
    assert_eq!(
        found.json()["objects"][0]["package"]["name"],
        "left-pad-lite"
    );
    let secret_search = client
        .send("GET", "/-/v1/search?text=secret", None, "")
        .await;
    assert_eq!(secret_search.json()["total"], 0);
    let stars = client
        .send("GET", "/-/_view/starredByUser?key=%22bob%22", None, "")
        .await;
    assert_eq!(stars.json()["rows"][0]["value"], "left-pad-lite");
}

/// Carol's second factor carries over, and so does carols-tool's rule. Once per test: a
/// code is good once.
async fn second_factors_carry_over(client: &Client) {
    let without_code = client.login("carol", PASSWORD).await;
    assert_eq!(without_code.status, 401, "{}", without_code.body);
    let secret =
        support::totp_from_url(&format!("otpauth://totp/x?secret={CAROL_SECRET}&issuer=x"));
    let code = support::fresh_code(&secret, &mut None).await;
    let body = serde_json::json!({ "name": "carol", "password": PASSWORD }).to_string();
    let carol = client
        .send_otp(
            "PUT",
            "/-/user/org.couchdb.user:carol",
            None,
            Some(&code),
            &body,
        )
        .await;
    assert_eq!(carol.status, 201, "{}", carol.body);

    // carols-tool's rule still asks for a code on every publish.
    let session = carol.json()["token"].as_str().unwrap().to_owned();
    let publish = support::client::publish_body("carols-tool", "0.2.0", serde_json::Value::Null);
    let refused = client
        .send("PUT", "/carols-tool", Some(&session), &publish)
        .await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(
        refused.body.contains("one-time password"),
        "{}",
        refused.body
    );
}
