//! How issuers' documents are fetched: the [`HttpFetch`] trait and its default client.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::issuer::check_url;

/// Why an issuer's discovery document or key set could not be had. Any of these makes
/// the issuer unavailable for the request (answered 503), never an accept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The body was longer than allowed.
    #[error("the document is over {0} bytes")]
    TooLarge(usize),
    /// An answer other than 200.
    #[error("answered HTTP {0}")]
    Status(u16),
    /// The connection failed.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// A URL that may not be fetched (not https, or not a plain URL).
    #[error("refused to fetch {0}: not an https:// URL (or http:// on loopback)")]
    Url(String),
    /// The answer is not the document expected (not JSON, a missing field, the wrong
    /// issuer, no usable key).
    #[error("invalid document: {0}")]
    Document(String),
}

/// Fetches a document by `GET`: implement it to use the application's own HTTP client.
///
/// The verifier calls it for `<issuer>/.well-known/openid-configuration` and then the
/// `jwks_uri` found there, under its own timeout, and checks that URLs are `https://`
/// (or `http://` on loopback) before asking.
pub trait HttpFetch: Send + Sync + 'static {
    /// The body of `url` when it answers 200, refusing bodies over `limit` bytes
    /// ([`FetchError::TooLarge`]) without reading them whole.
    fn get(
        &self,
        url: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Bytes, FetchError>> + Send;
}

/// The default [`HttpFetch`]: hyper's HTTP/1 client, rustls (ring) with the operating
/// system's root certificates (so a self-hosted issuer's private CA works once the system
/// trusts it), a connect timeout, no redirects followed.
#[derive(Clone)]
pub struct HyperFetch {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl HyperFetch {
    /// How long connecting may take.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

    /// A client trusting the system's root certificates; fails when none can be loaded.
    pub fn new() -> std::io::Result<Self> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Self::CONNECT_TIMEOUT));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(Self { client })
    }
}

impl std::fmt::Debug for HyperFetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HyperFetch").finish_non_exhaustive()
    }
}

impl HttpFetch for HyperFetch {
    async fn get(&self, url: &str, limit: usize) -> Result<Bytes, FetchError> {
        check_url(url).map_err(|_| FetchError::Url(url.to_owned()))?;
        let uri: http::Uri = url.parse().map_err(|_| FetchError::Url(url.to_owned()))?;
        let request = http::Request::get(uri)
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("tokengate/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::new())
            .map_err(|_| FetchError::Url(url.to_owned()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| FetchError::Connect(e.to_string()))?;
        if response.status() != http::StatusCode::OK {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        if let Some(len) = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            && len > limit as u64
        {
            return Err(FetchError::TooLarge(limit));
        }
        let body = Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    FetchError::TooLarge(limit)
                } else {
                    FetchError::Connect(e.to_string())
                }
            })?;
        Ok(body.to_bytes())
    }
}
