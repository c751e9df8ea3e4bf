//! Authgear's Admin API, as far as the catch-up reads it: one GraphQL query, `auditLogs`,
//! over HTTPS, with an RS256 token signed by the project's Admin API key.

use std::{
    fmt,
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{CatchUpError, CatchUpErrorKind};

/// The most bytes of one answer read (a page is 100 events of a few KiB each).
const ANSWER_LIMIT: usize = 16 * 1024 * 1024;
/// The most events Authgear returns in one page (`first` is capped there).
pub(super) const PAGE_SIZE: usize = 100;
/// How long a token is valid: as Authgear's own (its checks allow 5 minutes of skew).
const TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// The one query: a page of the audit log in `[rangeFrom, rangeTo)`, oldest first, of the
/// given activity types, with the number of such entries for the window.
const QUERY: &str = "query AuthgearWebhookCatchUp($rangeFrom: DateTime!, $rangeTo: DateTime!, \
    $activityTypes: [AuditLogActivityType!], $first: Int!, $after: String) { \
    auditLogs(rangeFrom: $rangeFrom, rangeTo: $rangeTo, activityTypes: $activityTypes, \
    first: $first, after: $after, sortDirection: ASC) { \
    totalCount pageInfo { hasNextPage endCursor } edges { node { activityType data } } } }";

/// The project's Admin API key: the private key a project owner downloads from Authgear's
/// portal (PEM, PKCS#1 or PKCS#8), and its key ID. `Debug` never shows the key.
///
/// ```
/// use authgear_webhook::catch_up::AdminApiKey;
///
/// let error = AdminApiKey::from_pem(b"not a key", "key-id").unwrap_err();
/// assert_eq!(error.to_string(), "the Admin API key is not an RSA private key in PEM");
/// ```
#[derive(Clone)]
pub struct AdminApiKey {
    key: EncodingKey,
    id: String,
}

impl AdminApiKey {
    /// The key in `pem` (`-----BEGIN RSA PRIVATE KEY-----` or `-----BEGIN PRIVATE KEY-----`),
    /// with the ID the portal shows beside it.
    ///
    /// # Errors
    ///
    /// [`CatchUpErrorKind::Config`] when `pem` holds no RSA private key or `id` is empty.
    pub fn from_pem(pem: &[u8], id: impl Into<String>) -> Result<Self, CatchUpError> {
        let id = id.into();
        let key = EncodingKey::from_rsa_pem(pem).map_err(|_| {
            CatchUpError::new(
                CatchUpErrorKind::Config,
                "the Admin API key is not an RSA private key in PEM",
            )
        })?;
        if id.is_empty() {
            return Err(CatchUpError::new(
                CatchUpErrorKind::Config,
                "the Admin API key ID is empty",
            ));
        }
        Ok(Self { key, id })
    }

    /// The key in the PEM file at `path` (as the portal saves it, `<key id>.pem`).
    ///
    /// ```no_run
    /// use authgear_webhook::catch_up::AdminApiKey;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let key = AdminApiKey::from_pem_file("admin-api-key.pem", "d4c5...")?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`CatchUpErrorKind::Config`] when the file cannot be read or holds no RSA private key.
    pub fn from_pem_file(
        path: impl AsRef<Path>,
        id: impl Into<String>,
    ) -> Result<Self, CatchUpError> {
        let pem = std::fs::read(path).map_err(|_| {
            CatchUpError::new(
                CatchUpErrorKind::Config,
                "cannot read the Admin API key file",
            )
        })?;
        Self::from_pem(&pem, id)
    }
}

impl fmt::Debug for AdminApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminApiKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A client of one Authgear project's Admin API (`https://<project>/_api/admin/graphql`),
/// reading its audit log. Cheap to clone.
///
/// ```no_run
/// use authgear_webhook::catch_up::{AdminApi, AdminApiKey};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let key = AdminApiKey::from_pem_file("admin-api-key.pem", "d4c5...")?;
/// let api = AdminApi::new("https://myapp.authgear.cloud/_api/admin/graphql", "myapp", key)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct AdminApi {
    endpoint: Uri,
    app_id: String,
    key: AdminApiKey,
    timeout: Duration,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl fmt::Debug for AdminApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminApi")
            .field("endpoint", &self.endpoint)
            .field("app_id", &self.app_id)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// One entry of the audit log: a non-blocking event Authgear sent (or would have sent).
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    /// The event's `id`: the same as its webhook delivery's.
    pub id: String,
    /// The event's `type` (`user.created`, ...).
    pub event_type: String,
    /// `context.timestamp`: when Authgear made the event (whole seconds since the epoch).
    pub timestamp: i64,
    /// The event as the log holds it: the JSON object Authgear would have signed and sent,
    /// after a round trip through Go's maps (keys sorted, numbers as Go's float64 writes
    /// them). Not the bytes of a webhook delivery.
    pub data: Value,
}

/// A page of the audit log.
#[derive(Debug)]
pub(super) struct Page {
    /// The entries of the window, of the page's types, in all pages.
    pub(super) total: usize,
    pub(super) events: Vec<LoggedEvent>,
    /// The cursor of the next page, when there may be one.
    pub(super) next: Option<String>,
}

/// What a page asks for: `[from, to)` in whole seconds, of `types`, after `after`.
#[derive(Debug, Clone)]
pub(super) struct PageQuery<'a> {
    pub(super) from: i64,
    pub(super) to: i64,
    pub(super) types: &'a [String],
    pub(super) first: usize,
    pub(super) after: Option<String>,
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iat: u64,
    exp: u64,
}

impl AdminApi {
    /// A client of the Admin API at `endpoint` (the full GraphQL URL, e.g.
    /// `https://myapp.authgear.cloud/_api/admin/graphql`) of the project `app_id`, signing
    /// its tokens with `key`. Trusts the system's root certificates. Each request may take
    /// 30 s (see [`timeout`](Self::timeout)).
    ///
    /// # Errors
    ///
    /// [`CatchUpErrorKind::Config`] when `endpoint` is not an `http` or `https` URL or
    /// `app_id` is empty.
    pub fn new(
        endpoint: &str,
        app_id: impl Into<String>,
        key: AdminApiKey,
    ) -> Result<Self, CatchUpError> {
        let config = |message| CatchUpError::new(CatchUpErrorKind::Config, message);
        let endpoint: Uri = endpoint
            .parse()
            .map_err(|_| config("the Admin API endpoint is not a URL"))?;
        if !matches!(endpoint.scheme_str(), Some("http" | "https")) || endpoint.host().is_none() {
            return Err(config("the Admin API endpoint is not an http(s) URL"));
        }
        let app_id = app_id.into();
        if app_id.is_empty() {
            return Err(config("the Authgear app ID is empty"));
        }
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls_config()?)
            .https_or_http()
            .enable_all_versions()
            .build();
        Ok(Self {
            endpoint,
            app_id,
            key,
            timeout: Duration::from_secs(30),
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// How long one request may take, answer included (default 30 s).
    ///
    /// ```no_run
    /// # fn f(api: authgear_webhook::catch_up::AdminApi) {
    /// let api = api.timeout(std::time::Duration::from_secs(10));
    /// # }
    /// ```
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A token for one request: RS256 under the key, `kid` its ID, `aud` the app ID.
    fn token(&self) -> Result<String, CatchUpError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.key.id.clone());
        let claims = Claims {
            aud: &self.app_id,
            iat: now,
            exp: now + TOKEN_LIFETIME.as_secs(),
        };
        jsonwebtoken::encode(&header, &claims, &self.key.key).map_err(|_| {
            CatchUpError::new(
                CatchUpErrorKind::Config,
                "cannot sign an Admin API token with the key",
            )
        })
    }

    /// One page of the audit log.
    pub(super) async fn page(&self, query: &PageQuery<'_>) -> Result<Page, CatchUpError> {
        let activity_types: Vec<String> = query.types.iter().map(|t| activity_type(t)).collect();
        let body = json!({
            "query": QUERY,
            "variables": {
                "rangeFrom": crate::rfc3339::seconds(query.from),
                "rangeTo": crate::rfc3339::seconds(query.to),
                "activityTypes": activity_types,
                "first": query.first,
                "after": query.after,
            },
        });
        let body = serde_json::to_vec(&body).map_err(|_| invalid("cannot write the query"))?;
        let request = Request::post(self.endpoint.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token()?))
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| invalid("cannot build the request"))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|_| {
                CatchUpError::new(
                    CatchUpErrorKind::Unavailable,
                    "the Admin API is unreachable",
                )
            })?;
            let status = response.status();
            let answer = Limited::new(response.into_body(), ANSWER_LIMIT)
                .collect()
                .await
                .map_err(|_| {
                    CatchUpError::new(
                        CatchUpErrorKind::Unavailable,
                        "the Admin API's answer was cut off or too large",
                    )
                })?
                .to_bytes();
            Ok::<_, CatchUpError>((status, answer))
        };
        let (status, answer) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                CatchUpError::new(
                    CatchUpErrorKind::Unavailable,
                    "the Admin API did not answer in time",
                )
            })??;
        match status {
            StatusCode::OK => parse(&answer),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(CatchUpError::new(
                CatchUpErrorKind::Refused,
                "the Admin API refused the token: check the key, its ID and the app ID",
            )),
            StatusCode::TOO_MANY_REQUESTS => Err(CatchUpError::new(
                CatchUpErrorKind::Unavailable,
                "the Admin API asks to slow down (429)",
            )),
            status if status.is_server_error() => Err(CatchUpError::new(
                CatchUpErrorKind::Unavailable,
                "the Admin API failed (5xx)",
            )),
            _ => Err(invalid("the Admin API answered an unexpected status")),
        }
    }

    /// Reads one empty page: the endpoint, the key and the app ID are right when this
    /// succeeds. Call it at start, so that a wrong setting is a clear error at once.
    ///
    /// # Errors
    ///
    /// [`CatchUpErrorKind::Refused`] when Authgear refuses the token (a wrong key, key ID
    /// or app ID), [`CatchUpErrorKind::Unavailable`] when it cannot be reached,
    /// [`CatchUpErrorKind::Invalid`] when it answers something else than the audit log.
    pub async fn check(&self) -> Result<(), CatchUpError> {
        let now = unix_now();
        self.page(&PageQuery {
            from: now - 1,
            to: now,
            types: &["user.created".to_owned()],
            first: 0,
            after: None,
        })
        .await
        .map(drop)
    }
}

/// The error of an answer that is not what the query asks for.
fn invalid(message: &'static str) -> CatchUpError {
    CatchUpError::new(CatchUpErrorKind::Invalid, message)
}

#[derive(Deserialize)]
struct Answer {
    data: Option<Data>,
    #[serde(default)]
    errors: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    audit_logs: Option<Connection>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connection {
    total_count: Option<usize>,
    page_info: PageInfo,
    #[serde(default)]
    edges: Vec<Option<Edge>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
struct Edge {
    node: Option<Node>,
}

#[derive(Deserialize)]
struct Node {
    data: Option<Value>,
}

/// A page from the answer's JSON.
fn parse(answer: &[u8]) -> Result<Page, CatchUpError> {
    let answer: Answer = serde_json::from_slice(answer)
        .map_err(|_| invalid("the Admin API's answer is not the audit log"))?;
    if !answer.errors.is_empty() {
        return Err(invalid("the Admin API answered with GraphQL errors"));
    }
    let connection = answer
        .data
        .and_then(|data| data.audit_logs)
        .ok_or_else(|| invalid("the Admin API's answer has no audit log"))?;
    let total = connection
        .total_count
        .ok_or_else(|| invalid("the Admin API's answer has no totalCount"))?;
    let mut events = Vec::with_capacity(connection.edges.len());
    for data in connection
        .edges
        .into_iter()
        .flatten()
        .filter_map(|edge| edge.node?.data)
    {
        events.push(logged(data)?);
    }
    let next = match (
        connection.page_info.has_next_page,
        connection.page_info.end_cursor,
    ) {
        (true, Some(cursor)) if !cursor.is_empty() => Some(cursor),
        _ => None,
    };
    Ok(Page {
        total,
        events,
        next,
    })
}

/// An entry's event: its `id`, `type` and `context.timestamp`.
fn logged(data: Value) -> Result<LoggedEvent, CatchUpError> {
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let id = data.get("id").and_then(text);
    let event_type = data.get("type").and_then(text);
    // A float64 in Go's maps: whole seconds either way.
    let timestamp = data
        .get("context")
        .and_then(|context| context.get("timestamp"))
        .and_then(|timestamp| {
            timestamp
                .as_i64()
                .or_else(|| timestamp.as_f64().map(|t| t as i64))
        });
    match (id, event_type, timestamp) {
        (Some(id), Some(event_type), Some(timestamp)) if !id.is_empty() => Ok(LoggedEvent {
            id,
            event_type,
            timestamp,
            data,
        }),
        _ => Err(invalid("an audit log entry is not an event")),
    }
}

/// The GraphQL enum name of an event type: `user.created` is `USER_CREATED`.
pub(super) fn activity_type(event_type: &str) -> String {
    event_type.replace('.', "_").to_ascii_uppercase()
}

/// Seconds since the epoch, now.
pub(super) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

/// rustls with `ring`, trusting the system's roots (and `SSL_CERT_FILE`).
fn tls_config() -> Result<rustls::ClientConfig, CatchUpError> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates only matter for https://, where the handshake says so.
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    // rustls 0.23.48 deprecates its `ring` provider to steer users to aws-lc-rs, which
    // needs cmake to build; `ring` stays, as Cargo.toml says.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    Ok(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider))
            .with_safe_default_protocol_versions()
            .map_err(|_| CatchUpError::new(CatchUpErrorKind::Config, "no TLS protocol version"))?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

#[cfg(test)]
mod tests {
    use super::activity_type;

    #[test]
    fn activity_types_are_the_types_in_capitals() {
        assert_eq!(activity_type("user.created"), "USER_CREATED");
        assert_eq!(
            activity_type("user.deletion_scheduled"),
            "USER_DELETION_SCHEDULED"
        );
        assert_eq!(
            activity_type("identity.email.added"),
            "IDENTITY_EMAIL_ADDED"
        );
    }
}
