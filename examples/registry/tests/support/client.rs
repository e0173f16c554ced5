//! A client of the registry's HTTP API as the API tests use it: requests with JSON bodies,
//! logins, sessions and tokens.

use super::registry::{PASSWORD, Registry, Reply, http_from};

/// The address tests send from unless they say otherwise.
pub const LOCAL: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// Sends requests to one registry.
pub struct Client {
    pub registry: Registry,
}

impl Client {
    pub async fn send(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> Reply {
        self.send_otp(method, path, token, None, body).await
    }

    /// [`Client::send`] with a one-time password in npm's `npm-otp` header.
    pub async fn send_otp(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        otp: Option<&str>,
        body: &str,
    ) -> Reply {
        self.send_from(LOCAL, method, path, token, otp, body).await
    }

    /// [`Client::send_otp`] from the client address `from` (127.0.0.2, 127.0.0.3, …).
    pub async fn send_from(
        &self,
        from: std::net::IpAddr,
        method: &str,
        path: &str,
        token: Option<&str>,
        otp: Option<&str>,
        body: &str,
    ) -> Reply {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth));
        }
        if let Some(otp) = otp {
            headers.push(("npm-otp", otp));
        }
        http_from(
            from,
            self.registry.addr,
            method,
            path,
            &headers,
            body.as_bytes(),
        )
        .await
    }

    pub async fn login(&self, user: &str, password: &str) -> Reply {
        self.login_from(LOCAL, user, password).await
    }

    /// `npm login` from the client address `from`.
    pub async fn login_from(&self, from: std::net::IpAddr, user: &str, password: &str) -> Reply {
        let body = serde_json::json!({ "name": user, "password": password }).to_string();
        let path = format!("/-/user/org.couchdb.user:{user}");
        self.send_from(from, "PUT", &path, None, None, &body).await
    }

    pub async fn session(&self, user: &str) -> String {
        let reply = self.login(user, PASSWORD).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.json()["token"].as_str().unwrap().to_owned()
    }

    /// A new token of `session`'s user, made with `body` (which must succeed).
    pub async fn token(&self, session: &str, body: serde_json::Value) -> String {
        let reply = self.create(session, body).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.json()["token"].as_str().unwrap().to_owned()
    }

    /// `npm owner add|rm` as npm sends it: the package's current revision, read with
    /// `token`, then the whole new list.
    pub async fn set_owners(&self, token: &str, package: &str, names: &[&str]) -> Reply {
        let escaped = package.replace('@', "%40").replace('/', "%2F");
        let read = self
            .send("GET", &format!("/{escaped}"), Some(token), "")
            .await;
        assert_eq!(read.status, 200, "{}", read.body);
        let rev = read.json()["_rev"].as_str().unwrap().to_owned();
        self.put_owners(token, package, &rev, names).await
    }

    /// The owners' list `names` written as of revision `rev`.
    pub async fn put_owners(&self, token: &str, package: &str, rev: &str, names: &[&str]) -> Reply {
        let escaped = package.replace('@', "%40").replace('/', "%2F");
        let maintainers: Vec<_> = names
            .iter()
            .map(|n| serde_json::json!({ "name": n }))
            .collect();
        let body = serde_json::json!({ "_id": package, "_rev": rev, "maintainers": maintainers });
        let path = format!("/{escaped}/-rev/{rev}");
        self.send("PUT", &path, Some(token), &body.to_string())
            .await
    }

    pub async fn create(&self, session: &str, body: serde_json::Value) -> Reply {
        self.send("POST", "/-/npm/v1/tokens", Some(session), &body.to_string())
            .await
    }
}

/// A registry on a fresh data folder, and a client for it.
pub async fn start() -> (Client, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let registry = Registry::start("127.0.0.1:0", data.path()).await;
    (Client { registry }, data)
}

/// A one-version publish body for `name`, with `access` as npm sends it.
pub fn publish_body(name: &str, version: &str, access: serde_json::Value) -> String {
    let base = name.rsplit('/').next().unwrap();
    serde_json::json!({
        "_id": name,
        "name": name,
        "access": access,
        "versions": { version: { "name": name, "version": version } },
        "dist-tags": { "latest": version },
        "_attachments": {
            format!("{base}-{version}.tgz"): { "data": "aGVsbG8=", "length": 5 }
        }
    })
    .to_string()
}
