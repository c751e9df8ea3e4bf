//! The envelope of every delivery: `id`, `seq`, `type`, `payload`, `context`.

use serde::{Deserialize, Deserializer, Serialize, Serializer, ser::SerializeMap};
use serde_json::{Map, Value};

use super::{
    context::Context,
    payload::{BLOCKING_TYPES, Payload},
};

/// One Authgear webhook delivery.
///
/// The `type` is not a field: it is [`Payload::event_type`], so a type and a payload can
/// never disagree. Deserialising then serialising gives back the same JSON value (fields
/// this crate does not know are kept at every level; a `null` may come back absent).
///
/// With the `axum` feature, `Event` is also an extractor that only accepts requests the
/// [`VerifySignatureLayer`](crate::VerifySignatureLayer) let through.
///
/// ```
/// use authgear_webhook::event::{Event, Payload};
///
/// let body = br#"{"id":"0000000000000001","seq":1,"type":"user.created",
///     "payload":{"user":{"id":"u1","created_at":"2006-01-02T03:04:05Z",
///         "updated_at":"2006-01-02T03:04:05Z","is_anonymous":false,"is_verified":true,
///         "is_disabled":false},"identities":[]},
///     "context":{"timestamp":1764356838,"user_id":"u1","triggered_by":"user",
///         "audit_context":null,"preferred_languages":[],"language":""}}"#;
/// let event: Event = serde_json::from_slice(body)?;
/// assert_eq!(event.event_type(), "user.created");
/// assert!(!event.is_blocking());
/// match &event.payload {
///     Payload::UserCreated(created) => assert_eq!(created.user.id, "u1"),
///     _ => unreachable!(),
/// }
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event's id: opaque, the same in every delivery of this event.
    pub id: String,
    /// Sequence number, monotonic (with gaps) across the deployment.
    pub seq: i64,
    /// The typed payload; it also carries the event's `type`.
    pub payload: Payload,
    /// When, who, from where.
    pub context: Context,
    /// Envelope fields this crate does not know, kept as sent.
    pub extra: Map<String, Value>,
}

impl Event {
    /// The event's `type`, e.g. `"user.pre_create"`.
    ///
    /// ```
    /// # use authgear_webhook::event::Event;
    /// # let event: Event = serde_json::from_str(r#"{"id":"1","seq":1,"type":"project.new",
    /// #     "payload":{},"context":{"timestamp":0}}"#)?;
    /// assert_eq!(event.event_type(), "project.new");
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn event_type(&self) -> &str {
        self.payload.event_type()
    }

    /// Whether Authgear waits for an answer: the 9 blocking types. Answer those with an
    /// [`Answer`](super::Answer); the body of the answer to any other event is ignored.
    ///
    /// An event type this crate does not know gives `false`. Answering
    /// [`Answer::allow`](super::Answer::allow) to every event you do not refuse is safe
    /// either way.
    ///
    /// ```
    /// # use authgear_webhook::event::Event;
    /// let event: Event = serde_json::from_str(r#"{"id":"1","seq":1,
    ///     "type":"authentication.pre_initialize",
    ///     "payload":{"authentication_context":{"user":null}},"context":{"timestamp":0}}"#)?;
    /// assert!(event.is_blocking());
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn is_blocking(&self) -> bool {
        self.payload.is_blocking()
    }
}

/// Whether Authgear waits for an answer to events of this `type` (one of the 9 blocking
/// types). For tools that have the type but no event, such as a test sender.
///
/// ```
/// use authgear_webhook::event::is_blocking_type;
///
/// assert!(is_blocking_type("oidc.jwt.pre_create"));
/// assert!(!is_blocking_type("user.created"));
/// ```
pub fn is_blocking_type(event_type: &str) -> bool {
    BLOCKING_TYPES.contains(&event_type)
}

/// The envelope as it is on the wire, with the payload still raw.
#[derive(Deserialize)]
struct RawEvent {
    id: String,
    seq: i64,
    #[serde(rename = "type")]
    event_type: String,
    payload: Value,
    context: Context,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawEvent::deserialize(deserializer)?;
        let payload = Payload::from_parts(raw.event_type, raw.payload)
            .map_err(|error| serde::de::Error::custom(format_args!("payload: {error}")))?;
        Ok(Self {
            id: raw.id,
            seq: raw.seq,
            payload,
            context: raw.context,
            extra: raw.extra,
        })
    }
}

/// Writes the keys in Authgear's order (`id`, `seq`, `type`, `payload`, `context`), then the
/// unknown ones.
impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(5 + self.extra.len()))?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("seq", &self.seq)?;
        map.serialize_entry("type", self.event_type())?;
        map.serialize_entry("payload", &self.payload)?;
        map.serialize_entry("context", &self.context)?;
        for (key, value) in &self.extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}
