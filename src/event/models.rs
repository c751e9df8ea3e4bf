//! The models shared by event payloads: user, identity, session, authentication context.
//!
//! Timestamps are kept as Authgear writes them (RFC 3339 strings); parse them with the date
//! crate of your choice. A field every Authgear version sends, never `null`, is a plain
//! field; anything a server omits (`omitempty`, `omitzero`), or Go may write as `null` (a
//! pointer, a nil map or slice), is an `Option`; `None` is written the way that server
//! writes it: `null` where Go writes a nil pointer, map or slice, absent where Go omits it.
//! Checked field by field against
//! `pkg/api/model/{user,identity,session,identification,authentication,authenticator}.go`
//! and `pkg/api/event/event_payload.go` (see the [module docs](super) for the commit).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An Authgear user.
///
/// ```
/// use authgear_webhook::event::User;
///
/// let user: User = serde_json::from_value(serde_json::json!({
///     "id": "338deafa-400b-4589-a922-2c92d670b757",
///     "created_at": "2006-01-02T03:04:05.123456Z",
///     "updated_at": "2006-01-02T03:04:05.123456Z",
///     "is_anonymous": false,
///     "is_verified": true,
///     "is_disabled": false,
///     "standard_attributes": { "email": "jane@example.com" },
///     "roles": null
/// }))?;
/// assert_eq!(user.email(), Some("jane@example.com"));
/// assert!(user.roles().is_empty());
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct User {
    /// The user's id.
    pub id: String,
    /// When the user was created (RFC 3339).
    pub created_at: String,
    /// When the user was last updated (RFC 3339).
    pub updated_at: String,
    /// Whether the user is anonymous.
    pub is_anonymous: bool,
    /// Whether the user has a verified identity.
    pub is_verified: bool,
    /// Whether the user is disabled.
    pub is_disabled: bool,
    /// Whether the user is deactivated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_deactivated: Option<bool>,
    /// Whether the user is anonymized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_anonymized: Option<bool>,
    /// Whether the user can reauthenticate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_reauthenticate: Option<bool>,
    /// Standard attributes (OIDC claims: `email`, `name`, ...).
    #[serde(default)]
    pub standard_attributes: Option<Map<String, Value>>,
    /// Custom attributes defined in the project.
    #[serde(default)]
    pub custom_attributes: Option<Map<String, Value>>,
    /// Web3 attributes.
    #[serde(default)]
    pub x_web3: Option<Map<String, Value>>,
    /// Role keys.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// Group keys.
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    /// Last login (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login_at: Option<String>,
    /// Why the user is disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_reason: Option<String>,
    /// When the user is scheduled for deletion (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_at: Option<String>,
    /// Why the user is scheduled for deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_reason: Option<String>,
    /// When the user is scheduled for anonymization (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymize_at: Option<String>,
    /// Start of a temporary disable (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporarily_disabled_from: Option<String>,
    /// End of a temporary disable (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporarily_disabled_until: Option<String>,
    /// Start of the account's validity period (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_valid_from: Option<String>,
    /// End of the account's validity period (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_valid_until: Option<String>,
    /// End of the MFA grace period (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_grace_period_end_at: Option<String>,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl User {
    /// The `email` standard attribute, if set.
    ///
    /// ```
    /// # use authgear_webhook::event::User;
    /// # let user: User = serde_json::from_str(r#"{"id":"u","created_at":"","updated_at":"",
    /// #   "is_anonymous":false,"is_verified":false,"is_disabled":false,
    /// #   "standard_attributes":{"email":"jane@example.com"}}"#)?;
    /// let domain = user.email().and_then(|email| email.rsplit_once('@')).map(|(_, d)| d);
    /// assert_eq!(domain, Some("example.com"));
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn email(&self) -> Option<&str> {
        self.standard_attribute("email")?.as_str()
    }

    /// One standard attribute, if set.
    ///
    /// ```
    /// # use authgear_webhook::event::User;
    /// # let user: User = serde_json::from_str(r#"{"id":"u","created_at":"","updated_at":"",
    /// #   "is_anonymous":false,"is_verified":false,"is_disabled":false,
    /// #   "standard_attributes":{"name":"Jane"}}"#)?;
    /// assert_eq!(user.standard_attribute("name"), Some(&serde_json::json!("Jane")));
    /// assert_eq!(user.standard_attribute("nickname"), None);
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn standard_attribute(&self, name: &str) -> Option<&Value> {
        self.standard_attributes.as_ref()?.get(name)
    }

    /// One custom attribute, if set.
    ///
    /// ```
    /// # use authgear_webhook::event::User;
    /// # let user: User = serde_json::from_str(r#"{"id":"u","created_at":"","updated_at":"",
    /// #   "is_anonymous":false,"is_verified":false,"is_disabled":false,
    /// #   "custom_attributes":{"plan":"pro"}}"#)?;
    /// assert_eq!(user.custom_attribute("plan"), Some(&serde_json::json!("pro")));
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn custom_attribute(&self, name: &str) -> Option<&Value> {
        self.custom_attributes.as_ref()?.get(name)
    }

    /// The role keys (empty when absent or `null`).
    ///
    /// ```
    /// # use authgear_webhook::event::User;
    /// # let user: User = serde_json::from_str(r#"{"id":"u","created_at":"","updated_at":"",
    /// #   "is_anonymous":false,"is_verified":false,"is_disabled":false,"roles":["admin"]}"#)?;
    /// assert!(user.roles().iter().any(|role| role == "admin"));
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn roles(&self) -> &[String] {
        self.roles.as_deref().unwrap_or_default()
    }

    /// The group keys (empty when absent or `null`).
    ///
    /// ```
    /// # use authgear_webhook::event::User;
    /// # let user: User = serde_json::from_str(r#"{"id":"u","created_at":"","updated_at":"",
    /// #   "is_anonymous":false,"is_verified":false,"is_disabled":false,"groups":null}"#)?;
    /// assert!(user.groups().is_empty());
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn groups(&self) -> &[String] {
        self.groups.as_deref().unwrap_or_default()
    }
}

/// An identity of a user: a login ID, an OAuth account, a passkey, ...
///
/// ```
/// use authgear_webhook::event::{Identity, IdentityType};
///
/// let identity: Identity = serde_json::from_value(serde_json::json!({
///     "id": "239d585d-9b90-4148-9aa2-2e3131b5847a",
///     "created_at": "2006-01-02T03:04:05.123456Z",
///     "updated_at": "2006-01-02T03:04:05.123456Z",
///     "type": "login_id",
///     "claims": { "email": "jane@example.com" }
/// }))?;
/// assert_eq!(identity.identity_type, IdentityType::LoginId);
/// assert_eq!(identity.email(), Some("jane@example.com"));
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Identity {
    /// The identity's id.
    pub id: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it was last updated (RFC 3339).
    pub updated_at: String,
    /// `type`: what kind of identity.
    #[serde(rename = "type")]
    pub identity_type: IdentityType,
    /// The user it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Its claims (`email`, `phone_number`, provider claims, ...).
    #[serde(default)]
    pub claims: Option<Map<String, Value>>,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Identity {
    /// The `email` claim, if any.
    ///
    /// ```
    /// # use authgear_webhook::event::Identity;
    /// # let identity: Identity = serde_json::from_str(r#"{"id":"i","created_at":"",
    /// #   "updated_at":"","type":"oauth","claims":{"email":"jane@example.com"}}"#)?;
    /// assert_eq!(identity.email(), Some("jane@example.com"));
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn email(&self) -> Option<&str> {
        self.claims.as_ref()?.get("email")?.as_str()
    }
}

string_enum! {
    /// `Identity.type`.
    ///
    /// ```
    /// use authgear_webhook::event::IdentityType;
    ///
    /// assert_eq!(IdentityType::from("oauth"), IdentityType::Oauth);
    /// ```
    pub enum IdentityType {
        /// Email, phone or username.
        LoginId = "login_id",
        /// An OAuth provider account.
        Oauth = "oauth",
        /// An anonymous user's key.
        Anonymous = "anonymous",
        /// A device's biometric key.
        Biometric = "biometric",
        /// A passkey.
        Passkey = "passkey",
        /// Sign-In with Ethereum.
        Siwe = "siwe",
        /// An LDAP account.
        Ldap = "ldap",
    }
}

/// A session. Authgear writes most of its keys in camelCase; the fields here are snake_case.
///
/// ```
/// use authgear_webhook::event::{Session, SessionType};
///
/// let session: Session = serde_json::from_value(serde_json::json!({
///     "id": "6e6e5d9b-7f85-4a8f-a157-2de94694dfea",
///     "created_at": "2006-01-02T03:04:05.123456Z",
///     "updated_at": "2006-01-02T03:04:05.123456Z",
///     "type": "idp",
///     "lastAccessedByIP": "127.0.0.1",
///     "clientID": null
/// }))?;
/// assert_eq!(session.session_type, SessionType::Idp);
/// assert_eq!(session.last_accessed_by_ip.as_deref(), Some("127.0.0.1"));
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Session {
    /// The session's id.
    pub id: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it was last updated (RFC 3339).
    pub updated_at: String,
    /// `type`: what kind of session.
    #[serde(rename = "type")]
    pub session_type: SessionType,
    /// `amr`: the authentication methods used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// `lastAccessedAt` (RFC 3339).
    #[serde(
        rename = "lastAccessedAt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_accessed_at: Option<String>,
    /// `createdByIP`.
    #[serde(
        rename = "createdByIP",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub created_by_ip: Option<String>,
    /// `lastAccessedByIP`.
    #[serde(
        rename = "lastAccessedByIP",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_accessed_by_ip: Option<String>,
    /// `lastAccessedByIPCountryCode`.
    #[serde(
        rename = "lastAccessedByIPCountryCode",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_accessed_by_ip_country_code: Option<String>,
    /// `lastAccessedByIPEnglishCountryName`.
    #[serde(
        rename = "lastAccessedByIPEnglishCountryName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_accessed_by_ip_english_country_name: Option<String>,
    /// `clientID`: the OAuth client, if any.
    #[serde(rename = "clientID", default)]
    pub client_id: Option<String>,
    /// `displayName`: e.g. the browser's name.
    #[serde(
        rename = "displayName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
    /// `applicationName`.
    #[serde(
        rename = "applicationName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub application_name: Option<String>,
    /// `userAgent`.
    #[serde(rename = "userAgent", default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

string_enum! {
    /// `Session.type`.
    ///
    /// ```
    /// use authgear_webhook::event::SessionType;
    ///
    /// assert_eq!(SessionType::OfflineGrant.as_str(), "offline_grant");
    /// ```
    pub enum SessionType {
        /// A browser session of Authgear's own.
        Idp = "idp",
        /// A refresh token.
        OfflineGrant = "offline_grant",
    }
}

/// The authentication in progress, in `authentication.*` events.
///
/// ```
/// use authgear_webhook::event::{AuthenticationContext, AuthenticationFlowType};
///
/// let context: AuthenticationContext = serde_json::from_value(serde_json::json!({
///     "authentication_flow": { "type": "login", "name": "default" },
///     "user": null,
///     "asserted_identifications": [],
///     "asserted_authentications": [],
///     "amr": null
/// }))?;
/// let flow = context.authentication_flow.as_ref().and_then(|flow| flow.flow_type.as_ref());
/// assert_eq!(flow, Some(&AuthenticationFlowType::Login));
/// assert!(context.user.is_none());
/// assert!(context.amr().is_empty());
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthenticationContext {
    /// The flow, if any.
    #[serde(default)]
    pub authentication_flow: Option<AuthenticationFlow>,
    /// The user, once identified.
    #[serde(default)]
    pub user: Option<User>,
    /// The identifications asserted so far.
    #[serde(default)]
    pub asserted_identifications: Option<Vec<Identification>>,
    /// The authentications asserted so far.
    #[serde(default)]
    pub asserted_authentications: Option<Vec<Authentication>>,
    /// The authentication methods used so far (`pwd`, `otp`, `x_primary_password`, ...).
    #[serde(default)]
    pub amr: Option<Vec<String>>,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AuthenticationContext {
    /// The authentication methods used so far (empty when absent or `null`).
    ///
    /// ```
    /// # use authgear_webhook::event::AuthenticationContext;
    /// # let context: AuthenticationContext = serde_json::from_str(r#"{"amr":["pwd","otp"]}"#)?;
    /// assert_eq!(context.amr(), ["pwd", "otp"]);
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn amr(&self) -> &[String] {
        self.amr.as_deref().unwrap_or_default()
    }
}

/// `authentication_flow`: which flow the end user is in.
///
/// Both fields are `omitzero` on the server (`AuthenticationFlowContext` in
/// `pkg/api/event/event_payload.go`): a flow without a type or a name sends `{}`.
///
/// ```
/// use authgear_webhook::event::{AuthenticationFlow, AuthenticationFlowType};
///
/// let flow: AuthenticationFlow = serde_json::from_str(r#"{"type":"signup","name":"default"}"#)?;
/// assert_eq!(flow.flow_type, Some(AuthenticationFlowType::Signup));
/// assert_eq!(flow.name.as_deref(), Some("default"));
///
/// let flow: AuthenticationFlow = serde_json::from_str("{}")?;
/// assert_eq!(flow.flow_type, None);
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthenticationFlow {
    /// `type`: what kind of flow, when the server sets it.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub flow_type: Option<AuthenticationFlowType>,
    /// The flow's name in the project's configuration, when the server sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

string_enum! {
    /// `authentication_flow.type`.
    ///
    /// ```
    /// use authgear_webhook::event::AuthenticationFlowType;
    ///
    /// assert_eq!(AuthenticationFlowType::from("signup_login"), AuthenticationFlowType::SignupLogin);
    /// ```
    pub enum AuthenticationFlowType {
        /// Sign-up.
        Signup = "signup",
        /// Promotion of an anonymous user.
        Promote = "promote",
        /// Login.
        Login = "login",
        /// Sign-up or login, decided by the identity.
        SignupLogin = "signup_login",
        /// Reauthentication.
        Reauth = "reauth",
        /// Account recovery.
        AccountRecovery = "account_recovery",
    }
}

/// How the end user identified themselves.
///
/// ```
/// use authgear_webhook::event::{Identification, IdentificationMethod};
///
/// let identification: Identification =
///     serde_json::from_str(r#"{"identification":"email","identity":null,"id_token":null}"#)?;
/// assert_eq!(identification.identification, IdentificationMethod::Email);
/// assert!(identification.identity.is_none());
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Identification {
    /// The method.
    pub identification: IdentificationMethod,
    /// The identity it matched, if any.
    #[serde(default)]
    pub identity: Option<Identity>,
    /// The ID token presented, for `id_token`.
    #[serde(default)]
    pub id_token: Option<String>,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

string_enum! {
    /// `Identification.identification`.
    ///
    /// ```
    /// use authgear_webhook::event::IdentificationMethod;
    ///
    /// assert_eq!(IdentificationMethod::IdToken.as_str(), "id_token");
    /// ```
    pub enum IdentificationMethod {
        /// An email address.
        Email = "email",
        /// A phone number.
        Phone = "phone",
        /// A username.
        Username = "username",
        /// An OAuth provider.
        Oauth = "oauth",
        /// A passkey.
        Passkey = "passkey",
        /// An ID token.
        IdToken = "id_token",
        /// LDAP.
        Ldap = "ldap",
        /// An account chosen from those already signed in on the device.
        SelectAccount = "select_account",
    }
}

/// How the end user authenticated.
///
/// ```
/// use authgear_webhook::event::{Authentication, AuthenticationMethod, AuthenticatorKind};
///
/// let authentication: Authentication = serde_json::from_value(serde_json::json!({
///     "authentication": "primary_oob_otp_sms",
///     "authenticator": { "id": "2a6f", "type": "oob_otp_sms", "kind": "primary" }
/// }))?;
/// assert_eq!(authentication.authentication, AuthenticationMethod::PrimaryOobOtpSms);
/// let kind = authentication.authenticator.as_ref().map(|a| &a.kind);
/// assert_eq!(kind, Some(&AuthenticatorKind::Primary));
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Authentication {
    /// The method.
    pub authentication: AuthenticationMethod,
    /// The authenticator used, if any.
    #[serde(default)]
    pub authenticator: Option<Authenticator>,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

string_enum! {
    /// `Authentication.authentication`.
    ///
    /// ```
    /// use authgear_webhook::event::AuthenticationMethod;
    ///
    /// assert_eq!(AuthenticationMethod::from("secondary_totp"), AuthenticationMethod::SecondaryTotp);
    /// ```
    pub enum AuthenticationMethod {
        /// Primary password.
        PrimaryPassword = "primary_password",
        /// Primary passkey.
        PrimaryPasskey = "primary_passkey",
        /// Primary one-time code by email.
        PrimaryOobOtpEmail = "primary_oob_otp_email",
        /// Primary one-time code by SMS.
        PrimaryOobOtpSms = "primary_oob_otp_sms",
        /// Secondary password.
        SecondaryPassword = "secondary_password",
        /// Secondary TOTP.
        SecondaryTotp = "secondary_totp",
        /// Secondary one-time code by email.
        SecondaryOobOtpEmail = "secondary_oob_otp_email",
        /// Secondary one-time code by SMS.
        SecondaryOobOtpSms = "secondary_oob_otp_sms",
        /// A recovery code.
        RecoveryCode = "recovery_code",
        /// A trusted device's token.
        DeviceToken = "device_token",
    }
}

/// An authenticator of a user: a password, a passkey, a TOTP app, ...
///
/// ```
/// use authgear_webhook::event::{Authenticator, AuthenticatorType};
///
/// let authenticator: Authenticator =
///     serde_json::from_str(r#"{"id":"2a6f","type":"totp","kind":"secondary","is_default":true}"#)?;
/// assert_eq!(authenticator.authenticator_type, AuthenticatorType::Totp);
/// assert_eq!(authenticator.is_default, Some(true));
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Authenticator {
    /// The authenticator's id.
    pub id: String,
    /// `type`: what kind of authenticator.
    #[serde(rename = "type")]
    pub authenticator_type: AuthenticatorType,
    /// Primary or secondary.
    pub kind: AuthenticatorKind,
    /// When it was created (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When it was last updated (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// The user it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Whether it is the user's default one of its kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_default: Option<bool>,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

string_enum! {
    /// `Authenticator.type`.
    ///
    /// ```
    /// use authgear_webhook::event::AuthenticatorType;
    ///
    /// assert_eq!(AuthenticatorType::OobOtpEmail.as_str(), "oob_otp_email");
    /// ```
    pub enum AuthenticatorType {
        /// A password.
        Password = "password",
        /// A passkey.
        Passkey = "passkey",
        /// A TOTP app.
        Totp = "totp",
        /// One-time codes by email.
        OobOtpEmail = "oob_otp_email",
        /// One-time codes by SMS.
        OobOtpSms = "oob_otp_sms",
    }
}

string_enum! {
    /// `Authenticator.kind`.
    ///
    /// ```
    /// use authgear_webhook::event::AuthenticatorKind;
    ///
    /// assert_eq!(AuthenticatorKind::from("secondary"), AuthenticatorKind::Secondary);
    /// ```
    pub enum AuthenticatorKind {
        /// Used to sign in.
        Primary = "primary",
        /// Used as a second factor.
        Secondary = "secondary",
    }
}
