//! Allowing an `oidc.*` blocking event, with claims added to the token.

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::{Allow, Answer, Inner, TokenMutation};
use crate::event::{OidcIdTokenPreCreatePayload, OidcJwtPreCreatePayload};

/// Allows `oidc.jwt.pre_create` or `oidc.id_token.pre_create`, optionally adding claims to
/// the token: `mutations.jwt.payload` or `mutations.id_token.payload`. Made by the payload's
/// `allow()`.
///
/// Authgear takes the whole token payload back and fails token issuance if a claim was
/// removed or changed. This builder starts from the event's payload and can only add claims,
/// so that cannot happen. With no claim added it answers `{"is_allowed": true}`.
///
/// ```
/// use authgear_webhook::event::{Answer, Event, Payload};
/// use serde_json::json;
///
/// # let event: Event = serde_json::from_str(r#"{"id":"1","seq":1,"type":"oidc.jwt.pre_create",
/// #   "payload":{"user":{"id":"u1","created_at":"","updated_at":"","is_anonymous":false,
/// #   "is_verified":false,"is_disabled":false},
/// #   "jwt":{"payload":{"iss":"https://myapp.authgear.cloud","sub":"u1"}}},
/// #   "context":{"timestamp":0}}"#)?;
/// let answer: Answer = match &event.payload {
///     Payload::OidcJwtPreCreate(payload) => payload
///         .allow()
///         .add_claim("https://myapp.com", json!({ "plan": "pro" }))?
///         .into(),
///     _ => Answer::allow(),
/// };
/// assert_eq!(
///     serde_json::to_value(&answer)?,
///     json!({ "is_allowed": true, "mutations": { "jwt": { "payload": {
///         "iss": "https://myapp.authgear.cloud",
///         "sub": "u1",
///         "https://myapp.com": { "plan": "pro" }
///     } } } }),
/// );
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct TokenAnswer {
    allow: Allow,
    key: &'static str,
    /// The token's claims as the event shows them, until the first claim is added.
    original: Map<String, Value>,
}

impl TokenAnswer {
    fn new(key: &'static str, payload: &Map<String, Value>) -> Self {
        Self {
            allow: Allow::default(),
            key,
            original: payload.clone(),
        }
    }

    /// Adds a claim to the token.
    ///
    /// # Errors
    ///
    /// If the token already has a claim of that name with another value: Authgear would
    /// refuse the change. Adding a claim with the value it already has is a no-op; values
    /// are compared the way Authgear compares them (Go's `reflect.DeepEqual` after
    /// `json.Unmarshal`, where every number is a `float64`), so `1` and `1.0` are the same
    /// claim.
    ///
    /// ```
    /// # use authgear_webhook::event::OidcIdTokenPreCreatePayload;
    /// # let payload: OidcIdTokenPreCreatePayload = serde_json::from_str(r#"{"user":{"id":"u1",
    /// #   "created_at":"","updated_at":"","is_anonymous":false,"is_verified":false,
    /// #   "is_disabled":false},"id_token":{"payload":{"sub":"u1"}}}"#)?;
    /// let answer = payload.allow().add_claim("tier", "gold")?;
    /// assert_eq!(answer.claims()["tier"], "gold");
    ///
    /// let error = payload.allow().add_claim("sub", "someone else").unwrap_err();
    /// assert_eq!(error.name(), "sub");
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_claim(
        mut self,
        name: impl Into<String>,
        value: impl Into<Value>,
    ) -> Result<Self, ClaimError> {
        let (name, value) = (name.into(), value.into());
        match self.claims().get(&name) {
            Some(existing) if go_equal(existing, &value) => return Ok(self),
            Some(_) => return Err(ClaimError { name }),
            None => {}
        }
        let (key, original) = (self.key, &mut self.original);
        self.allow
            .token
            .get_or_insert_with(|| TokenMutation {
                key,
                payload: std::mem::take(original),
            })
            .payload
            .insert(name, value);
        Ok(self)
    }

    /// The token's claims: the event's, plus those added.
    ///
    /// ```
    /// # use authgear_webhook::event::OidcJwtPreCreatePayload;
    /// # let payload: OidcJwtPreCreatePayload = serde_json::from_str(r#"{"user":{"id":"u1",
    /// #   "created_at":"","updated_at":"","is_anonymous":false,"is_verified":false,
    /// #   "is_disabled":false},"jwt":{"payload":{"sub":"u1"}}}"#)?;
    /// let answer = payload.allow();
    /// assert_eq!(answer.claims(), &payload.jwt.payload);
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn claims(&self) -> &Map<String, Value> {
        match &self.allow.token {
            Some(token) => &token.payload,
            None => &self.original,
        }
    }
}

/// Whether Go would see the same value after `json.Unmarshal` into `interface{}`: numbers
/// are `float64`s (so `1`, `1.0` and `1e0` are equal, and `-0` equals `0`), the rest as
/// JSON.
fn go_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| go_equal(a, b))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(key, a)| b.get(key).is_some_and(|b| go_equal(a, b)))
        }
        (a, b) => a == b,
    }
}

impl Serialize for TokenAnswer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.allow.serialize(serializer)
    }
}

impl From<TokenAnswer> for Answer {
    fn from(answer: TokenAnswer) -> Self {
        Self(Inner::Allow(answer.allow))
    }
}

impl OidcJwtPreCreatePayload {
    /// Allows the event; the [`TokenAnswer`] can also add claims to the JWT.
    ///
    /// ```
    /// # use authgear_webhook::event::OidcJwtPreCreatePayload;
    /// # let payload: OidcJwtPreCreatePayload = serde_json::from_str(r#"{"user":{"id":"u1",
    /// #   "created_at":"","updated_at":"","is_anonymous":false,"is_verified":false,
    /// #   "is_disabled":false},"jwt":{"payload":{"sub":"u1"}}}"#)?;
    /// let answer = payload.allow().add_claim("tier", "gold")?;
    /// let json = serde_json::to_value(&answer)?;
    /// assert_eq!(json["mutations"]["jwt"]["payload"]["sub"], "u1");
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn allow(&self) -> TokenAnswer {
        TokenAnswer::new("jwt", &self.jwt.payload)
    }
}

impl OidcIdTokenPreCreatePayload {
    /// Allows the event; the [`TokenAnswer`] can also add claims to the ID token.
    ///
    /// ```
    /// # use authgear_webhook::event::OidcIdTokenPreCreatePayload;
    /// # let payload: OidcIdTokenPreCreatePayload = serde_json::from_str(r#"{"user":{"id":"u1",
    /// #   "created_at":"","updated_at":"","is_anonymous":false,"is_verified":false,
    /// #   "is_disabled":false},"id_token":{"payload":{"sub":"u1"}}}"#)?;
    /// let answer = payload.allow().add_claim("tier", "gold")?;
    /// let json = serde_json::to_value(&answer)?;
    /// assert_eq!(json["mutations"]["id_token"]["payload"]["tier"], "gold");
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn allow(&self) -> TokenAnswer {
        TokenAnswer::new("id_token", &self.id_token.payload)
    }
}

/// [`TokenAnswer::add_claim`] was asked to change a claim the token already has: Authgear
/// only accepts added claims.
///
/// ```
/// # use authgear_webhook::event::OidcJwtPreCreatePayload;
/// # let payload: OidcJwtPreCreatePayload = serde_json::from_str(r#"{"user":{"id":"u1",
/// #   "created_at":"","updated_at":"","is_anonymous":false,"is_verified":false,
/// #   "is_disabled":false},"jwt":{"payload":{"sub":"u1"}}}"#)?;
/// let error = payload.allow().add_claim("sub", "u2").unwrap_err();
/// assert_eq!(error.to_string(), "the token already has the claim `sub` with another value");
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimError {
    name: String,
}

impl ClaimError {
    /// The claim's name.
    ///
    /// ```
    /// # use authgear_webhook::event::OidcJwtPreCreatePayload;
    /// # let payload: OidcJwtPreCreatePayload = serde_json::from_str(r#"{"user":{"id":"u1",
    /// #   "created_at":"","updated_at":"","is_anonymous":false,"is_verified":false,
    /// #   "is_disabled":false},"jwt":{"payload":{"iss":"https://a.example"}}}"#)?;
    /// let error = payload.allow().add_claim("iss", "https://b.example").unwrap_err();
    /// assert_eq!(error.name(), "iss");
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the token already has the claim `{}` with another value",
            self.name
        )
    }
}

impl std::error::Error for ClaimError {}
