//! The envelope of every delivery: `id`, `seq`, `type`, `payload`, `context`.

use serde::{Deserialize, Deserializer, Serialize, Serializer, ser::SerializeMap};
use serde_json::{Map, Value};

use super::{
    context::Context,
    misfit::typed,
    payload::{BLOCKING_TYPES, Payload},
};

/// One Authgear webhook delivery.
///
/// The `type` is not a field: it is [`Payload::event_type`], so a type and a payload can
/// never disagree. Any JSON object with a string `id` and a string `type` parses (a part
/// that does not fit the model is kept as sent: see [`off_model_reason`](Self::off_model_reason)),
/// and serialising gives back exactly the JSON value that was parsed, `null`s included
/// (fields this crate does not know are kept at every level).
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
    /// Sequence number, monotonic (with gaps) across the deployment. Authgear always sends
    /// it; `None` only when a delivery has none, or one that is not an integer (then kept as
    /// sent in `extra`, and [`off_model_reason`](Self::off_model_reason) says why).
    pub seq: Option<i64>,
    /// The typed payload; it also carries the event's `type`.
    pub payload: Payload,
    /// When, who, from where. Authgear always sends it; `None` only when a delivery has none,
    /// or one that does not fit [`Context`] (then kept as sent in `extra`, and
    /// [`off_model_reason`](Self::off_model_reason) says why).
    pub context: Option<Context>,
    /// Envelope fields this crate does not know, kept as sent.
    pub extra: Map<String, Value>,
    /// Why a part of the delivery did not fit the model, if one did not.
    misfit: Option<String>,
    /// Where the delivery had `null` for a value the model writes back absent, or no key
    /// where the model writes `null`: applied when serialising, so the JSON value comes
    /// back exactly as sent.
    nulls: Vec<NullPatch>,
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

    /// Why a part of this delivery (its `payload`, `context` or `seq`) did not fit the typed
    /// model; `None` for a delivery that fits, as every delivery of the server version the
    /// model was checked against does. The part that did not fit is kept as sent: the payload
    /// as [`Payload::OffModel`], `context` and `seq` in [`extra`](Self::extra). The reason is
    /// a JSON pointer to what does not fit (the object, for a missing field) and serde's
    /// message, which names the value's kind, never the value.
    ///
    /// ```
    /// use authgear_webhook::event::{Answer, Event, Payload};
    ///
    /// // `is_verified` is a string here: the user does not fit the model.
    /// let body = br#"{"id":"1","seq":1,"type":"user.pre_create","payload":{"user":{"id":"u1",
    ///     "created_at":"","updated_at":"","is_anonymous":false,"is_verified":"yes",
    ///     "is_disabled":false}},"context":{"timestamp":0}}"#;
    /// let event: Event = serde_json::from_slice(body)?;
    /// assert!(matches!(event.payload, Payload::OffModel { .. }));
    /// assert_eq!(
    ///     event.off_model_reason(),
    ///     Some("/payload/user/is_verified: invalid type: string, expected a boolean"),
    /// );
    /// assert!(event.is_blocking());
    /// // Allow and deny fit every blocking event; the JSON value comes back as sent.
    /// assert_eq!(serde_json::to_string(&Answer::allow())?, r#"{"is_allowed":true}"#);
    /// assert_eq!(
    ///     serde_json::to_value(&event)?,
    ///     serde_json::from_slice::<serde_json::Value>(body)?,
    /// );
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn off_model_reason(&self) -> Option<&str> {
        self.misfit.as_deref()
    }

    /// Builds the event from a delivery's JSON value: only a JSON object with a string `id`
    /// and a string `type` is refused.
    fn from_value(value: Value) -> Result<Self, &'static str> {
        let Value::Object(mut map) = value else {
            return Err("not a JSON object");
        };
        let sent = map.clone();
        let id = match map.remove("id") {
            Some(Value::String(id)) => id,
            _ => return Err("no string `id`"),
        };
        let event_type = match map.remove("type") {
            Some(Value::String(event_type)) => event_type,
            _ => return Err("no string `type`"),
        };
        let mut misfit = None;
        let mut extra = Map::new();
        let seq = match map.remove("seq") {
            Some(Value::Number(seq)) if seq.as_i64().is_some() => seq.as_i64(),
            Some(other) => {
                misfit = Some("/seq: not a 64-bit integer".to_owned());
                extra.insert("seq".to_owned(), other);
                None
            }
            None => None,
        };
        let context = match map.remove("context") {
            Some(raw) => match typed::<Context>(&raw, "/context") {
                Ok(context) => Some(context),
                Err(reason) => {
                    misfit.get_or_insert(reason);
                    extra.insert("context".to_owned(), raw);
                    None
                }
            },
            None => None,
        };
        // An absent payload is kept as `null`, and written back absent by a null patch.
        let payload = Payload::from_parts(event_type, map.remove("payload").unwrap_or_default());
        if let Some(reason) = payload.off_model_reason() {
            misfit.get_or_insert_with(|| reason.to_owned());
        }
        extra.extend(map);
        let mut event = Self {
            id,
            seq,
            payload,
            context,
            extra,
            misfit,
            nulls: Vec::new(),
        };
        event.match_nulls(&Value::Object(sent));
        Ok(event)
    }

    /// Records where the model writes back a different JSON value than was sent: a `null`
    /// it drops or adds becomes a [`NullPatch`]; any other difference (not expected: the
    /// model keeps every value it does not type) moves the part into its raw form.
    fn match_nulls(&mut self, sent: &Value) {
        for _ in 0..3 {
            self.nulls.clear();
            let written = match serde_json::to_value(Written(self)) {
                Ok(written) => written,
                Err(_) => return,
            };
            let mut path = Vec::new();
            let mut nulls = Vec::new();
            let Err(at) = diff(sent, &written, &mut path, &mut nulls) else {
                self.nulls = nulls;
                return;
            };
            let reason = format!("{} is written back differently", pointer(&at));
            match at.first() {
                Some(Step::Key(key)) if key == "payload" => {
                    let event_type = self.payload.event_type().to_owned();
                    self.payload = Payload::OffModel {
                        event_type,
                        payload: sent.get("payload").cloned().unwrap_or_default(),
                        reason: reason.clone(),
                    };
                }
                Some(Step::Key(key)) if key == "context" && self.context.is_some() => {
                    self.context = None;
                    if let Some(raw) = sent.get("context") {
                        self.extra.insert("context".to_owned(), raw.clone());
                    }
                }
                _ => return,
            }
            self.misfit.get_or_insert(reason);
        }
    }
}

/// One step into a JSON value.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// `/payload/user/roles`, for a reason.
fn pointer(path: &[Step]) -> String {
    path.iter()
        .map(|step| match step {
            Step::Key(key) => format!("/{key}"),
            Step::Index(index) => format!("/{index}"),
        })
        .collect()
}

/// A `null` the typed model does not write back as it was sent.
#[derive(Debug, Clone, PartialEq)]
struct NullPatch {
    /// Where, from the envelope down.
    path: Vec<Step>,
    /// `true`: the delivery had `null` there and the model writes nothing; `false`: the
    /// delivery had no key there and the model writes `null`.
    sent_null: bool,
}

impl NullPatch {
    /// Puts the `null` back (or takes it out) if the value still has that shape.
    fn apply(&self, value: &mut Value) {
        let Some((Step::Key(last), parents)) = self.path.split_last() else {
            return;
        };
        let mut at = value;
        for step in parents {
            let next = match step {
                Step::Key(key) => at.get_mut(key.as_str()),
                Step::Index(index) => at.get_mut(*index),
            };
            match next {
                Some(next) => at = next,
                None => return,
            }
        }
        let Value::Object(object) = at else {
            return;
        };
        if self.sent_null {
            object.entry(last.clone()).or_insert(Value::Null);
        } else if object.get(last).is_some_and(Value::is_null) {
            object.remove(last);
        }
    }
}

/// Compares what was sent with what the model writes: `Ok` when they differ only by
/// `null`s (recorded in `nulls`), else the path of the first other difference.
fn diff(
    sent: &Value,
    written: &Value,
    path: &mut Vec<Step>,
    nulls: &mut Vec<NullPatch>,
) -> Result<(), Vec<Step>> {
    match (sent, written) {
        (Value::Object(sent), Value::Object(written)) => {
            for (key, value) in sent {
                path.push(Step::Key(key.clone()));
                match written.get(key) {
                    Some(other) => diff(value, other, path, nulls)?,
                    None if value.is_null() => nulls.push(NullPatch {
                        path: path.clone(),
                        sent_null: true,
                    }),
                    None => return Err(path.clone()),
                }
                path.pop();
            }
            for (key, value) in written {
                if !sent.contains_key(key) {
                    path.push(Step::Key(key.clone()));
                    if !value.is_null() {
                        return Err(path.clone());
                    }
                    nulls.push(NullPatch {
                        path: path.clone(),
                        sent_null: false,
                    });
                    path.pop();
                }
            }
            Ok(())
        }
        (Value::Array(sent), Value::Array(written)) if sent.len() == written.len() => {
            for (index, (value, other)) in sent.iter().zip(written).enumerate() {
                path.push(Step::Index(index));
                diff(value, other, path, nulls)?;
                path.pop();
            }
            Ok(())
        }
        (sent, written) if sent == written => Ok(()),
        _ => Err(path.clone()),
    }
}

/// Whether Authgear waits for an answer to events of this `type` (one of the 9
/// [`BLOCKING_TYPES`]). For tools that have the type but no event, such as a test sender.
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

/// Parses any JSON object with a string `id` and a string `type`; see
/// [`Event::off_model_reason`] for the parts that do not fit.
impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_value(value).map_err(serde::de::Error::custom)
    }
}

/// Writes the keys in Authgear's order (`id`, `seq`, `type`, `payload`, `context`), then the
/// unknown ones; the same JSON value as was parsed.
impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.nulls.is_empty() {
            return Written(self).serialize(serializer);
        }
        let mut value = serde_json::to_value(Written(self)).map_err(serde::ser::Error::custom)?;
        for patch in &self.nulls {
            patch.apply(&mut value);
        }
        value.serialize(serializer)
    }
}

/// The event as the typed model writes it, before the null patches.
struct Written<'a>(&'a Event);

impl Serialize for Written<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let event = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &event.id)?;
        if let Some(seq) = event.seq {
            map.serialize_entry("seq", &seq)?;
        }
        map.serialize_entry("type", event.event_type())?;
        map.serialize_entry("payload", &event.payload)?;
        if let Some(context) = &event.context {
            map.serialize_entry("context", context)?;
        }
        for (key, value) in &event.extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}
