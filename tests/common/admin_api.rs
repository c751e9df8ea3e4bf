//! A stand-in for Authgear's Admin API, as far as the catch-up uses it, written from
//! authgear-server's source (`pkg/admin/graphql/query.go`, `pkg/lib/audit/read_store.go`,
//! `pkg/lib/infra/db/pagination.go`, `pkg/util/graphqlutil/page.go`,
//! `pkg/lib/admin/authz/middleware.go`), over HTTP on a loopback port:
//!
//! - `POST /_api/admin/graphql`, JSON `{query, variables}`; GraphQL errors come with 200.
//! - `Authorization: Bearer <JWT>`: RS256 under the trusted key (`tests/fixtures/admin-api`)
//!   whose `kid` is in the header, `aud` the app ID, `exp`/`iat` with 5 minutes of skew;
//!   anything else is 403 `Forbidden` (never 401), counted in [`AdminApiStandIn::refused`].
//! - `auditLogs(rangeFrom, rangeTo, activityTypes, first, after, sortDirection)`:
//!   `created_at >= rangeFrom AND created_at < rangeTo AND activity_type = ANY(types)`,
//!   ordered by `created_at` alone (DESC unless the query says `sortDirection: ASC`), the
//!   entries that share a second **in a new random order for each request**, `first`
//!   capped at 100, offset cursors `base64url("offset:N")` without padding, `hasNextPage`
//!   true when the page is full, `totalCount` exact. An entry's `data` is the event as a
//!   JSON object, its `createdAt` the event's `context.timestamp`.
//!
//! Faults on demand ([`Fault`]): 503, 429, 500, a body that is not JSON, GraphQL errors, a
//! slow answer.
#![allow(unreachable_pub)]

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

/// The key ID of the trusted key.
pub const KEY_ID: &str = "c3f1a0de-test-key";
/// The project the stand-in serves.
pub const APP_ID: &str = "test-app";

/// A fault the stand-in answers every request with, until cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 503 from a proxy in front.
    Unavailable,
    /// 429 from a proxy in front.
    TooManyRequests,
    /// 500.
    Failing,
    /// 200 with a body that is not JSON.
    Malformed,
    /// 200 with GraphQL errors and no data.
    GraphQlErrors,
    /// The answer after this long.
    Slow(Duration),
}

struct Log {
    /// (second, type, event), in the order they were logged.
    entries: Vec<(i64, String, Value)>,
}

struct Shared {
    log: Mutex<Log>,
    fault: Mutex<Option<Fault>>,
    requests: AtomicUsize,
    refused: AtomicUsize,
    key: DecodingKey,
}

/// The stand-in, serving until the test ends.
pub struct AdminApiStandIn {
    /// `http://127.0.0.1:<port>/_api/admin/graphql`.
    pub url: String,
    shared: Arc<Shared>,
}

impl AdminApiStandIn {
    /// Starts it on a free loopback port, trusting `tests/fixtures/admin-api/key.pub.pem`.
    pub async fn start() -> Self {
        let key = DecodingKey::from_rsa_pem(&crate::common::fixture("admin-api/key.pub.pem"))
            .expect("the public key");
        let shared = Arc::new(Shared {
            log: Mutex::new(Log {
                entries: Vec::new(),
            }),
            fault: Mutex::new(None),
            requests: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            key,
        });
        let app = Router::new()
            .route("/_api/admin/graphql", post(graphql))
            .with_state(shared.clone());
        let addr = crate::common::serve(app).await;
        Self {
            url: format!("http://{addr}/_api/admin/graphql"),
            shared,
        }
    }

    /// Logs `event` (a JSON event with `id`, `type` and `context.timestamp`), as Authgear's
    /// audit sink does for each non-blocking event.
    pub fn log(&self, event: Value) {
        let second = event["context"]["timestamp"].as_i64().expect("a timestamp");
        let event_type = event["type"].as_str().expect("a type").to_owned();
        let mut log = self.shared.log.lock().expect("log");
        log.entries.push((second, event_type, event));
    }

    /// Answers every request with `fault` from now on (`None`: serves again).
    pub fn set_fault(&self, fault: Option<Fault>) {
        *self.shared.fault.lock().expect("fault") = fault;
    }

    /// Requests received.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Requests refused for their token.
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }
}

/// A non-blocking event as Authgear makes it: the example delivery of `event_type`
/// (`tests/fixtures/events`) with the id `%016x` of `seq`, and `timestamp`.
pub fn event(seq: u64, event_type: &str, timestamp: i64) -> Value {
    let mut event: Value =
        serde_json::from_slice(&crate::common::fixture_event(event_type)).expect("a fixture");
    event["id"] = json!(format!("{seq:016x}"));
    event["seq"] = json!(seq);
    event["context"]["timestamp"] = json!(timestamp);
    event
}

async fn graphql(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    if !authorized(&shared, &headers) {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::FORBIDDEN, "Forbidden\n").into_response();
    }
    let fault = *shared.fault.lock().expect("fault");
    match fault {
        Some(Fault::Unavailable) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Some(Fault::TooManyRequests) => return StatusCode::TOO_MANY_REQUESTS.into_response(),
        Some(Fault::Failing) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Some(Fault::Malformed) => return (StatusCode::OK, "<html>oops").into_response(),
        Some(Fault::GraphQlErrors) => {
            let errors = json!({"errors": [{"message": "unexpected error"}], "data": null});
            return (StatusCode::OK, axum::Json(errors)).into_response();
        }
        Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let query = request["query"].as_str().unwrap_or_default();
    assert!(
        query.contains("auditLogs"),
        "the stand-in serves auditLogs only"
    );
    let variables = &request["variables"];
    let answer = audit_logs(&shared, query.contains("sortDirection: ASC"), variables);
    (StatusCode::OK, axum::Json(answer)).into_response()
}

/// The token's checks of `pkg/lib/admin/authz/middleware.go`.
fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(token) = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    else {
        return false;
    };
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return false;
    };
    if header.kid.as_deref() != Some(KEY_ID) || header.alg != Algorithm::RS256 {
        return false;
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[APP_ID]);
    validation.leeway = 300;
    validation.set_required_spec_claims(&["aud"]);
    jsonwebtoken::decode::<Value>(token, &shared.key, &validation).is_ok()
}

/// `auditLogs` on the log, as `read_store.go` and `pagination.go` do it.
fn audit_logs(shared: &Shared, ascending: bool, variables: &Value) -> Value {
    let second = |name: &str| variables[name].as_str().map(seconds);
    let (from, to) = (second("rangeFrom"), second("rangeTo"));
    let types: Option<Vec<String>> = variables["activityTypes"].as_array().map(|types| {
        types
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    });
    let first = variables["first"]
        .as_u64()
        .map_or(100, |first| first.min(100)) as usize;
    let offset = variables["after"]
        .as_str()
        .map_or(0, |cursor| cursor_offset(cursor) + 1);

    let log = shared.log.lock().expect("log");
    let mut rows: Vec<&(i64, String, Value)> = log
        .entries
        .iter()
        .filter(|(s, _, _)| from.is_none_or(|from| *s >= from) && to.is_none_or(|to| *s < to))
        .filter(|(_, event_type, _)| {
            let name = event_type.replace('.', "_").to_ascii_uppercase();
            types.as_ref().is_none_or(|types| types.contains(&name))
        })
        .collect();
    // ORDER BY created_at, nothing else: ties in a new order for each request.
    fastrand::shuffle(&mut rows);
    rows.sort_by_key(|(s, _, _)| *s);
    if !ascending {
        rows.reverse();
    }
    let total = rows.len();
    let page: Vec<_> = rows.iter().skip(offset).take(first).collect();
    let edges: Vec<Value> = page
        .iter()
        .enumerate()
        .map(|(i, (s, event_type, event))| {
            json!({
                "cursor": cursor(offset + i),
                "node": {
                    "activityType": event_type.replace('.', "_").to_ascii_uppercase(),
                    "createdAt": rfc3339(*s),
                    "data": event,
                }
            })
        })
        .collect();
    let end_cursor = if page.is_empty() {
        Value::String(String::new())
    } else {
        Value::String(cursor(offset + page.len() - 1))
    };
    json!({
        "data": {
            "auditLogs": {
                "totalCount": total,
                "pageInfo": {
                    "hasNextPage": page.len() == first,
                    "hasPreviousPage": true,
                    "endCursor": end_cursor,
                },
                "edges": edges,
            }
        }
    })
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `base64url("offset:N")` without padding.
fn cursor(offset: usize) -> String {
    let bytes = format!("offset:{offset}").into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn cursor_offset(cursor: &str) -> usize {
    let mut bits = 0u32;
    let mut count = 0;
    let mut bytes = Vec::new();
    for c in cursor.bytes() {
        let value = ALPHABET.iter().position(|a| *a == c).expect("base64url") as u32;
        bits = bits << 6 | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count & 0xff) as u8);
        }
    }
    let text = String::from_utf8(bytes).expect("utf-8");
    text.strip_prefix("offset:")
        .and_then(|n| n.parse().ok())
        .expect("an offset cursor")
}

/// `2025-01-02T03:04:05Z` to seconds since the epoch (UTC only, as the catch-up sends).
fn seconds(text: &str) -> i64 {
    let number = |range: std::ops::Range<usize>| -> i64 { text[range].parse().expect("a number") };
    assert!(text.ends_with('Z'), "UTC: {text}");
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    let (hour, minute, second) = (number(11..13), number(14..16), number(17..19));
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hour * 3600 + minute * 60 + second
}

/// The inverse of [`seconds`], for `createdAt`.
fn rfc3339(seconds: i64) -> String {
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (hour, minute, second) = (rest / 3600, rest % 3600 / 60, rest % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

#[cfg(test)]
mod tests {
    use super::{cursor, cursor_offset, rfc3339, seconds};

    #[test]
    fn cursors_and_times_are_authgears() {
        assert_eq!(cursor(99), "b2Zmc2V0Ojk5");
        for offset in [0, 7, 99, 100, 12345] {
            assert_eq!(cursor_offset(&cursor(offset)), offset);
        }
        assert_eq!(seconds("1970-01-01T00:00:00Z"), 0);
        assert_eq!(seconds("2025-01-02T03:04:05Z"), 1_735_787_045);
        assert_eq!(seconds("2000-02-29T00:00:00Z"), 951_782_400);
        for t in [0, 951_782_400, 1_735_787_045, 4_102_444_799] {
            assert_eq!(seconds(&rfc3339(t)), t);
        }
    }
}
