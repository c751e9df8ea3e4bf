//! What a verified request carries for the layers after the verifying one: the signed bytes,
//! the endpoint, and the envelope's head, read from the bytes once.

use std::sync::Arc;
#[cfg(any(feature = "event", feature = "replay"))]
use std::sync::OnceLock;

use bytes::Bytes;
use http::uri::PathAndQuery;

/// Request extension inserted by [`VerifySignature`](crate::VerifySignature), next to
/// [`Verified`](crate::Verified), on every request it lets through: the exact bytes that
/// were signed, the endpoint they came to, and the head of the delivery's envelope (`id`,
/// `type`, `context.timestamp`), read from the bytes once, when first asked.
///
/// The layers after the verifying one read the delivery here rather than from the body,
/// so they take any body type: [`ReplayLayer`](crate::replay::ReplayLayer) and
/// [`InboxLayer`](crate::inbox::InboxLayer) go behind axum's `Router::layer` like any
/// tower-http layer. Only the verifying layer makes one.
///
/// ```
/// use authgear_webhook::{sign, Envelope, VerifySignatureLayer, SIGNATURE_HEADER};
/// use http::{Request, Response};
/// use tower::{service_fn, Layer, ServiceExt};
/// # use std::convert::Infallible;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let service = VerifySignatureLayer::new("secret").layer(service_fn(|request: Request<_>| async move {
///     let envelope = request.extensions().get::<Envelope>().cloned();
///     Ok::<_, Infallible>(Response::new(envelope.map(|e| e.endpoint().to_owned()).unwrap_or_default()))
/// }));
/// let body = r#"{"id":"0001","type":"user.created","context":{"timestamp":1700000000}}"#;
/// let request = Request::post("/hooks/authgear")
///     .header(SIGNATURE_HEADER, sign("secret", body.as_bytes()))
///     .body(body.to_owned())
///     .unwrap();
/// let response = service.oneshot(request).await.unwrap();
/// # use http_body_util::BodyExt;
/// let endpoint = response.into_body().collect().await.unwrap().to_bytes();
/// assert_eq!(endpoint, "/hooks/authgear");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Envelope {
    bytes: Bytes,
    endpoint: Endpoint,
    #[cfg(any(feature = "event", feature = "replay"))]
    head: OnceLock<Head>,
}

/// The endpoint's name, or the request's path (kept as the request's own bytes: no copy).
#[derive(Debug, Clone)]
pub(crate) enum Endpoint {
    Named(Arc<str>),
    Path(Option<PathAndQuery>),
}

impl Envelope {
    pub(crate) fn new(endpoint: Endpoint, bytes: Bytes) -> Self {
        Self {
            bytes,
            endpoint,
            #[cfg(any(feature = "event", feature = "replay"))]
            head: OnceLock::new(),
        }
    }

    /// The body exactly as signed.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The endpoint the delivery came to: the name given to
    /// [`VerifySignatureLayer::endpoint`](crate::VerifySignatureLayer::endpoint), or else the
    /// request path. Replay protection and the inbox key deliveries by endpoint and `id`:
    /// Authgear sends the same event, with the same `id`, to every configured URL.
    pub fn endpoint(&self) -> &str {
        match &self.endpoint {
            Endpoint::Named(name) => name,
            Endpoint::Path(path) => path.as_ref().map_or("", PathAndQuery::path),
        }
    }
}

#[cfg(any(feature = "event", feature = "replay"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "event", feature = "replay"))))]
impl Envelope {
    /// The event's `id`, if the body is a JSON object with a string `id`.
    ///
    /// `id`, [`event_type`](Self::event_type) and [`timestamp`](Self::timestamp) are read
    /// from the bytes together, the first time one of them is asked.
    pub fn id(&self) -> Option<&str> {
        self.head().id.as_deref()
    }

    /// The event's `type`, if the body is a JSON object with a string `type`.
    pub fn event_type(&self) -> Option<&str> {
        self.head().event_type.as_deref()
    }

    /// The event's `context.timestamp` (Unix seconds), if it is a non-negative integer.
    pub fn timestamp(&self) -> Option<u64> {
        self.head().timestamp
    }

    pub(crate) fn head(&self) -> &Head {
        self.head.get_or_init(|| Head::parse(&self.bytes))
    }
}

#[cfg(any(feature = "event", feature = "replay"))]
pub(crate) use self::head::Head;

#[cfg(any(feature = "event", feature = "replay"))]
mod head {
    use std::fmt;

    use serde::{
        Deserialize, Deserializer,
        de::{IgnoredAny, MapAccess, SeqAccess, Visitor},
    };

    /// The head of a delivery's envelope: what replay protection and the inbox read.
    ///
    /// Each field is read on its own: absent, of another kind (`"id": 5`) or repeated, it is
    /// `None` and the others are still read. A body that is not one JSON object has none.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub(crate) struct Head {
        pub(crate) id: Option<String>,
        pub(crate) event_type: Option<String>,
        pub(crate) timestamp: Option<u64>,
    }

    impl Head {
        /// Reads the head of `body`; serde skips everything else without keeping it.
        pub(crate) fn parse(body: &[u8]) -> Self {
            serde_json::from_slice(body).unwrap_or_default()
        }
    }

    impl<'de> Deserialize<'de> for Head {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_map(HeadVisitor)
        }
    }

    #[derive(Deserialize)]
    #[serde(field_identifier, rename_all = "lowercase")]
    enum Key {
        Id,
        Type,
        Context,
        Timestamp,
        #[serde(other)]
        Other,
    }

    /// One field, read once: a second occurrence makes it `None` for good.
    struct Once<T> {
        value: Option<T>,
        seen: bool,
    }

    impl<T> Once<T> {
        fn new() -> Self {
            Self {
                value: None,
                seen: false,
            }
        }

        fn set(&mut self, value: Option<T>) {
            self.value = if self.seen { None } else { value };
            self.seen = true;
        }
    }

    struct HeadVisitor;

    impl<'de> Visitor<'de> for HeadVisitor {
        type Value = Head;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Head, A::Error> {
            let (mut id, mut event_type, mut timestamp) = (Once::new(), Once::new(), Once::new());
            while let Some(key) = map.next_key::<Key>()? {
                match key {
                    Key::Id => id.set(map.next_value::<Lenient<String>>()?.0),
                    Key::Type => event_type.set(map.next_value::<Lenient<String>>()?.0),
                    Key::Context => timestamp.set(map.next_value::<Timestamp>()?.0),
                    Key::Timestamp | Key::Other => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(Head {
                id: id.value,
                event_type: event_type.value,
                timestamp: timestamp.value.flatten(),
            })
        }
    }

    /// `context`'s `timestamp`; `Some(None)` for a context without one.
    struct Timestamp(Option<Option<u64>>);

    impl<'de> Deserialize<'de> for Timestamp {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer
                .deserialize_any(Any(|value| match value {
                    Value::Map(timestamp) => Some(timestamp),
                    _ => None,
                }))
                .map(Timestamp)
        }
    }

    /// A value of the kind `T` reads, or `None` for a value of any other kind.
    struct Lenient<T>(Option<T>);

    impl<'de> Deserialize<'de> for Lenient<String> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer
                .deserialize_any(Any(|value| match value {
                    Value::Str(text) => Some(text),
                    _ => None,
                }))
                .map(Lenient)
        }
    }

    impl<'de> Deserialize<'de> for Lenient<u64> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer
                .deserialize_any(Any(|value| match value {
                    Value::U64(number) => Some(number),
                    _ => None,
                }))
                .map(Lenient)
        }
    }

    /// What [`Any`] saw, of what the head keeps.
    enum Value {
        Str(String),
        U64(u64),
        /// An object: its `timestamp`, if read once as a non-negative integer.
        Map(Option<u64>),
        Other,
    }

    /// Accepts a value of any kind and hands what it saw to the function, skipping the
    /// elements of arrays and the fields of objects (but an object's `timestamp`).
    struct Any<F>(F);

    impl<'de, T, F: FnOnce(Value) -> Option<T>> Visitor<'de> for Any<F> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }

        fn visit_str<E>(self, text: &str) -> Result<Option<T>, E> {
            Ok((self.0)(Value::Str(text.to_owned())))
        }

        fn visit_string<E>(self, text: String) -> Result<Option<T>, E> {
            Ok((self.0)(Value::Str(text)))
        }

        fn visit_u64<E>(self, number: u64) -> Result<Option<T>, E> {
            Ok((self.0)(Value::U64(number)))
        }

        fn visit_i64<E>(self, _: i64) -> Result<Option<T>, E> {
            Ok((self.0)(Value::Other))
        }

        fn visit_f64<E>(self, _: f64) -> Result<Option<T>, E> {
            Ok((self.0)(Value::Other))
        }

        fn visit_bool<E>(self, _: bool) -> Result<Option<T>, E> {
            Ok((self.0)(Value::Other))
        }

        fn visit_unit<E>(self) -> Result<Option<T>, E> {
            Ok((self.0)(Value::Other))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<T>, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok((self.0)(Value::Other))
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
            let mut timestamp = Once::new();
            while let Some(key) = map.next_key::<Key>()? {
                match key {
                    Key::Timestamp => timestamp.set(map.next_value::<Lenient<u64>>()?.0),
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok((self.0)(Value::Map(timestamp.value)))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// How replay protection read a body before the head was shared: its own struct.
        #[derive(Deserialize)]
        struct ReplayFields {
            id: Option<String>,
            context: Option<ReplayContext>,
        }

        #[derive(Deserialize)]
        struct ReplayContext {
            timestamp: Option<u64>,
        }

        /// How the inbox read a body before: its own struct.
        #[derive(Deserialize)]
        struct InboxFields {
            id: String,
            #[serde(rename = "type")]
            event_type: String,
        }

        #[test]
        fn head_reads_what_replay_and_inbox_read_with_their_own_structs() {
            let bodies = [
                r#"{"id":"1","type":"user.created","context":{"timestamp":1700000000}}"#,
                r#"{"id":"1","type":"user.created","context":{"timestamp":1700000000,"user_id":"u"},"payload":{"id":"x","type":5,"timestamp":"no"}}"#,
                r#"{"id":"1","type":"user.created"}"#,
                r#"{"id":"1","context":{"timestamp":1}}"#,
                r#"{"id":5,"type":"user.created","context":{"timestamp":1}}"#,
                r#"{"id":"1","type":5,"context":{"timestamp":1}}"#,
                r#"{"id":"1","type":"t","context":5}"#,
                r#"{"id":"1","type":"t","context":null}"#,
                r#"{"id":null,"type":"t","context":{"timestamp":1}}"#,
                r#"{"id":"1","type":"t","context":{"timestamp":-1}}"#,
                r#"{"id":"1","type":"t","context":{"timestamp":1.5}}"#,
                r#"{"id":"1","type":"t","context":{"timestamp":"1"}}"#,
                r#"{"id":"1","type":"t","context":{"timestamp":null}}"#,
                r#"{"id":"1","type":"t","context":{"timestamp":18446744073709551616}}"#,
                r#"{"id":"1","id":"2","type":"t","context":{"timestamp":1}}"#,
                r#"{"id":"1","type":"t","type":"u","context":{"timestamp":1}}"#,
                r#"{"id":"1","type":"t","context":{"timestamp":1},"context":{"timestamp":1}}"#,
                r#"{"id":"1","type":"t","context":{"timestamp":1,"timestamp":2}}"#,
                r#"{"id":"\u0031","type":"user.\u0063reated","context":{"timestamp":1}}"#,
                r#"{"timestamp":1,"id":"1","type":"t"}"#,
                r#"{"id":"1","type":"t","context":{"timestamp":1}} trailing"#,
                r#"{"id":"1","type":"t","context":{"timestamp":1}"#,
                r#""id""#,
                "",
                "not json",
                r#"{"id":"1","type":"t","extra":[1,{"id":2},[null,true]],"context":{"a":[{"timestamp":3}],"timestamp":4}}"#,
            ];
            for body in bodies {
                let head = Head::parse(body.as_bytes());
                let replay = match serde_json::from_slice::<ReplayFields>(body.as_bytes()) {
                    Ok(ReplayFields {
                        id: Some(id),
                        context: Some(ReplayContext { timestamp: Some(t) }),
                    }) => Some((id, t)),
                    _ => None,
                };
                let shared = match (&head.id, head.timestamp) {
                    (Some(id), Some(t)) => Some((id.clone(), t)),
                    _ => None,
                };
                assert_eq!(shared, replay, "replay's fields of {body}");
                let inbox = serde_json::from_slice::<InboxFields>(body.as_bytes())
                    .ok()
                    .map(|f| (f.id, f.event_type));
                let shared = match (&head.id, &head.event_type) {
                    (Some(id), Some(t)) => Some((id.clone(), t.clone())),
                    _ => None,
                };
                assert_eq!(shared, inbox, "the inbox's fields of {body}");
            }
            // serde's derived structs also read a JSON array as their fields in order: the
            // head is read from an object only, as Authgear sends.
            for array in [r#"["1","user.created"]"#, r#"["1",[1700000000]]"#] {
                assert_eq!(Head::parse(array.as_bytes()), Head::default(), "{array}");
            }
            let head = Head::parse(bodies[1].as_bytes());
            assert_eq!(
                head,
                Head {
                    id: Some("1".into()),
                    event_type: Some("user.created".into()),
                    timestamp: Some(1_700_000_000),
                }
            );
        }
    }
}
