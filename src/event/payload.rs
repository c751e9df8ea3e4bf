//! The `payload` of an event: one typed variant per event type, and one for the rest.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{
    misfit,
    models::{AuthenticationContext, Identification, Identity, Session, User},
};

/// Declares [`Payload`] from the table of event types: the enum, its `type` string, whether
/// Authgear waits for an answer, parsing from `(type, payload)` and serialising.
macro_rules! payloads {
    (
        blocking { $( $blocking:ident($blocking_payload:ty) = $blocking_type:literal, )* }
        non_blocking { $( $other:ident($other_payload:ty) = $other_type:literal, )* }
    ) => {
        /// The `payload` of an [`Event`](super::Event), typed by the event's `type`.
        ///
        /// One variant per event type Authgear documents; a type this crate does not know
        /// (Authgear adds some over time, and portal-only `project.*` events) is kept as data
        /// in [`Payload::Unknown`], never refused.
        ///
        /// ```
        /// use authgear_webhook::event::Payload;
        ///
        /// fn describe(payload: &Payload) -> String {
        ///     match payload {
        ///         Payload::UserCreated(created) => format!("new user {}", created.user.id),
        ///         Payload::Unknown { event_type, .. } => format!("{event_type} (unknown)"),
        ///         other => other.event_type().to_owned(),
        ///     }
        /// }
        /// # let _ = describe;
        /// ```
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum Payload {
            $(
                #[doc = concat!("`", $blocking_type, "` (blocking: Authgear waits for an answer).")]
                $blocking($blocking_payload),
            )*
            $(
                #[doc = concat!("`", $other_type, "`.")]
                $other($other_payload),
            )*
            /// An event type this version of the crate does not know: its `type` and raw
            /// `payload`, kept as sent.
            Unknown {
                /// The event's `type`.
                event_type: String,
                /// The raw `payload`.
                payload: Value,
            },
            /// A known event type whose `payload` does not fit this crate's model (a newer
            /// server, or a field the crate got wrong): kept as sent, with the reason. A
            /// verified delivery is never refused for its shape; answer a blocking one with
            /// [`Answer::allow`](super::Answer::allow) or [`Answer::deny`](super::Answer::deny),
            /// which fit every blocking event.
            OffModel {
                /// The event's `type`.
                event_type: String,
                /// The raw `payload` (`null` when the delivery had none).
                payload: Value,
                /// Why it did not fit, e.g. `/payload/user: invalid type: string, expected a
                /// boolean` (where, and serde's message without the value).
                reason: String,
            },
        }

        impl Payload {
            /// The event's `type`, e.g. `"user.pre_create"`.
            ///
            /// ```
            /// # use authgear_webhook::event::Payload;
            /// let payload = Payload::Unknown {
            ///     event_type: "project.app.created".to_owned(),
            ///     payload: serde_json::json!({}),
            /// };
            /// assert_eq!(payload.event_type(), "project.app.created");
            /// ```
            pub fn event_type(&self) -> &str {
                match self {
                    $( Self::$blocking(_) => $blocking_type, )*
                    $( Self::$other(_) => $other_type, )*
                    Self::Unknown { event_type, .. } | Self::OffModel { event_type, .. } => {
                        event_type
                    }
                }
            }

            /// Whether Authgear waits for an answer to this event. `false` for
            /// [`Payload::Unknown`]: see [`is_blocking_type`](super::is_blocking_type); for
            /// [`Payload::OffModel`], whether its type is a blocking one.
            ///
            /// ```
            /// # use authgear_webhook::event::Payload;
            /// let payload = Payload::Unknown {
            ///     event_type: "project.app.created".to_owned(),
            ///     payload: serde_json::json!({}),
            /// };
            /// assert!(!payload.is_blocking());
            /// ```
            pub fn is_blocking(&self) -> bool {
                match self {
                    Self::OffModel { event_type, .. } => BLOCKING_TYPES.contains(&event_type.as_str()),
                    _ => matches!(self, $( Self::$blocking(_) )|*),
                }
            }

            /// Why a known type's payload did not fit the model ([`Payload::OffModel`]);
            /// `None` for every other payload.
            ///
            /// ```
            /// # use authgear_webhook::event::Payload;
            /// let payload = Payload::Unknown {
            ///     event_type: "project.app.created".to_owned(),
            ///     payload: serde_json::json!({}),
            /// };
            /// assert_eq!(payload.off_model_reason(), None);
            /// ```
            pub fn off_model_reason(&self) -> Option<&str> {
                match self {
                    Self::OffModel { reason, .. } => Some(reason),
                    _ => None,
                }
            }


            /// Parses the `payload` of an event of type `event_type`; one that does not fit
            /// is kept as [`Payload::OffModel`].
            pub(crate) fn from_parts(event_type: String, payload: Value) -> Self {
                fn typed<T: serde::de::DeserializeOwned>(
                    payload: &Value,
                    variant: fn(T) -> Payload,
                ) -> Result<Payload, String> {
                    misfit::typed(payload, "/payload").map(variant)
                }
                let typed = match event_type.as_str() {
                    $( $blocking_type => typed(&payload, Self::$blocking), )*
                    $( $other_type => typed(&payload, Self::$other), )*
                    _ => return Self::Unknown { event_type, payload },
                };
                typed.unwrap_or_else(|reason| Self::OffModel { event_type, payload, reason })
            }
        }

        /// The `type` of every blocking event (Authgear waits for its answer), in the order
        /// of Authgear's documentation: the types of the blocking [`Payload`] variants.
        ///
        /// ```
        /// use authgear_webhook::event::{BLOCKING_TYPES, is_blocking_type};
        ///
        /// assert_eq!(BLOCKING_TYPES.len(), 9);
        /// assert_eq!(BLOCKING_TYPES[0], "user.pre_create");
        /// assert!(BLOCKING_TYPES.iter().all(|event_type| is_blocking_type(event_type)));
        /// ```
        pub const BLOCKING_TYPES: &[&str] = &[$( $blocking_type ),*];

        /// The `type` of every non-blocking event (Authgear does not wait for an answer),
        /// in the order of Authgear's documentation: the types of the other [`Payload`]
        /// variants. Together with [`BLOCKING_TYPES`], every type this crate knows.
        ///
        /// ```
        /// use authgear_webhook::event::{NON_BLOCKING_TYPES, is_blocking_type};
        ///
        /// assert_eq!(NON_BLOCKING_TYPES[0], "user.created");
        /// assert!(NON_BLOCKING_TYPES.contains(&"usage.alert.triggered"));
        /// assert!(!NON_BLOCKING_TYPES.iter().any(|event_type| is_blocking_type(event_type)));
        /// ```
        pub const NON_BLOCKING_TYPES: &[&str] = &[$( $other_type ),*];

        /// Writes the payload object alone (the `type` is the envelope's).
        impl Serialize for Payload {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( Self::$blocking(payload) => payload.serialize(serializer), )*
                    $( Self::$other(payload) => payload.serialize(serializer), )*
                    Self::Unknown { payload, .. } | Self::OffModel { payload, .. } => {
                        payload.serialize(serializer)
                    }
                }
            }
        }
    };
}

payloads! {
    blocking {
        UserPreCreate(UserPreCreatePayload) = "user.pre_create",
        UserProfilePreUpdate(UserProfilePreUpdatePayload) = "user.profile.pre_update",
        UserPreScheduleDeletion(UserPreScheduleDeletionPayload) = "user.pre_schedule_deletion",
        UserPreScheduleAnonymization(UserPreScheduleAnonymizationPayload) = "user.pre_schedule_anonymization",
        OidcJwtPreCreate(OidcJwtPreCreatePayload) = "oidc.jwt.pre_create",
        OidcIdTokenPreCreate(OidcIdTokenPreCreatePayload) = "oidc.id_token.pre_create",
        AuthenticationPreInitialize(AuthenticationPreInitializePayload) = "authentication.pre_initialize",
        AuthenticationPostIdentified(AuthenticationPostIdentifiedPayload) = "authentication.post_identified",
        AuthenticationPreAuthenticated(AuthenticationPreAuthenticatedPayload) = "authentication.pre_authenticated",
    }
    non_blocking {
        UserCreated(UserCreatedPayload) = "user.created",
        UserAuthenticated(UserSessionPayload) = "user.authenticated",
        UserReauthenticated(UserSessionPayload) = "user.reauthenticated",
        UserProfileUpdated(UserPayload) = "user.profile.updated",
        UserDisabled(UserDisabledPayload) = "user.disabled",
        UserReenabled(UserPayload) = "user.reenabled",
        UserAnonymousPromoted(UserAnonymousPromotedPayload) = "user.anonymous.promoted",
        UserDeletionScheduled(UserPayload) = "user.deletion_scheduled",
        UserDeletionUnscheduled(UserPayload) = "user.deletion_unscheduled",
        UserDeleted(UserDeletedPayload) = "user.deleted",
        UserAnonymizationScheduled(UserPayload) = "user.anonymization_scheduled",
        UserAnonymizationUnscheduled(UserPayload) = "user.anonymization_unscheduled",
        UserAnonymized(UserPayload) = "user.anonymized",
        IdentityEmailAdded(IdentityPayload) = "identity.email.added",
        IdentityEmailRemoved(IdentityPayload) = "identity.email.removed",
        IdentityEmailUpdated(IdentityUpdatedPayload) = "identity.email.updated",
        IdentityEmailVerified(IdentityPayload) = "identity.email.verified",
        IdentityEmailUnverified(IdentityPayload) = "identity.email.unverified",
        IdentityPhoneAdded(IdentityPayload) = "identity.phone.added",
        IdentityPhoneRemoved(IdentityPayload) = "identity.phone.removed",
        IdentityPhoneUpdated(IdentityUpdatedPayload) = "identity.phone.updated",
        IdentityPhoneVerified(IdentityPayload) = "identity.phone.verified",
        IdentityPhoneUnverified(IdentityPayload) = "identity.phone.unverified",
        IdentityUsernameAdded(IdentityPayload) = "identity.username.added",
        IdentityUsernameRemoved(IdentityPayload) = "identity.username.removed",
        IdentityUsernameUpdated(IdentityUpdatedPayload) = "identity.username.updated",
        IdentityUsernameVerified(IdentityPayload) = "identity.username.verified",
        IdentityUsernameUnverified(IdentityPayload) = "identity.username.unverified",
        IdentityOauthConnected(IdentityPayload) = "identity.oauth.connected",
        IdentityOauthDisconnected(IdentityPayload) = "identity.oauth.disconnected",
        IdentityBiometricEnabled(IdentityPayload) = "identity.biometric.enabled",
        IdentityBiometricDisabled(IdentityPayload) = "identity.biometric.disabled",
        UsageAlertTriggered(UsageAlertPayload) = "usage.alert.triggered",
    }
}

/// `user.pre_create` (blocking): a user is about to be created. Answer with
/// [`allow`](Self::allow) (optionally setting attributes, roles and groups) or
/// [`Answer::deny`](super::Answer::deny).
///
/// ```
/// use authgear_webhook::event::UserPreCreatePayload;
///
/// let payload: UserPreCreatePayload = serde_json::from_value(serde_json::json!({
///     "user": {
///         "id": "u1", "created_at": "2006-01-02T03:04:05Z", "updated_at": "2006-01-02T03:04:05Z",
///         "is_anonymous": false, "is_verified": true, "is_disabled": false,
///         "standard_attributes": { "email": "jane@example.com" }
///     },
///     "identities": null
/// }))?;
/// assert_eq!(payload.user.email(), Some("jane@example.com"));
/// assert!(payload.identities().is_empty());
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UserPreCreatePayload {
    /// The user about to be created.
    pub user: User,
    /// Its identities.
    #[serde(default)]
    pub identities: Option<Vec<Identity>>,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl UserPreCreatePayload {
    /// The identities (empty when absent or `null`).
    ///
    /// ```
    /// # use authgear_webhook::event::UserPreCreatePayload;
    /// # let payload: UserPreCreatePayload = serde_json::from_value(serde_json::json!({
    /// #     "user": { "id": "u1", "created_at": "", "updated_at": "",
    /// #         "is_anonymous": false, "is_verified": true, "is_disabled": false },
    /// #     "identities": [{ "id": "i1", "created_at": "", "updated_at": "",
    /// #         "type": "login_id", "claims": { "email": "jane@example.com" } }]
    /// # }))?;
    /// let emails: Vec<&str> = payload.identities().iter().filter_map(|i| i.email()).collect();
    /// assert_eq!(emails, ["jane@example.com"]);
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn identities(&self) -> &[Identity] {
        self.identities.as_deref().unwrap_or_default()
    }
}

/// `user.profile.pre_update` (blocking): a user's profile is about to be updated.
///
/// ```
/// use authgear_webhook::event::UserProfilePreUpdatePayload;
///
/// let payload: UserProfilePreUpdatePayload = serde_json::from_value(serde_json::json!({
///     "user": {
///         "id": "u1", "created_at": "2006-01-02T03:04:05Z", "updated_at": "2006-01-02T03:04:05Z",
///         "is_anonymous": false, "is_verified": true, "is_disabled": false,
///         "standard_attributes": { "name": "Chris" }
///     }
/// }))?;
/// assert_eq!(payload.user.standard_attribute("name"), Some(&serde_json::json!("Chris")));
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UserProfilePreUpdatePayload {
    /// The user, with the profile as it will be after the update.
    pub user: User,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `user.pre_schedule_deletion` (blocking): a user is about to be scheduled for deletion.
///
/// ```
/// use authgear_webhook::event::UserPreScheduleDeletionPayload;
///
/// let payload: UserPreScheduleDeletionPayload = serde_json::from_value(serde_json::json!({
///     "user": { "id": "u1", "created_at": "", "updated_at": "",
///         "is_anonymous": false, "is_verified": true, "is_disabled": false }
/// }))?;
/// assert_eq!(payload.user.id, "u1");
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UserPreScheduleDeletionPayload {
    /// The user.
    pub user: User,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `user.pre_schedule_anonymization` (blocking): a user is about to be scheduled for
/// anonymization.
///
/// ```
/// use authgear_webhook::event::UserPreScheduleAnonymizationPayload;
///
/// let payload: UserPreScheduleAnonymizationPayload = serde_json::from_value(serde_json::json!({
///     "user": { "id": "u1", "created_at": "", "updated_at": "",
///         "is_anonymous": false, "is_verified": true, "is_disabled": false }
/// }))?;
/// assert_eq!(payload.user.id, "u1");
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UserPreScheduleAnonymizationPayload {
    /// The user.
    pub user: User,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `oidc.jwt.pre_create` (blocking): an access token (JWT) is about to be issued. Answer with
/// [`allow`](Self::allow) and [`add_claim`](super::TokenAnswer::add_claim) to add claims.
///
/// ```
/// use authgear_webhook::event::OidcJwtPreCreatePayload;
///
/// let payload: OidcJwtPreCreatePayload = serde_json::from_value(serde_json::json!({
///     "user": { "id": "u1", "created_at": "", "updated_at": "",
///         "is_anonymous": false, "is_verified": true, "is_disabled": false },
///     "jwt": { "payload": { "iss": "https://myapp.authgear.cloud", "sub": "u1" } }
/// }))?;
/// assert_eq!(payload.jwt.payload["sub"], "u1");
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OidcJwtPreCreatePayload {
    /// The user the token is for.
    pub user: User,
    /// The user's identities.
    #[serde(default)]
    pub identities: Option<Vec<Identity>>,
    /// The token about to be issued.
    pub jwt: Token,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `oidc.id_token.pre_create` (blocking): an ID token is about to be issued. Answer with
/// [`allow`](Self::allow) and [`add_claim`](super::TokenAnswer::add_claim) to add claims.
///
/// ```
/// use authgear_webhook::event::OidcIdTokenPreCreatePayload;
///
/// let payload: OidcIdTokenPreCreatePayload = serde_json::from_value(serde_json::json!({
///     "user": { "id": "u1", "created_at": "", "updated_at": "",
///         "is_anonymous": false, "is_verified": true, "is_disabled": false },
///     "identities": [],
///     "id_token": { "payload": { "sub": "u1" } }
/// }))?;
/// assert_eq!(payload.id_token.payload["sub"], "u1");
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OidcIdTokenPreCreatePayload {
    /// The user the token is for.
    pub user: User,
    /// The user's identities.
    #[serde(default)]
    pub identities: Option<Vec<Identity>>,
    /// The token about to be issued.
    pub id_token: Token,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A token about to be issued: `{"payload": {...}}`, its claims.
///
/// ```
/// use authgear_webhook::event::Token;
///
/// let token: Token = serde_json::from_str(r#"{"payload":{"aud":["my-client"]}}"#)?;
/// assert_eq!(token.payload["aud"][0], "my-client");
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Token {
    /// The token's claims, as Authgear will issue them.
    pub payload: Map<String, Value>,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `authentication.pre_initialize` (blocking): an authentication flow starts; no user yet.
///
/// ```
/// use authgear_webhook::event::AuthenticationPreInitializePayload;
///
/// let payload: AuthenticationPreInitializePayload = serde_json::from_value(serde_json::json!({
///     "authentication_context": { "user": null, "amr": [] }
/// }))?;
/// assert!(payload.authentication_context.user.is_none());
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthenticationPreInitializePayload {
    /// The authentication in progress.
    pub authentication_context: AuthenticationContext,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `authentication.post_identified` (blocking): the end user has identified themselves.
///
/// ```
/// use authgear_webhook::event::{AuthenticationPostIdentifiedPayload, IdentificationMethod};
///
/// let payload: AuthenticationPostIdentifiedPayload = serde_json::from_value(serde_json::json!({
///     "identification": { "identification": "email", "identity": null },
///     "authentication_context": { "user": null }
/// }))?;
/// assert_eq!(payload.identification.identification, IdentificationMethod::Email);
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthenticationPostIdentifiedPayload {
    /// How the end user identified themselves.
    pub identification: Identification,
    /// The authentication in progress.
    pub authentication_context: AuthenticationContext,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `authentication.pre_authenticated` (blocking): the end user is about to be authenticated.
///
/// ```
/// use authgear_webhook::event::AuthenticationPreAuthenticatedPayload;
///
/// let payload: AuthenticationPreAuthenticatedPayload = serde_json::from_value(serde_json::json!({
///     "authentication_context": { "amr": ["pwd"] }
/// }))?;
/// assert_eq!(payload.authentication_context.amr(), ["pwd"]);
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthenticationPreAuthenticatedPayload {
    /// The authentication in progress.
    pub authentication_context: AuthenticationContext,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `user.created`: a user was created.
///
/// ```
/// use authgear_webhook::event::UserCreatedPayload;
///
/// let payload: UserCreatedPayload = serde_json::from_value(serde_json::json!({
///     "user": { "id": "u1", "created_at": "", "updated_at": "",
///         "is_anonymous": false, "is_verified": true, "is_disabled": false },
///     "identities": []
/// }))?;
/// assert_eq!(payload.user.id, "u1");
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UserCreatedPayload {
    /// The new user.
    pub user: User,
    /// Its identities.
    #[serde(default)]
    pub identities: Option<Vec<Identity>>,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `user.authenticated` and `user.reauthenticated`: a user signed in (again).
///
/// `session` is `null` in a `user.authenticated` sent after a SAML login (the server's
/// `Session *model.Session`, left nil by `pkg/lib/saml`), and `continue_from_session` is
/// set when an existing session was continued.
///
/// ```
/// use authgear_webhook::event::{SessionType, UserSessionPayload};
///
/// let payload: UserSessionPayload = serde_json::from_value(serde_json::json!({
///     "user": { "id": "u1", "created_at": "", "updated_at": "",
///         "is_anonymous": false, "is_verified": true, "is_disabled": false },
///     "session": { "id": "s1", "created_at": "", "updated_at": "", "type": "idp" }
/// }))?;
/// let session = payload.session.as_ref().map(|session| &session.session_type);
/// assert_eq!(session, Some(&SessionType::Idp));
/// assert!(payload.continue_from_session.is_none());
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UserSessionPayload {
    /// The user.
    pub user: User,
    /// The session; `None` when the server sends `null` (SAML logins).
    #[serde(default)]
    pub session: Option<Session>,
    /// The session that was continued, when the login continued one (`omitempty`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_from_session: Option<Session>,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The payload of the events that carry only the user: `user.profile.updated`,
/// `user.reenabled`, `user.deletion_scheduled`, `user.deletion_unscheduled`,
/// `user.anonymization_scheduled`, `user.anonymization_unscheduled`, `user.anonymized`.
///
/// ```
/// use authgear_webhook::event::UserPayload;
///
/// let payload: UserPayload = serde_json::from_value(serde_json::json!({
///     "user": { "id": "u1", "created_at": "", "updated_at": "",
///         "is_anonymous": false, "is_verified": true, "is_disabled": false }
/// }))?;
/// assert_eq!(payload.user.id, "u1");
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UserPayload {
    /// The user.
    pub user: User,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `user.disabled`: a user was disabled, perhaps for a while only.
///
/// ```
/// use authgear_webhook::event::UserDisabledPayload;
///
/// let payload: UserDisabledPayload = serde_json::from_value(serde_json::json!({
///     "user": { "id": "u1", "created_at": "", "updated_at": "",
///         "is_anonymous": false, "is_verified": true, "is_disabled": true },
///     "temporarily_disabled_until": "2030-01-01T00:00:00Z"
/// }))?;
/// assert!(payload.temporarily_disabled_until.is_some());
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UserDisabledPayload {
    /// The user.
    pub user: User,
    /// Start of a temporary disable (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporarily_disabled_from: Option<String>,
    /// End of a temporary disable (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporarily_disabled_until: Option<String>,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `user.anonymous.promoted`: an anonymous user became a regular one.
///
/// ```
/// use authgear_webhook::event::UserAnonymousPromotedPayload;
///
/// let user = serde_json::json!({ "id": "u1", "created_at": "", "updated_at": "",
///     "is_anonymous": false, "is_verified": true, "is_disabled": false });
/// let payload: UserAnonymousPromotedPayload = serde_json::from_value(serde_json::json!({
///     "anonymous_user": user, "user": user, "identities": []
/// }))?;
/// assert_eq!(payload.anonymous_user.id, payload.user.id);
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UserAnonymousPromotedPayload {
    /// The user as it was, anonymous.
    pub anonymous_user: User,
    /// The user as it is now.
    pub user: User,
    /// Its identities.
    #[serde(default)]
    pub identities: Option<Vec<Identity>>,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `user.deleted`: a user was deleted.
///
/// ```
/// use authgear_webhook::event::UserDeletedPayload;
///
/// let payload: UserDeletedPayload = serde_json::from_value(serde_json::json!({
///     "user": { "id": "u1", "created_at": "", "updated_at": "",
///         "is_anonymous": false, "is_verified": true, "is_disabled": false }
/// }))?;
/// assert_eq!(payload.reason, None);
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UserDeletedPayload {
    /// The user, as it was.
    pub user: User,
    /// Why, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The payload of `identity.{email,phone,username}.{added,removed,verified,unverified}`,
/// `identity.oauth.{connected,disconnected}` and `identity.biometric.{enabled,disabled}`.
///
/// ```
/// use authgear_webhook::event::{IdentityPayload, IdentityType};
///
/// let payload: IdentityPayload = serde_json::from_value(serde_json::json!({
///     "user": { "id": "u1", "created_at": "", "updated_at": "",
///         "is_anonymous": false, "is_verified": true, "is_disabled": false },
///     "identity": { "id": "i1", "created_at": "", "updated_at": "", "type": "oauth" }
/// }))?;
/// assert_eq!(payload.identity.identity_type, IdentityType::Oauth);
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IdentityPayload {
    /// The user.
    pub user: User,
    /// The identity.
    pub identity: Identity,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The payload of `identity.{email,phone,username}.updated`.
///
/// ```
/// use authgear_webhook::event::IdentityUpdatedPayload;
///
/// let identity = |email: &str| serde_json::json!({ "id": "i1", "created_at": "",
///     "updated_at": "", "type": "login_id", "claims": { "email": email } });
/// let payload: IdentityUpdatedPayload = serde_json::from_value(serde_json::json!({
///     "user": { "id": "u1", "created_at": "", "updated_at": "",
///         "is_anonymous": false, "is_verified": true, "is_disabled": false },
///     "new_identity": identity("new@example.com"),
///     "old_identity": identity("old@example.com")
/// }))?;
/// assert_eq!(payload.new_identity.email(), Some("new@example.com"));
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IdentityUpdatedPayload {
    /// The user.
    pub user: User,
    /// The identity after the update.
    pub new_identity: Identity,
    /// The identity before the update.
    pub old_identity: Identity,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `usage.alert.triggered`: a usage quota of the project is near or over its limit.
///
/// ```
/// use authgear_webhook::event::UsageAlertPayload;
///
/// let payload: UsageAlertPayload = serde_json::from_value(serde_json::json!({
///     "usage": { "name": "sms", "action": "alert", "period": "month",
///         "quota": 1000, "current_value": 900, "plan_name": "business" }
/// }))?;
/// assert_eq!(payload.usage.current_value, Some(900));
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UsageAlertPayload {
    /// The usage that triggered the alert.
    pub usage: UsageAlert,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `usage` in [`UsageAlertPayload`] (`UsageAlertPayload` in the server's
/// `pkg/api/event/nonblocking/usage_alert_triggered.go`).
///
/// ```
/// use authgear_webhook::event::{UsageAlert, UsageName};
///
/// let usage: UsageAlert = serde_json::from_str(r#"{"name":"email","quota":100}"#)?;
/// assert_eq!(usage.name, Some(UsageName::Email));
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UsageAlert {
    /// What is counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<UsageName>,
    /// What happens at the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<UsageLimitAction>,
    /// The quota's period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<UsageLimitPeriod>,
    /// The quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    /// The usage so far in the period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_value: Option<i64>,
    /// The project's plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_name: Option<String>,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

string_enum! {
    /// `usage.name`: what a usage alert counts (`pkg/api/model/usage.go`).
    ///
    /// ```
    /// use authgear_webhook::event::UsageName;
    ///
    /// assert_eq!(UsageName::from("sms"), UsageName::Sms);
    /// ```
    pub enum UsageName {
        /// User exports.
        UserExport = "user_export",
        /// User imports.
        UserImport = "user_import",
        /// Emails sent.
        Email = "email",
        /// WhatsApp messages sent.
        Whatsapp = "whatsapp",
        /// SMS sent.
        Sms = "sms",
    }
}

string_enum! {
    /// `usage.action`: what happens at the limit.
    ///
    /// ```
    /// use authgear_webhook::event::UsageLimitAction;
    ///
    /// assert_eq!(UsageLimitAction::Block.as_str(), "block");
    /// ```
    pub enum UsageLimitAction {
        /// An alert only.
        Alert = "alert",
        /// Further use is blocked.
        Block = "block",
    }
}

string_enum! {
    /// `usage.period`: the quota's period.
    ///
    /// ```
    /// use authgear_webhook::event::UsageLimitPeriod;
    ///
    /// assert_eq!(UsageLimitPeriod::from("month"), UsageLimitPeriod::Month);
    /// ```
    pub enum UsageLimitPeriod {
        /// A day.
        Day = "day",
        /// A month.
        Month = "month",
    }
}
