//! Allowing a `user.*` blocking event, with mutations of the user.

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::{Allow, Answer, Inner};
use crate::event::{
    UserPreCreatePayload, UserPreScheduleAnonymizationPayload, UserPreScheduleDeletionPayload,
    UserProfilePreUpdatePayload, models::User,
};

/// Allows a `user.*` blocking event (`user.pre_create`, `user.profile.pre_update`,
/// `user.pre_schedule_deletion`, `user.pre_schedule_anonymization`), optionally changing
/// the user: `mutations.user`. Made by the payload's `allow()`.
///
/// Each of standard attributes, custom attributes, roles and groups, once set, REPLACES the
/// user's whole value. [`standard_attribute`](Self::standard_attribute) and
/// [`custom_attribute`](Self::custom_attribute) therefore start from the user's current
/// attributes, as the event shows them, and change one.
///
/// ```
/// use authgear_webhook::event::{Answer, Event, Payload};
///
/// # let event: Event = serde_json::from_str(r#"{"id":"1","seq":1,"type":"user.pre_create",
/// #   "payload":{"user":{"id":"u1","created_at":"","updated_at":"","is_anonymous":false,
/// #   "is_verified":false,"is_disabled":false,
/// #   "standard_attributes":{"email":"jane@example.com"}}},"context":{"timestamp":0}}"#)?;
/// let answer: Answer = match &event.payload {
///     Payload::UserPreCreate(payload) => payload
///         .allow()
///         .standard_attribute("nickname", "jane")
///         .roles(["member"])
///         .into(),
///     _ => Answer::allow(),
/// };
/// assert_eq!(
///     serde_json::to_value(&answer)?,
///     serde_json::json!({
///         "is_allowed": true,
///         "mutations": { "user": {
///             "standard_attributes": { "email": "jane@example.com", "nickname": "jane" },
///             "roles": ["member"]
///         } }
///     }),
/// );
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct UserAnswer {
    allow: Allow,
    /// The user's attributes as the event shows them, until a mutation replaces them.
    current_standard: Map<String, Value>,
    current_custom: Map<String, Value>,
}

impl UserAnswer {
    fn new(user: &User) -> Self {
        Self {
            allow: Allow::default(),
            current_standard: user.standard_attributes.clone().unwrap_or_default(),
            current_custom: user.custom_attributes.clone().unwrap_or_default(),
        }
    }

    /// Replaces all the user's standard attributes with `attributes`.
    ///
    /// ```
    /// # use authgear_webhook::event::UserProfilePreUpdatePayload;
    /// # let payload: UserProfilePreUpdatePayload = serde_json::from_str(r#"{"user":{"id":"u1",
    /// #   "created_at":"","updated_at":"","is_anonymous":false,"is_verified":false,
    /// #   "is_disabled":false}}"#)?;
    /// let mut attributes = serde_json::Map::new();
    /// attributes.insert("name".into(), "John".into());
    /// let answer = payload.allow().standard_attributes(attributes);
    /// assert_eq!(
    ///     serde_json::to_value(&answer)?["mutations"]["user"]["standard_attributes"],
    ///     serde_json::json!({ "name": "John" }),
    /// );
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn standard_attributes(mut self, attributes: Map<String, Value>) -> Self {
        self.allow.user.standard_attributes = Some(attributes);
        self
    }

    /// Replaces all the user's custom attributes with `attributes`.
    ///
    /// ```
    /// # use authgear_webhook::event::UserPreCreatePayload;
    /// # let payload: UserPreCreatePayload = serde_json::from_str(r#"{"user":{"id":"u1",
    /// #   "created_at":"","updated_at":"","is_anonymous":false,"is_verified":false,
    /// #   "is_disabled":false}}"#)?;
    /// let mut attributes = serde_json::Map::new();
    /// attributes.insert("age".into(), 30.into());
    /// let answer = payload.allow().custom_attributes(attributes);
    /// assert_eq!(
    ///     serde_json::to_value(&answer)?["mutations"]["user"]["custom_attributes"]["age"],
    ///     30,
    /// );
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn custom_attributes(mut self, attributes: Map<String, Value>) -> Self {
        self.allow.user.custom_attributes = Some(attributes);
        self
    }

    /// Sets one standard attribute, keeping the others: the first call starts from the
    /// user's current standard attributes (or from those given to
    /// [`standard_attributes`](Self::standard_attributes)).
    ///
    /// ```
    /// # use authgear_webhook::event::UserPreCreatePayload;
    /// # let payload: UserPreCreatePayload = serde_json::from_str(r#"{"user":{"id":"u1",
    /// #   "created_at":"","updated_at":"","is_anonymous":false,"is_verified":false,
    /// #   "is_disabled":false,"standard_attributes":{"email":"jane@example.com"}}}"#)?;
    /// let answer = payload.allow().standard_attribute("name", "Jane");
    /// assert_eq!(
    ///     serde_json::to_value(&answer)?["mutations"]["user"]["standard_attributes"],
    ///     serde_json::json!({ "email": "jane@example.com", "name": "Jane" }),
    /// );
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn standard_attribute(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        let current = &mut self.current_standard;
        self.allow
            .user
            .standard_attributes
            .get_or_insert_with(|| std::mem::take(current))
            .insert(name.into(), value.into());
        self
    }

    /// Sets one custom attribute, keeping the others: the first call starts from the user's
    /// current custom attributes (or from those given to
    /// [`custom_attributes`](Self::custom_attributes)).
    ///
    /// ```
    /// # use authgear_webhook::event::UserPreCreatePayload;
    /// # let payload: UserPreCreatePayload = serde_json::from_str(r#"{"user":{"id":"u1",
    /// #   "created_at":"","updated_at":"","is_anonymous":false,"is_verified":false,
    /// #   "is_disabled":false,"custom_attributes":{"plan":"free"}}}"#)?;
    /// let answer = payload.allow().custom_attribute("referrer", "newsletter");
    /// assert_eq!(
    ///     serde_json::to_value(&answer)?["mutations"]["user"]["custom_attributes"],
    ///     serde_json::json!({ "plan": "free", "referrer": "newsletter" }),
    /// );
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn custom_attribute(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        let current = &mut self.current_custom;
        self.allow
            .user
            .custom_attributes
            .get_or_insert_with(|| std::mem::take(current))
            .insert(name.into(), value.into());
        self
    }

    /// Replaces all the user's roles (role keys).
    ///
    /// ```
    /// # use authgear_webhook::event::UserPreCreatePayload;
    /// # let payload: UserPreCreatePayload = serde_json::from_str(r#"{"user":{"id":"u1",
    /// #   "created_at":"","updated_at":"","is_anonymous":false,"is_verified":false,
    /// #   "is_disabled":false,"roles":["guest"]}}"#)?;
    /// let roles = payload.user.roles().iter().map(String::as_str).chain(["member"]);
    /// let answer = payload.allow().roles(roles);
    /// assert_eq!(
    ///     serde_json::to_value(&answer)?["mutations"]["user"]["roles"],
    ///     serde_json::json!(["guest", "member"]),
    /// );
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn roles<I>(mut self, roles: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.allow.user.roles = Some(roles.into_iter().map(Into::into).collect());
        self
    }

    /// Replaces all the user's groups (group keys).
    ///
    /// ```
    /// # use authgear_webhook::event::UserPreCreatePayload;
    /// # let payload: UserPreCreatePayload = serde_json::from_str(r#"{"user":{"id":"u1",
    /// #   "created_at":"","updated_at":"","is_anonymous":false,"is_verified":false,
    /// #   "is_disabled":false}}"#)?;
    /// let answer = payload.allow().groups(["manager"]);
    /// assert_eq!(
    ///     serde_json::to_value(&answer)?["mutations"]["user"]["groups"],
    ///     serde_json::json!(["manager"]),
    /// );
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn groups<I>(mut self, groups: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.allow.user.groups = Some(groups.into_iter().map(Into::into).collect());
        self
    }
}

impl Serialize for UserAnswer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.allow.serialize(serializer)
    }
}

impl From<UserAnswer> for Answer {
    fn from(answer: UserAnswer) -> Self {
        Self(Inner::Allow(answer.allow))
    }
}

macro_rules! user_allow {
    ($($payload:ty),*) => {$(
        impl $payload {
            /// Allows the event; the [`UserAnswer`](crate::event::UserAnswer) can also
            /// change the user's attributes, roles and groups.
            ///
            /// ```
            /// # use authgear_webhook::event::*;
            /// # let payload: UserPreCreatePayload = serde_json::from_str(r#"{"user":{"id":"u1",
            /// #   "created_at":"","updated_at":"","is_anonymous":false,"is_verified":false,
            /// #   "is_disabled":false}}"#)?;
            /// let answer = payload.allow();
            /// assert_eq!(serde_json::to_string(&answer)?, r#"{"is_allowed":true}"#);
            /// # Ok::<_, serde_json::Error>(())
            /// ```
            pub fn allow(&self) -> UserAnswer {
                UserAnswer::new(&self.user)
            }
        }
    )*};
}

user_allow!(
    UserPreCreatePayload,
    UserProfilePreUpdatePayload,
    UserPreScheduleDeletionPayload,
    UserPreScheduleAnonymizationPayload
);
