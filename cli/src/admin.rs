//! A running server's inbox, through its admin service (`authgear_webhook::admin`, the
//! example's `ADMIN_ADDR`): `inbox --admin URL counts|dead|redrive` ask it over HTTP what
//! they would ask a store.

use std::time::Duration;

use authgear_webhook::inbox::EventKey;
use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::Value;

use crate::Failure;

/// How long one request may take: the service bounds its own checks and pages.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The most of an answer read: a page of 1,000 dead letters with long errors fits.
const ANSWER_LIMIT: usize = 8 << 20;

/// A dead letter as the service lists it, and as the tool prints it.
#[derive(Debug)]
pub(crate) struct Dead {
    pub(crate) key: EventKey,
    pub(crate) event_type: String,
    pub(crate) attempts: u64,
    /// RFC 3339, as the service wrote it.
    pub(crate) died_at: String,
    pub(crate) last_error: Option<String>,
}

/// The admin service at a base URL.
pub(crate) struct Admin {
    base: String,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl Admin {
    /// The service at `url` (`http://127.0.0.1:9998`, or under a prefix:
    /// `http://host/admin`).
    ///
    /// A URL with a user or password (`http://user:pass@host`) is refused, never repeated:
    /// the tool sends no credential, and the URL is printed in its errors.
    pub(crate) fn new(url: &str) -> Result<Self, Failure> {
        if has_userinfo(url) {
            return Err(Failure::Input(
                "--admin: the URL has a user or password (before an @): the admin service \
                 takes none; give it without them"
                    .to_owned(),
            ));
        }
        let base = url.trim_end_matches('/').to_owned();
        let uri: Uri = base
            .parse()
            .map_err(|_| Failure::Input(format!("--admin: {url} is not a URL")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(Failure::Input(format!(
                "--admin: {url} is not an http:// or https:// URL"
            )));
        }
        let client = Client::builder(TokioExecutor::new()).build(
            HttpsConnectorBuilder::new()
                .with_tls_config(crate::send::tls_config(&[])?)
                .https_or_http()
                .enable_all_versions()
                .build(),
        );
        Ok(Self { base, client })
    }

    /// `(queued, in_flight, dead, done, bytes)`.
    pub(crate) async fn counts(&self) -> Result<[u64; 5], Failure> {
        let counts = self.ok(Method::GET, "/inbox/counts").await?;
        let number = |name: &str| {
            counts[name]
                .as_u64()
                .ok_or_else(|| self.unexpected(&format!("no {name} in the counts")))
        };
        Ok([
            number("queued")?,
            number("in_flight")?,
            number("dead")?,
            number("done")?,
            number("bytes")?,
        ])
    }

    /// Up to `limit` dead letters after `after`.
    pub(crate) async fn dead(
        &self,
        after: Option<&EventKey>,
        limit: usize,
    ) -> Result<Vec<Dead>, Failure> {
        let mut path = format!("/inbox/dead?limit={limit}");
        if let Some(after) = after {
            path.push_str(&format!("&after={}", cursor(after)));
        }
        let page = self.ok(Method::GET, &path).await?;
        let dead = page["dead"]
            .as_array()
            .ok_or_else(|| self.unexpected("no dead letters in the answer"))?;
        dead.iter()
            .map(|dead| {
                let text = |name: &str| dead[name].as_str().map(str::to_owned);
                Some(Dead {
                    key: EventKey::new(text("endpoint")?, text("id")?),
                    event_type: text("type")?,
                    attempts: dead["attempts"].as_u64()?,
                    died_at: text("died_at")?,
                    last_error: text("last_error"),
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| self.unexpected("a dead letter without its fields"))
    }

    /// Re-drives the dead letter `id` (of `endpoint`, or of the one endpoint it is dead
    /// on): its key.
    pub(crate) async fn redrive(
        &self,
        id: &str,
        endpoint: Option<&str>,
    ) -> Result<EventKey, Failure> {
        let mut path = format!("/inbox/dead/{}/redrive", encode(id));
        if let Some(endpoint) = endpoint {
            path.push_str(&format!("?endpoint={}", encode(endpoint)));
        }
        let (status, answer) = self.request(Method::POST, &path).await?;
        match (status, endpoint) {
            (StatusCode::OK, _) => {}
            (StatusCode::NOT_FOUND, Some(endpoint)) => {
                return Err(Failure::Failed(format!(
                    "no dead letter {id} on endpoint {endpoint}"
                )));
            }
            (StatusCode::NOT_FOUND, None) => {
                return Err(Failure::Failed(format!("no dead letter with id {id}")));
            }
            (StatusCode::CONFLICT, _) => {
                let endpoints: Vec<&str> = answer["endpoints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                return Err(Failure::Input(format!(
                    "id {id} is dead on several endpoints ({}): give --endpoint",
                    endpoints.join(", ")
                )));
            }
            (status, _) => return Err(self.failed(status, &answer)),
        }
        Ok(keys(&answer)
            .into_iter()
            .next()
            .unwrap_or_else(|| EventKey::new(endpoint.unwrap_or_default(), id)))
    }

    /// Re-drives every dead letter (of `endpoint`, if given), a thousand looked at per
    /// request, once through: each request starts after the last one's `next`, and the
    /// last has none. `each` is called with each key re-driven.
    pub(crate) async fn redrive_all(
        &self,
        endpoint: Option<&str>,
        mut each: impl FnMut(&EventKey) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        let mut path = "/inbox/dead/redrive".to_owned();
        if let Some(endpoint) = endpoint {
            path.push_str(&format!("?endpoint={}", encode(endpoint)));
        }
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(after) if endpoint.is_some() => format!("{path}&after={}", encode(after)),
                Some(after) => format!("{path}?after={}", encode(after)),
                None => path.clone(),
            };
            let answer = self.ok(Method::POST, &path).await?;
            for key in keys(&answer) {
                each(&key)?;
            }
            match &answer["next"] {
                Value::Null => return Ok(()),
                // A service that does not move on would be asked forever.
                Value::String(next) if after.as_ref() != Some(next) => {
                    after = Some(next.clone());
                }
                _ => return Err(self.unexpected("a re-drive's next is not a new cursor")),
            }
        }
    }

    /// The JSON of a 200 answer to `method` `path`.
    async fn ok(&self, method: Method, path: &str) -> Result<Value, Failure> {
        match self.request(method, path).await? {
            (StatusCode::OK, answer) => Ok(answer),
            (status, answer) => Err(self.failed(status, &answer)),
        }
    }

    /// The status and JSON of the answer to `method` `path`.
    async fn request(&self, method: Method, path: &str) -> Result<(StatusCode, Value), Failure> {
        let url = format!("{}{path}", self.base);
        let request = Request::builder()
            .method(method)
            .uri(&url)
            .body(Empty::new())
            .map_err(|error| Failure::Input(format!("--admin: {error}")))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|error| {
                Failure::Input(format!(
                    "--admin: no answer from {}: {}",
                    self.base,
                    crate::chain(&error)
                ))
            })?;
            let status = response.status();
            let body = Limited::new(response.into_body(), ANSWER_LIMIT)
                .collect()
                .await
                .map_err(|_| self.unexpected("the answer was cut off or too long"))?
                .to_bytes();
            let answer = serde_json::from_slice(&body)
                .map_err(|_| self.unexpected(&format!("status {status}, not JSON")))?;
            Ok((status, answer))
        };
        tokio::time::timeout(TIMEOUT, exchange).await.map_err(|_| {
            Failure::Input(format!(
                "--admin: no answer from {} within {} s",
                self.base,
                TIMEOUT.as_secs()
            ))
        })?
    }

    /// A status the tool did not ask for: the store cannot answer (503), or the URL is
    /// not an admin service.
    fn failed(&self, status: StatusCode, answer: &Value) -> Failure {
        let error = answer["error"].as_str().unwrap_or("no error given");
        match status {
            StatusCode::SERVICE_UNAVAILABLE => Failure::Input(format!("inbox: {error}")),
            status => Failure::Input(format!("--admin: {}: {status}: {error}", self.base)),
        }
    }

    fn unexpected(&self, what: &str) -> Failure {
        Failure::Input(format!(
            "--admin: {} is not an inbox admin service ({what})",
            self.base
        ))
    }
}

/// Whether `url` has a user or password: an `@` in its authority (after `scheme://`, up
/// to the first `/`, `?` or `#`), or anywhere when there is no scheme to tell where that is.
fn has_userinfo(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return url.contains('@');
    };
    rest.split(['/', '?', '#'])
        .next()
        .is_some_and(|authority| authority.contains('@'))
}

/// The keys of a re-drive's answer.
fn keys(answer: &Value) -> Vec<EventKey> {
    answer["redriven"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|key| {
            Some(EventKey::new(
                key["endpoint"].as_str()?,
                key["id"].as_str()?,
            ))
        })
        .collect()
}

/// The service's page cursor of `key`: its endpoint and id, each hex-encoded, joined by a
/// dot (`authgear_webhook::admin`'s docs).
fn cursor(key: &EventKey) -> String {
    let hex = |text: &str| {
        text.bytes()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    };
    format!("{}.{}", hex(&key.endpoint), hex(&key.id))
}

/// `text` percent-encoded for a path segment or a query value: every byte but the
/// unreserved ones.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            byte => format!("%{byte:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(encode("/hooks a+b"), "%2Fhooks%20a%2Bb");
        assert_eq!(encode("0001-x_y.z~"), "0001-x_y.z~");
        assert_eq!(cursor(&EventKey::new("/", "01")), "2f.3031");
        for url in [
            "http://user:pass@127.0.0.1:9998",
            "https://user@host/admin",
            "http://:pass@host",
            "user:pass@host",
        ] {
            assert!(has_userinfo(url), "{url}");
        }
        for url in [
            "http://127.0.0.1:9998",
            "http://host/admin?x=a@b",
            "http://host/a@b",
        ] {
            assert!(!has_userinfo(url), "{url}");
        }
    }
}
