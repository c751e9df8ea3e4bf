//! The `context` of an event: when, who, from where.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `context` of an [`Event`](super::Event): when the event was created, who triggered
/// it, and the end user's request.
///
/// Only `timestamp` is required: every other field is an `Option`, since older Authgear
/// servers omit some of them or write `null`. Fields this crate does not know are kept in
/// `extra` and written back.
///
/// ```
/// use authgear_webhook::event::{Context, TriggeredBy};
///
/// let context: Context = serde_json::from_value(serde_json::json!({
///     "timestamp": 1764319772,
///     "user_id": null,
///     "triggered_by": "admin_api",
///     "audit_context": null,
///     "preferred_languages": ["en-US"],
///     "language": "en-US",
///     "tracking_id": "new in a later server"
/// }))?;
/// assert_eq!(context.timestamp, 1764319772);
/// assert_eq!(context.triggered_by, Some(TriggeredBy::AdminApi));
/// assert!(context.audit_context.is_none());
/// assert_eq!(context.language.as_deref(), Some("en-US"));
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Context {
    /// When the event was created, in Unix seconds. Signed: usable against replays.
    pub timestamp: i64,
    /// The user the event is about; `None` before one is known (e.g. at
    /// `authentication.pre_initialize`).
    #[serde(default)]
    pub user_id: Option<String>,
    /// Who caused the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_by: Option<TriggeredBy>,
    /// The request that caused the event; `None` on older servers.
    #[serde(default)]
    pub audit_context: Option<AuditContext>,
    /// The end user's preferred languages (BCP 47 tags), most preferred first.
    #[serde(default)]
    pub preferred_languages: Option<Vec<String>>,
    /// The language Authgear resolved for the end user (may be empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Country code from the end user's IP address (newer servers).
    #[serde(default)]
    pub geo_location_code: Option<String>,
    /// The OAuth `state` and `x_state` of the authorization request, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuthContext>,
    /// The end user's IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// The end user's `User-Agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The Authgear project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The OAuth client the end user came through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// A tracking id, when Authgear has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_id: Option<String>,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

string_enum! {
    /// `context.triggered_by`: who caused the event. Authgear adds values over time: those
    /// this crate does not know are kept in `Other`.
    ///
    /// ```
    /// use authgear_webhook::event::TriggeredBy;
    ///
    /// assert_eq!(TriggeredBy::from("admin_api"), TriggeredBy::AdminApi);
    /// assert_eq!(TriggeredBy::from("robot").as_str(), "robot");
    /// ```
    pub enum TriggeredBy {
        /// The end user.
        User = "user",
        /// The Admin API.
        AdminApi = "admin_api",
        /// Authgear itself (scheduled jobs).
        System = "system",
        /// The portal.
        Portal = "portal",
        /// A site admin.
        SiteAdmin = "site_admin",
    }
}

/// `context.audit_context`: the request that caused the event.
///
/// ```
/// use authgear_webhook::event::AuditContext;
///
/// let audit: AuditContext =
///     serde_json::from_str(r#"{"http_url":"https://myapp.authgear.cloud/login"}"#)?;
/// assert_eq!(audit.http_url.as_deref(), Some("https://myapp.authgear.cloud/login"));
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditContext {
    /// The URL of the end user's request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_url: Option<String>,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `context.oauth`: the OAuth parameters of the authorization request, when set.
///
/// ```
/// use authgear_webhook::event::OAuthContext;
///
/// let oauth: OAuthContext = serde_json::from_str(r#"{"x_state":"campaign=spring"}"#)?;
/// assert_eq!(oauth.x_state.as_deref(), Some("campaign=spring"));
/// assert_eq!(oauth.state, None);
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OAuthContext {
    /// The `state` parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The `x_state` parameter (Authgear's own, for the app's use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_state: Option<String>,
    /// Fields this crate does not know, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
