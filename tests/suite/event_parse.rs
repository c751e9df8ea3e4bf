//! Typed events: every example delivery parses, round-trips to the same JSON value and is
//! classified right; unknown types, unknown fields, older servers' deliveries and payloads
//! that do not fit the model are kept as data.

use std::{fs, path::PathBuf};

use authgear_webhook::event::{
    AuthenticationFlowType, AuthenticatorKind, Event, IdentificationMethod, IdentityType, Payload,
    SessionType, TriggeredBy, UsageLimitAction, UsageName, is_blocking_type,
};
use serde_json::{Value, json};

use crate::common::BLOCKING;

/// The non-blocking types: the payloads of `pkg/api/event/nonblocking/*.go` in
/// authgear-server whose `ForHook()` is true (`tests/fixtures/events/README.md`).
const NON_BLOCKING: &[&str] = &[
    "user.created",
    "user.authenticated",
    "user.reauthenticated",
    "user.profile.updated",
    "user.disabled",
    "user.reenabled",
    "user.anonymous.promoted",
    "user.deletion_scheduled",
    "user.deletion_unscheduled",
    "user.deleted",
    "user.anonymization_scheduled",
    "user.anonymization_unscheduled",
    "user.anonymized",
    "identity.email.added",
    "identity.email.removed",
    "identity.email.updated",
    "identity.email.verified",
    "identity.email.unverified",
    "identity.phone.added",
    "identity.phone.removed",
    "identity.phone.updated",
    "identity.phone.verified",
    "identity.phone.unverified",
    "identity.username.added",
    "identity.username.removed",
    "identity.username.updated",
    "identity.username.verified",
    "identity.username.unverified",
    "identity.oauth.connected",
    "identity.oauth.disconnected",
    "identity.biometric.enabled",
    "identity.biometric.disabled",
    "usage.alert.triggered",
];

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events")
}

/// Every example delivery: (file stem, raw bytes).
fn deliveries() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(fixtures())
        .expect("tests/fixtures/events")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let stem = path
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .into_owned();
            (stem, fs::read(&path).expect("read"))
        })
        .collect()
}

fn delivery(name: &str) -> Value {
    serde_json::from_slice(&fs::read(fixtures().join(format!("{name}.json"))).expect("read"))
        .expect("json")
}

/// The edge cases of `tests/fixtures/events/edge/`: (event type, case, raw bytes).
fn edge_cases() -> Vec<(String, String, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(fixtures().join("edge"))
        .expect("tests/fixtures/events/edge")
        .map(|entry| entry.expect("entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let stem = path
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .into_owned();
            let (event_type, case) = stem.split_once("--").expect("<type>--<case>.json");
            let bytes = fs::read(&path).expect("read");
            (event_type.to_owned(), case.to_owned(), bytes)
        })
        .collect()
}

fn edge(name: &str) -> Event {
    let bytes = fs::read(fixtures().join("edge").join(format!("{name}.json"))).expect("read");
    serde_json::from_slice(&bytes).expect("parses")
}

/// Drops object keys whose value is `null`, at every level: a `null` may come back absent.
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, value)| !value.is_null())
                .map(|(key, value)| (key, without_nulls(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// Parses `value` as an event and checks that serialising it gives `value` back, `null`s
/// included.
fn round_trip(value: &Value) -> Event {
    let event: Event = serde_json::from_value(value.clone()).expect("parses");
    let back = serde_json::to_value(&event).expect("serialises");
    assert_eq!(without_nulls(back.clone()), without_nulls(value.clone()));
    assert_eq!(&back, value);
    // And from the bytes, as a receiver does.
    let bytes = serde_json::to_vec(value).expect("bytes");
    assert_eq!(
        serde_json::from_slice::<Event>(&bytes).expect("parses"),
        event
    );
    event
}

/// The model writes a delivery of today's server with the same keys and `null`s, straight
/// from the types: the envelope's keys come in Authgear's order (a delivery the model
/// writes differently, with `null`s added or dropped, is written from a JSON value, whose
/// keys are sorted).
fn assert_written_as_the_server_does(event: &Event, name: &str) {
    let text = serde_json::to_string(event).expect("serialises");
    assert!(
        text.starts_with(r#"{"id":"#) && text.contains(r#","seq":"#),
        "{name}: {text}"
    );
}

#[test]
fn every_example_delivery_parses_round_trips_and_is_classified() {
    let deliveries = deliveries();
    assert!(deliveries.len() >= 10, "fixtures missing");
    for (name, bytes) in deliveries {
        let event: Event = serde_json::from_slice(&bytes).expect(&name);
        let value: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(round_trip(&value), event, "{name}");
        assert_eq!(event.event_type(), name);
        assert!(
            !matches!(event.payload, Payload::Unknown { .. }),
            "{name} is a known type"
        );
        assert_eq!(event.off_model_reason(), None, "{name} fits the model");
        assert_written_as_the_server_does(&event, &name);
        assert_eq!(
            event.is_blocking(),
            BLOCKING.contains(&name.as_str()),
            "{name}"
        );
        assert!(BLOCKING.contains(&name.as_str()) || NON_BLOCKING.contains(&name.as_str()));
    }
}

#[test]
fn example_deliveries_read_with_types() {
    let event: Event = serde_json::from_value(delivery("user.pre_create")).expect("parses");
    assert_eq!(event.id, "0000000000546d54");
    assert_eq!(event.seq, Some(5533012));
    let context = event.context.as_ref().expect("context");
    assert_eq!(context.timestamp, 1764319772);
    assert_eq!(context.triggered_by, Some(TriggeredBy::User));
    let audit = context.audit_context.as_ref().expect("audit context");
    // Go's `\u0026` escapes are read as the characters they stand for.
    assert_eq!(
        audit.http_url.as_deref(),
        Some("https://myapp.authgear.cloud/login?x=1&y=<2>")
    );
    let Payload::UserPreCreate(payload) = &event.payload else {
        panic!("user.pre_create");
    };
    assert_eq!(payload.user.email(), Some("user@example.com"));
    assert_eq!(payload.identities()[0].identity_type, IdentityType::LoginId);
    assert_eq!(payload.identities()[0].email(), Some("user@example.com"));

    let event: Event = serde_json::from_value(delivery("user.authenticated")).expect("parses");
    let Payload::UserAuthenticated(payload) = &event.payload else {
        panic!("user.authenticated");
    };
    let session = payload.session.as_ref().expect("a session");
    assert_eq!(session.session_type, SessionType::Idp);
    assert_eq!(session.display_name.as_deref(), Some("Chrome 104.0.0"));
    assert_eq!(session.amr.as_deref(), Some(&["pwd".to_owned()][..]));

    let event: Event =
        serde_json::from_value(delivery("authentication.post_identified")).expect("parses");
    let Payload::AuthenticationPostIdentified(payload) = &event.payload else {
        panic!("authentication.post_identified");
    };
    assert_eq!(
        payload.identification.identification,
        IdentificationMethod::Oauth
    );
    let flow = payload.authentication_context.authentication_flow.as_ref();
    assert_eq!(
        flow.and_then(|f| f.flow_type.as_ref()),
        Some(&AuthenticationFlowType::Login)
    );

    let event: Event =
        serde_json::from_value(delivery("authentication.pre_authenticated")).expect("parses");
    let Payload::AuthenticationPreAuthenticated(payload) = &event.payload else {
        panic!("authentication.pre_authenticated");
    };
    let authentications = payload
        .authentication_context
        .asserted_authentications
        .as_deref()
        .expect("authentications");
    let authenticator = authentications[0]
        .authenticator
        .as_ref()
        .expect("authenticator");
    assert_eq!(authenticator.kind, AuthenticatorKind::Primary);
    assert_eq!(
        payload.authentication_context.amr(),
        ["sms", "otp", "x_primary_oob_otp_sms"]
    );

    let event: Event = serde_json::from_value(delivery("oidc.jwt.pre_create")).expect("parses");
    let Payload::OidcJwtPreCreate(payload) = &event.payload else {
        panic!("oidc.jwt.pre_create");
    };
    assert_eq!(payload.jwt.payload["iss"], "https://myapp.authgear.cloud");
    // Go writes a nil slice as `null`.
    let Payload::OidcJwtPreCreate(payload) = &edge("oidc.jwt.pre_create--null-identities").payload
    else {
        panic!("oidc.jwt.pre_create");
    };
    assert!(payload.identities.is_none());
}

#[test]
fn every_edge_case_of_todays_server_parses_typed_and_round_trips_exactly() {
    let cases = edge_cases();
    assert!(cases.len() >= 10, "edge cases missing");
    for (event_type, case, bytes) in cases {
        let event: Event = serde_json::from_slice(&bytes).expect(&case);
        let value: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(round_trip(&value), event, "{case}");
        assert_eq!(event.event_type(), event_type, "{case}");
        assert!(!matches!(event.payload, Payload::Unknown { .. }), "{case}");
        assert_eq!(event.off_model_reason(), None, "{event_type}--{case} fits");
        assert_written_as_the_server_does(&event, &case);
        assert_eq!(event.is_blocking(), BLOCKING.contains(&event_type.as_str()));
    }
}

#[test]
fn edge_cases_read_with_types() {
    // SAML login: `"session": null` (pkg/lib/saml/service.go).
    let Payload::UserAuthenticated(payload) =
        &edge("user.authenticated--saml-null-session").payload
    else {
        panic!("user.authenticated");
    };
    assert!(payload.session.is_none());
    assert!(payload.continue_from_session.is_none());
    let Payload::UserAuthenticated(payload) =
        &edge("user.authenticated--saml-null-session-continued").payload
    else {
        panic!("user.authenticated");
    };
    assert!(payload.session.is_none());
    let continued = payload.continue_from_session.as_ref().expect("continued");
    assert_eq!(continued.session_type, SessionType::Idp);

    let event = edge("user.authenticated--continued-session");
    let Payload::UserAuthenticated(payload) = &event.payload else {
        panic!("user.authenticated");
    };
    let session = payload.session.as_ref().expect("session");
    assert_eq!(session.session_type, SessionType::OfflineGrant);
    assert_eq!(session.client_id.as_deref(), Some("a1b2c3d4e5f6"));
    let continued = payload.continue_from_session.as_ref().expect("continued");
    assert_eq!(continued.display_name.as_deref(), Some("Chrome 104.0.0"));
    let context = event.context.as_ref().expect("context");
    let oauth = context.oauth.as_ref().expect("oauth");
    assert_eq!(
        (oauth.state.as_deref(), oauth.x_state.as_deref()),
        (None, Some("campaign=spring"))
    );
    assert_eq!(context.tracking_id.as_deref(), Some("a1b2c3d4e5f60718"));

    // `omitzero` flow type and name.
    let flow = |name: &str| {
        let Payload::AuthenticationPreInitialize(payload) = edge(name).payload else {
            panic!("authentication.pre_initialize");
        };
        payload.authentication_context.authentication_flow
    };
    let none = flow("authentication.pre_initialize--flow-without-type-and-name").expect("a flow");
    assert_eq!((none.flow_type, none.name), (None, None));
    let signup = flow("authentication.pre_initialize--flow-with-type-only").expect("a flow");
    assert_eq!(signup.flow_type, Some(AuthenticationFlowType::Signup));
    assert_eq!(signup.name, None);
    assert!(flow("authentication.pre_initialize--no-flow").is_none());

    let Payload::AuthenticationPostIdentified(payload) =
        &edge("authentication.post_identified--select-account").payload
    else {
        panic!("authentication.post_identified");
    };
    assert_eq!(
        payload.identification.identification,
        IdentificationMethod::SelectAccount
    );
    assert_eq!(
        payload
            .identification
            .identity
            .as_ref()
            .and_then(|i| i.email()),
        Some("user@example.com")
    );
    let Payload::AuthenticationPostIdentified(payload) =
        &edge("authentication.post_identified--id-token").payload
    else {
        panic!("authentication.post_identified");
    };
    assert_eq!(
        payload.identification.identification,
        IdentificationMethod::IdToken
    );
    assert!(payload.identification.id_token.is_some());
    assert!(payload.authentication_context.amr().is_empty());

    let Payload::UserPreCreate(payload) = &edge("user.pre_create--nil-maps-and-slices").payload
    else {
        panic!("user.pre_create");
    };
    assert!(payload.user.roles().is_empty());
    assert!(payload.user.standard_attributes.is_none());
    assert!(payload.identities().is_empty());

    // Go's escapes are read as the characters they stand for.
    let Payload::UserCreated(payload) = &edge("user.created--escapes").payload else {
        panic!("user.created");
    };
    assert_eq!(payload.user.email(), Some("o'neil+<test>&co@example.com"));
    assert_eq!(
        payload.user.standard_attribute("name"),
        Some(&json!(
            "Zo\u{eb} \u{2028} \u{2029} \"quoted\" \\ back\tslash"
        ))
    );

    let event: Event = serde_json::from_value(delivery("usage.alert.triggered")).expect("parses");
    let Payload::UsageAlertTriggered(payload) = &event.payload else {
        panic!("usage.alert.triggered");
    };
    assert_eq!(payload.usage.name, Some(UsageName::Sms));
    assert_eq!(payload.usage.action, Some(UsageLimitAction::Alert));
    assert_eq!(payload.usage.current_value, Some(900));
    assert_eq!(
        event.context.as_ref().and_then(|c| c.user_id.as_ref()),
        None
    );
}

/// A payload with every key any event type reads: each typed payload takes its own and
/// keeps the others in `extra`, so it parses as every type and round-trips.
fn universal_payload() -> Value {
    let user = delivery("user.created")["payload"]["user"].clone();
    let identity = delivery("user.created")["payload"]["identities"][0].clone();
    let session = delivery("user.authenticated")["payload"]["session"].clone();
    let authentication = delivery("authentication.post_identified")["payload"].clone();
    json!({
        "user": user,
        "anonymous_user": user,
        "identities": [identity],
        "identity": identity,
        "new_identity": identity,
        "old_identity": identity,
        "session": session,
        "jwt": { "payload": { "sub": "u1" } },
        "id_token": { "payload": { "sub": "u1" } },
        "identification": authentication["identification"],
        "authentication_context": authentication["authentication_context"],
        "usage": { "name": "sms", "action": "alert", "period": "month", "quota": 1000,
            "current_value": 900, "plan_name": "business" },
        "reason": "by admin",
        "temporarily_disabled_until": "2030-01-01T00:00:00Z"
    })
}

fn envelope(event_type: &str, payload: Value) -> Value {
    let mut value = delivery("user.created");
    value["type"] = json!(event_type);
    value["payload"] = payload;
    value
}

#[test]
fn every_documented_type_has_a_typed_payload_and_the_right_classification() {
    for &event_type in BLOCKING.iter().chain(NON_BLOCKING) {
        let event = round_trip(&envelope(event_type, universal_payload()));
        assert_eq!(event.event_type(), event_type);
        assert!(
            !matches!(event.payload, Payload::Unknown { .. }),
            "{event_type} has a typed payload"
        );
        assert_eq!(event.off_model_reason(), None, "{event_type}");
        let blocking = BLOCKING.contains(&event_type);
        assert_eq!(event.is_blocking(), blocking, "{event_type}");
        assert_eq!(is_blocking_type(event_type), blocking, "{event_type}");
    }
}

#[test]
fn a_known_type_with_a_wrong_payload_is_kept_off_model() {
    for (event_type, payload, reason) in [
        (
            "user.pre_create",
            json!({}),
            "/payload: missing field `user`",
        ),
        (
            "user.pre_create",
            json!(null),
            "/payload: invalid type: null, expected struct UserPreCreatePayload",
        ),
        (
            "user.created",
            json!({ "user": "not a user" }),
            "/payload/user: invalid type: string, expected struct User",
        ),
        (
            "oidc.jwt.pre_create",
            json!({ "user": universal_payload()["user"] }),
            "/payload: missing field `jwt`",
        ),
    ] {
        let value = envelope(event_type, payload.clone());
        let event = round_trip(&value);
        assert_eq!(event.event_type(), event_type);
        assert_eq!(event.is_blocking(), is_blocking_type(event_type));
        assert_eq!(event.off_model_reason(), Some(reason), "{event_type}");
        match &event.payload {
            Payload::OffModel {
                event_type: kept,
                payload: raw,
                reason: why,
            } => {
                assert_eq!((kept.as_str(), raw), (event_type, &payload));
                assert_eq!(why, reason);
            }
            other => panic!("not kept off-model: {other:?}"),
        }
        // The reason never quotes the delivery's values.
        assert!(!reason.contains("not a user"));
    }
}

#[test]
fn only_a_body_that_is_no_envelope_at_all_is_an_error() {
    for body in [
        &b"not json"[..],
        b"{}",
        b"[]",
        b"null",
        br#""id""#,
        br#"{"id":"1"}"#,
        br#"{"type":"user.created"}"#,
        br#"{"id":1,"type":"user.created"}"#,
        br#"{"id":"1","type":null}"#,
        br#"{"id":"1","type":"x""#,
    ] {
        assert!(
            serde_json::from_slice::<Event>(body).is_err(),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    // The least an envelope needs: an object with a string `id` and a string `type`.
    for (body, reason) in [
        (json!({ "id": "1", "type": "x" }), None),
        (
            json!({ "id": "1", "seq": 1, "type": "x", "payload": {} }),
            None,
        ),
        (
            json!({ "id": "1", "type": "user.created" }),
            Some("/payload: invalid type: null, expected struct UserCreatedPayload"),
        ),
        (
            json!({ "id": "1", "type": "x", "seq": "one" }),
            Some("/seq: not a 64-bit integer"),
        ),
        (
            json!({ "id": "1", "type": "x", "seq": 1.5 }),
            Some("/seq: not a 64-bit integer"),
        ),
        (
            json!({ "id": "1", "type": "x", "seq": u64::MAX }),
            Some("/seq: not a 64-bit integer"),
        ),
        (
            json!({ "id": "1", "type": "x", "context": null }),
            Some("/context: invalid type: null, expected struct Context"),
        ),
        (
            json!({ "id": "1", "type": "x", "context": { "timestamp": "now" } }),
            Some("/context/timestamp: invalid type: string, expected i64"),
        ),
        (
            json!({ "id": "1", "type": "x", "context": { "triggered_by": 5 } }),
            Some("/context/triggered_by: invalid type: integer, expected a string"),
        ),
    ] {
        let event = round_trip(&body);
        assert_eq!(event.id, "1");
        assert_eq!(event.off_model_reason(), reason, "{body}");
    }
}

#[test]
fn unknown_types_are_kept_as_data() {
    let payload = json!({ "project": { "id": "p1", "plan": null }, "list": [1, 2.5, "x"] });
    let value = envelope("project.app.created", payload.clone());
    let event = round_trip(&value);
    assert_eq!(event.event_type(), "project.app.created");
    assert!(!event.is_blocking());
    assert!(!is_blocking_type("project.app.created"));
    match &event.payload {
        Payload::Unknown {
            event_type,
            payload: raw,
        } => {
            assert_eq!(event_type, "project.app.created");
            assert_eq!(raw, &payload);
        }
        other => panic!("not kept as unknown: {other:?}"),
    }
}

#[test]
fn unknown_fields_are_kept_at_every_level() {
    let mut value = delivery("authentication.pre_authenticated");
    value["trace"] = json!({ "span": "abc" });
    value["context"]["new_context_field"] = json!([1, 2]);
    value["context"]["audit_context"]["new_audit"] = json!(true);
    value["context"]["oauth"] = json!({ "state": "s", "x_state": "x", "new_oauth": 1 });
    let context = &mut value["payload"]["authentication_context"];
    context["new_auth_field"] = json!("x");
    context["authentication_flow"]["new_flow_field"] = json!(1);
    context["user"]["new_user_field"] = json!({ "nested": null });
    context["asserted_identifications"][0]["new_identification"] = json!(2);
    context["asserted_identifications"][0]["identity"]["new_identity"] = json!(3);
    context["asserted_authentications"][0]["new_authentication"] = json!(4);
    context["asserted_authentications"][0]["authenticator"]["new_authenticator"] = json!(5);
    value["payload"]["new_payload_field"] = json!("kept");
    let event = round_trip(&value);
    assert_eq!(event.extra["trace"], json!({ "span": "abc" }));
    let context = event.context.as_ref().expect("context");
    assert_eq!(context.extra["new_context_field"], json!([1, 2]));
    let Payload::AuthenticationPreAuthenticated(payload) = &event.payload else {
        panic!("authentication.pre_authenticated");
    };
    assert_eq!(payload.extra["new_payload_field"], "kept");
}

#[test]
fn older_and_newer_servers_deliveries_parse() {
    let mut value = delivery("user.pre_create");
    // Older servers: no geo_location_code, audit_context null, nil slices and maps as null,
    // several user fields missing.
    let context = value["context"].as_object_mut().expect("context");
    context.remove("geo_location_code");
    context.insert("audit_context".into(), Value::Null);
    context.insert("preferred_languages".into(), Value::Null);
    context.insert("triggered_by".into(), json!("a_new_actor"));
    let user = value["payload"]["user"].as_object_mut().expect("user");
    for field in ["is_deactivated", "can_reauthenticate", "last_login_at"] {
        user.remove(field);
    }
    user.insert("roles".into(), Value::Null);
    user.insert("groups".into(), Value::Null);
    user.insert("custom_attributes".into(), Value::Null);
    user.insert("x_web3".into(), Value::Null);
    value["payload"]["identities"] = Value::Null;

    let event = round_trip(&value);
    let context = event.context.as_ref().expect("context");
    assert!(context.audit_context.is_none());
    assert!(context.geo_location_code.is_none());
    assert_eq!(
        context.triggered_by,
        Some(TriggeredBy::Other("a_new_actor".into()))
    );
    let Payload::UserPreCreate(payload) = &event.payload else {
        panic!("user.pre_create");
    };
    assert!(payload.user.roles().is_empty());
    assert!(payload.identities().is_empty());
    assert_eq!(payload.user.is_deactivated, None);

    // A minimal context (only the timestamp) and new enum values elsewhere.
    let mut value = delivery("user.authenticated");
    value["context"] = json!({ "timestamp": 1 });
    value["payload"]["session"]["type"] = json!("a_new_session_type");
    value["payload"]["session"]["clientID"] = Value::Null;
    let event = round_trip(&value);
    let Payload::UserAuthenticated(payload) = &event.payload else {
        panic!("user.authenticated");
    };
    assert_eq!(
        payload
            .session
            .as_ref()
            .map(|session| &session.session_type),
        Some(&SessionType::Other("a_new_session_type".into()))
    );

    // pre_initialize: no user yet, nulls everywhere Go may write them.
    let mut value = delivery("authentication.pre_initialize");
    let context = &mut value["payload"]["authentication_context"];
    context["asserted_authentications"] = Value::Null;
    context["asserted_identifications"] = Value::Null;
    context["amr"] = Value::Null;
    context["authentication_flow"] = Value::Null;
    value["context"]["user_id"] = Value::Null;
    round_trip(&value);
}
