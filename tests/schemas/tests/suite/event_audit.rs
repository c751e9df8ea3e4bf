//! An adversarial audit of the typed model: deliveries written by hand from Authgear's Go
//! source (commit `fa7a7d55`), exactly as `encoding/json` encodes them (Go's field order, its
//! escaping of `<`, `>`, `&`, U+2028 and U+2029, `null` for nil pointers, maps and slices,
//! `omitempty`/`omitzero` fields left out, `time.Time` as RFC 3339 with nanoseconds and
//! offsets, `float64` as Go formats it), realistic values and edge values, independently of
//! `tests/fixtures/events/`. Every one must parse, keep its type and its typed payload, not
//! be reported off-model, and give back exactly the JSON value it was parsed from; and each
//! goes through the real `axum_server` (200).
//!
//! The server files each part comes from: `pkg/api/event/{event,context,event_payload}.go`,
//! `pkg/api/event/blocking/*.go`, `pkg/api/event/nonblocking/*.go` (those whose `ForHook()`
//! is true: `pkg/lib/hook/sink.go`), `pkg/api/model/{user,identity,session,identification,
//! authentication,authenticator,meta,usage}.go`, `pkg/lib/authn/identity/claim_key.go`,
//! `pkg/lib/event/service.go` (the context) and `pkg/lib/hook/hook_web.go` (`json.Marshal`
//! of the event: no trailing newline).

use authgear_webhook::event::{
    AuthenticationContext, Event, Identification, Identity, Payload, Session, User,
};
use serde_json::Value;

// ---- models, in Go's field order -------------------------------------------------------

/// `model.User` (`pkg/api/model/user.go`), `Meta` first; `rest` is everything after
/// `updated_at`, already in Go's order.
fn user(id: &str, rest: &str) -> String {
    format!(
        r#"{{"id":"{id}","created_at":"2026-08-21T03:04:05.123456789Z","updated_at":"2026-08-21T03:04:05Z",{rest}}}"#
    )
}

/// A plain user: every always-sent field, nil maps and slices.
fn plain_user(id: &str) -> String {
    user(
        id,
        r#""is_anonymous":false,"is_verified":false,"is_disabled":false,"is_deactivated":false,"is_anonymized":false,"can_reauthenticate":false,"standard_attributes":null,"custom_attributes":null,"x_web3":null,"roles":null,"groups":null"#,
    )
}

/// A user with every pointer set (times with offsets and nanoseconds), every attribute kind.
fn full_user(id: &str) -> String {
    user(
        id,
        concat!(
            r#""last_login_at":"2026-08-21T11:04:05.1+08:00","is_anonymous":false,"is_verified":true,"#,
            r#""is_disabled":true,"disable_reason":"\u003cb\u003espam\u003c/b\u003e \u0026 abuse\u2028line\u2029para","#,
            r#""is_deactivated":true,"delete_at":"2026-09-20T03:04:05.000000001Z","delete_reason":"","#,
            r#""is_anonymized":false,"anonymize_at":"2026-10-01T00:00:00-07:00","#,
            r#""temporarily_disabled_from":"2026-08-21T03:04:05Z","temporarily_disabled_until":"9999-12-31T23:59:59.999999999Z","#,
            r#""account_valid_from":"0001-01-01T00:00:00Z","account_valid_until":"2027-01-01T00:00:00+05:45","#,
            r#""can_reauthenticate":true,"#,
            r#""standard_attributes":{"address":{"country":"HK","formatted":"1 Main St\nKowloon","locality":"","postal_code":"000000","region":"","street_address":"1 Main St"},"#,
            r#""birthdate":"1990-02-29","email":"jane+tag@example.com","email_verified":true,"family_name":"Doe","gender":"other","#,
            r#""given_name":"Jane","locale":"zh-Hant-HK","middle_name":"","name":"Jane \"JD\" Doe \\ \u0000\u001f\t","nickname":"😀","#,
            r#""phone_number":"+85298765432","phone_number_verified":false,"picture":"https://example.com/a.png?x=1\u0026y=2","#,
            r#""preferred_username":"jane","profile":"","updated_at":1755745445,"website":"https://example.com","zoneinfo":"Asia/Hong_Kong"},"#,
            r#""custom_attributes":{"age":42,"big":1e+21,"bool":false,"country":"HK","huge":123456789012345680000,"list":["a",1,null,{"x":[]}],"#,
            r#""neg":-9223372036854775808,"neg_zero":-0,"null":null,"obj":{"nested":{"deep":[1.5,-2.25e-7]}},"pi":3.141592653589793,"#,
            r#""small":1e-7,"tiny":5e-324,"u64":18446744073709551615,"max":1.7976931348623157e+308},"#,
            r#""x_web3":{"accounts":[{"account_identifier":{"address":"0x0000000000000000000000000000000000000000"},"network_identifier":{"blockchain":"ethereum","network":"1"},"nfts":[{"balance":1,"contract":{"address":"0x0","name":"X","type":"erc721"},"token_id":"0x1","transaction_identifier":{"hash":"0x2"}}]}]},"#,
            r#""roles":["admin","role:with:colons"],"groups":[],"mfa_grace_period_end_at":"2026-08-28T03:04:05.5Z""#,
        ),
    )
}

/// `model.Identity` (`pkg/api/model/identity.go`): `type` a string, `user_id` always, `claims`
/// a map (nil: `null`).
fn identity(id: &str, identity_type: &str, claims: &str) -> String {
    format!(
        r#"{{"id":"{id}","created_at":"2026-08-21T03:04:05.123Z","updated_at":"2026-08-21T03:04:05.123Z","type":"{identity_type}","user_id":"u1","claims":{claims}}}"#
    )
}

fn email_identity() -> String {
    identity(
        "i-email",
        "login_id",
        r#"{"email":"jane@example.com","https://authgear.com/claims/login_id/key":"email","https://authgear.com/claims/login_id/original_value":"Jane@Example.com","https://authgear.com/claims/login_id/type":"email","https://authgear.com/claims/login_id/value":"jane@example.com"}"#,
    )
}

fn phone_identity() -> String {
    identity(
        "i-phone",
        "login_id",
        r#"{"https://authgear.com/claims/login_id/key":"phone","https://authgear.com/claims/login_id/original_value":"+85298765432","https://authgear.com/claims/login_id/type":"phone","https://authgear.com/claims/login_id/value":"+85298765432","phone_number":"+85298765432"}"#,
    )
}

fn username_identity() -> String {
    identity(
        "i-username",
        "login_id",
        r#"{"https://authgear.com/claims/login_id/key":"username","https://authgear.com/claims/login_id/original_value":"Jane\u003c3","https://authgear.com/claims/login_id/type":"username","https://authgear.com/claims/login_id/value":"jane\u003c3","preferred_username":"jane\u003c3"}"#,
    )
}

/// An OAuth identity: the provider's profile is arbitrary JSON (numbers as `float64`).
fn oauth_identity() -> String {
    identity(
        "i-oauth",
        "oauth",
        concat!(
            r#"{"email":"jane@gmail.com","https://authgear.com/claims/oauth/profile":{"at_hash":"x","aud":["a","b"],"#,
            r#""email_verified":true,"exp":1755749045,"hd":null,"iat":1.755745445e+09,"locale":{"country":"HK","language":"zh"},"#,
            r#""nested":[[[]],{}],"picture":"https://lh3.googleusercontent.com/a/x=s96-c","score":0.1,"sub":"110169484474386276334"},"#,
            r#""https://authgear.com/claims/oauth/provider_alias":"google","https://authgear.com/claims/oauth/provider_type":"google","#,
            r#""https://authgear.com/claims/oauth/subject_id":"110169484474386276334"}"#,
        ),
    )
}

fn biometric_identity() -> String {
    identity(
        "i-bio",
        "biometric",
        r#"{"https://authgear.com/claims/biometric/device_info":{"ios":{"NSProcessInfo":{"isMacCatalystApp":false,"isiOSAppOnMac":false},"UIDevice":{"model":"iPhone","systemVersion":"17.0"}}},"https://authgear.com/claims/biometric/formatted_device_info":"iPhone 15","https://authgear.com/claims/biometric/key_id":"k1"}"#,
    )
}

fn more_identities() -> [String; 5] {
    [
        identity(
            "i-passkey",
            "passkey",
            r#"{"https://authgear.com/claims/passkey/credential_id":"AAEC","https://authgear.com/claims/passkey/display_name":"Jane's key"}"#,
        ),
        identity(
            "i-siwe",
            "siwe",
            r#"{"https://authgear.com/claims/siwe/address":"0xAbC","https://authgear.com/claims/siwe/chain_id":1}"#,
        ),
        identity(
            "i-ldap",
            "ldap",
            r#"{"https://authgear.com/claims/ldap/attributes":{"cn":["Jane"],"memberOf":[]},"https://authgear.com/claims/ldap/last_login_username":"jane","https://authgear.com/claims/ldap/raw_user_id_attribute_value":"AAEC/w==","https://authgear.com/claims/ldap/server_name":"corp","https://authgear.com/claims/ldap/user_id_attribute_name":"uid","https://authgear.com/claims/ldap/user_id_attribute_value":"jane"}"#,
        ),
        identity(
            "i-anon",
            "anonymous",
            r#"{"https://authgear.com/claims/anonymous/key_id":"k"}"#,
        ),
        // A nil claims map, and a type this crate may not know.
        identity("i-new", "a_future_type", "null"),
    ]
}

/// `model.Session` (`pkg/api/model/session.go`): `amr`, `applicationName` and `userAgent`
/// omitempty, `clientID` a pointer.
fn session(rest_before_client: &str, client: &str, tail: &str) -> String {
    format!(
        r#"{{"id":"s1","created_at":"2026-08-21T03:04:05.123456Z","updated_at":"2026-08-21T03:04:05.123456Z","type":"idp",{rest_before_client}"clientID":{client},"displayName":""{tail}}}"#
    )
}

fn full_session() -> String {
    session(
        r#""amr":["pwd","mfa","otp","x_primary_password","x_secondary_totp"],"lastAccessedAt":"2026-08-21T03:04:05.999999999Z","createdByIP":"2001:db8::1","lastAccessedByIP":"203.0.113.7","lastAccessedByIPCountryCode":"HK","lastAccessedByIPEnglishCountryName":"Hong Kong","#,
        r#""my-client""#,
        r#","applicationName":"My App","userAgent":"Mozilla/5.0 (X11; Linux x86_64) \u003cAppleWebKit\u003e""#,
    )
}

fn minimal_session() -> String {
    // No amr, empty IPs, nil clientID, no applicationName/userAgent: an offline grant.
    session(
        r#""lastAccessedAt":"0001-01-01T00:00:00Z","createdByIP":"","lastAccessedByIP":"","lastAccessedByIPCountryCode":"","lastAccessedByIPEnglishCountryName":"","#,
        "null",
        "",
    )
    .replace(r#""type":"idp""#, r#""type":"offline_grant""#)
}

/// `event.Context` (`pkg/api/event/context.go`, filled in `pkg/lib/event/service.go`).
fn context_full() -> String {
    concat!(
        r#"{"timestamp":1787299445,"user_id":"u1","triggered_by":"user","#,
        r#""audit_context":{"http_url":"https://myapp.authgear.cloud/oauth2/authorize?client_id=x\u0026redirect_uri=y"},"#,
        r#""preferred_languages":["zh-Hant-HK","en"],"language":"zh-HK","#,
        r#""oauth":{"state":"s\u003c1\u003e","x_state":"campaign=spring\u0026ref=1"},"#,
        r#""ip_address":"2001:db8::1","geo_location_code":"HK","user_agent":"Mozilla/5.0 \u2028 \"quoted\"","#,
        r#""app_id":"myapp","client_id":"my-client","tracking_id":"a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"}"#
    )
    .to_owned()
}

/// A context with nothing optional: no user, no geo, empty language, admin API audit info.
fn context_bare() -> String {
    concat!(
        r#"{"timestamp":0,"user_id":null,"triggered_by":"admin_api","#,
        r#""audit_context":{"admin_api_key":{"id":"k","created_at":"2026-01-01T00:00:00Z"},"http_url":"","ip":["1","2"],"n":1.5},"#,
        r#""preferred_languages":[],"language":"","geo_location_code":null}"#
    )
    .to_owned()
}

fn context_with(triggered_by: &str, user_id: &str) -> String {
    format!(
        r#"{{"timestamp":1787299445,"user_id":{user_id},"triggered_by":"{triggered_by}","audit_context":{{"http_url":"http://localhost:3000/graphql"}},"preferred_languages":[],"language":"en","ip_address":"127.0.0.1","geo_location_code":null,"app_id":"accounts"}}"#
    )
}

/// `event.Event` (`pkg/api/event/event.go`): id, seq, type, payload, context.
fn envelope(seq: &str, event_type: &str, payload: &str, context: &str) -> String {
    format!(
        r#"{{"id":"0000000000a1b2c3","seq":{seq},"type":"{event_type}","payload":{payload},"context":{context}}}"#
    )
}

// ---- the deliveries --------------------------------------------------------------------

fn deliveries() -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, body: String| all.push((name.to_owned(), body));
    let full = context_full();
    let bare = context_bare();
    let identities_all = {
        let mut list = vec![
            email_identity(),
            phone_identity(),
            username_identity(),
            oauth_identity(),
            biometric_identity(),
        ];
        list.extend(more_identities());
        format!("[{}]", list.join(","))
    };

    // Blocking: pkg/api/event/blocking/user_pre_create.go (identities: nil slice or full).
    for (name, user, identities, context) in [
        ("plain", plain_user("u1"), "null".to_owned(), &bare),
        ("full", full_user("u1"), identities_all.clone(), &full),
        ("empty", plain_user("u1"), "[]".to_owned(), &full),
    ] {
        add(
            &format!("user.pre_create {name}"),
            envelope(
                "1",
                "user.pre_create",
                &format!(r#"{{"user":{user},"identities":{identities}}}"#),
                context,
            ),
        );
    }
    for event_type in [
        "user.profile.pre_update",
        "user.pre_schedule_deletion",
        "user.pre_schedule_anonymization",
    ] {
        for (name, user) in [("plain", plain_user("u1")), ("full", full_user("u1"))] {
            add(
                &format!("{event_type} {name}"),
                envelope(
                    "9223372036854775807",
                    event_type,
                    &format!(r#"{{"user":{user}}}"#),
                    &context_with("admin_api", r#""u1""#),
                ),
            );
        }
    }
    // oidc_jwt_pre_create.go / oidc_id_token_pre_create.go: claims of every JSON kind.
    let claims = concat!(
        r#"{"amr":["pwd","mfa"],"aud":["my-client"],"auth_time":1787299445,"client_id":"my-client","exp":1787303045,"#,
        r#""float":0.30000000000000004,"https://authgear.com/claims/user/can_reauthenticate":true,"#,
        r#""https://authgear.com/claims/user/is_anonymous":false,"https://authgear.com/claims/user/is_verified":true,"#,
        r#""https://authgear.com/claims/user/roles":["admin"],"iat":1787299445,"iss":"https://myapp.authgear.cloud","#,
        r#""jti":"j\u003c\u003e","neg":-1e-300,"big":1.2345678901234567e+89,"int53":9007199254740993,"#,
        r#""obj":{"a":null,"b":[{},[]]},"sid":"c2lk","sub":"u1"}"#
    );
    for (event_type, key, identities) in [
        ("oidc.jwt.pre_create", "jwt", "null"),
        (
            "oidc.id_token.pre_create",
            "id_token",
            identities_all.as_str(),
        ),
    ] {
        add(
            event_type,
            envelope(
                "42",
                event_type,
                &format!(
                    r#"{{"user":{},"identities":{identities},"{key}":{{"payload":{claims}}}}}"#,
                    full_user("u1")
                ),
                &full,
            ),
        );
        add(
            &format!("{event_type} no claims"),
            envelope(
                "42",
                event_type,
                &format!(
                    r#"{{"user":{},"identities":[],"{key}":{{"payload":{{}}}}}}"#,
                    plain_user("u1")
                ),
                &context_with("system", r#""u1""#),
            ),
        );
    }
    // authentication_*.go with event_payload.go's AuthenticationContext.
    let authenticator = |id: &str, authenticator_type: &str, kind: &str| {
        format!(
            r#"{{"id":"{id}","created_at":"2026-08-21T03:04:05Z","updated_at":"2026-08-21T03:04:05Z","user_id":"u1","type":"{authenticator_type}","is_default":false,"kind":"{kind}"}}"#
        )
    };
    let authentications = format!(
        r#"[{{"authentication":"primary_password","authenticator":{}}},{{"authentication":"secondary_totp","authenticator":{}}},{{"authentication":"primary_passkey","authenticator":{}}},{{"authentication":"primary_oob_otp_email","authenticator":{}}},{{"authentication":"secondary_oob_otp_sms","authenticator":{}}},{{"authentication":"recovery_code","authenticator":null}},{{"authentication":"device_token","authenticator":null}},{{"authentication":"a_future_method","authenticator":{}}}]"#,
        authenticator("a1", "password", "primary"),
        authenticator("a2", "totp", "secondary"),
        authenticator("a3", "passkey", "primary"),
        authenticator("a4", "oob_otp_email", "primary"),
        authenticator("a5", "oob_otp_sms", "secondary"),
        authenticator("a6", "a_future_type", "a_future_kind"),
    );
    let identifications = format!(
        r#"[{{"identification":"email","identity":{},"id_token":null}},{{"identification":"id_token","identity":null,"id_token":"eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}},{{"identification":"select_account","identity":{},"id_token":null}},{{"identification":"ldap","identity":{},"id_token":null}},{{"identification":"a_future_one","identity":null,"id_token":null}}]"#,
        email_identity(),
        oauth_identity(),
        more_identities()[2],
    );
    let contexts = [
        // pre_initialize: a nil flow pointer, nil user, nil slices.
        (
            "nil",
            r#"{"authentication_flow":null,"user":null,"asserted_identifications":null,"asserted_authentications":null,"amr":null}"#.to_owned(),
        ),
        // omitzero type and name.
        (
            "empty flow",
            r#"{"authentication_flow":{},"user":null,"asserted_identifications":[],"asserted_authentications":[],"amr":[]}"#.to_owned(),
        ),
        (
            "name only",
            format!(
                r#"{{"authentication_flow":{{"name":"default"}},"user":{},"asserted_identifications":{identifications},"asserted_authentications":null,"amr":null}}"#,
                plain_user("u1")
            ),
        ),
        (
            "full",
            format!(
                r#"{{"authentication_flow":{{"type":"account_recovery","name":"a \u003cflow\u003e"}},"user":{},"asserted_identifications":{identifications},"asserted_authentications":{authentications},"amr":["pwd","x_primary_password","x_secondary_totp","mfa","x_device_token","x_recovery_code"]}}"#,
                full_user("u1")
            ),
        ),
        (
            "future flow type",
            r#"{"authentication_flow":{"type":"a_future_flow","name":"x"},"user":null,"asserted_identifications":null,"asserted_authentications":null,"amr":null}"#.to_owned(),
        ),
    ];
    for (name, authentication_context) in &contexts {
        for event_type in [
            "authentication.pre_initialize",
            "authentication.pre_authenticated",
        ] {
            add(
                &format!("{event_type} {name}"),
                envelope(
                    "7",
                    event_type,
                    &format!(r#"{{"authentication_context":{authentication_context}}}"#),
                    &context_with("user", "null"),
                ),
            );
        }
    }
    for (identification, identity) in [
        ("email", email_identity()),
        ("phone", phone_identity()),
        ("username", username_identity()),
        ("oauth", oauth_identity()),
        ("passkey", more_identities()[0].clone()),
        ("ldap", more_identities()[2].clone()),
        ("select_account", email_identity()),
        ("id_token", "null".to_owned()),
    ] {
        let id_token = if identity == "null" {
            r#""eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ1MSJ9.c2ln""#
        } else {
            "null"
        };
        for (name, authentication_context) in [&contexts[0], &contexts[3]] {
            add(
                &format!("authentication.post_identified {identification} {name}"),
                envelope(
                    "8",
                    "authentication.post_identified",
                    &format!(
                        r#"{{"identification":{{"identification":"{identification}","identity":{identity},"id_token":{id_token}}},"authentication_context":{authentication_context}}}"#
                    ),
                    &full,
                ),
            );
        }
    }

    // Non-blocking, ForHook() true.
    for (name, user, identities) in [
        ("plain", plain_user("u1"), "null".to_owned()),
        ("full", full_user("u1"), identities_all.clone()),
    ] {
        add(
            &format!("user.created {name}"),
            envelope(
                "100",
                "user.created",
                &format!(r#"{{"user":{user},"identities":{identities}}}"#),
                &full,
            ),
        );
        add(
            &format!("user.anonymous.promoted {name}"),
            envelope(
                "101",
                "user.anonymous.promoted",
                &format!(
                    r#"{{"anonymous_user":{},"user":{user},"identities":{identities}}}"#,
                    plain_user("u1").replace(r#""is_anonymous":false"#, r#""is_anonymous":true"#)
                ),
                &full,
            ),
        );
    }
    // user_authenticated.go: session nil (SAML), full, continued; user_reauthenticated.go.
    for (name, session, continued) in [
        ("null session", "null".to_owned(), String::new()),
        ("full session", full_session(), String::new()),
        (
            "continued",
            full_session(),
            format!(r#","continue_from_session":{}"#, minimal_session()),
        ),
        ("offline grant", minimal_session(), String::new()),
    ] {
        add(
            &format!("user.authenticated {name}"),
            envelope(
                "102",
                "user.authenticated",
                &format!(
                    r#"{{"user":{},"session":{session}{continued}}}"#,
                    full_user("u1")
                ),
                &full,
            ),
        );
    }
    for session in [full_session(), minimal_session()] {
        add(
            "user.reauthenticated",
            envelope(
                "103",
                "user.reauthenticated",
                &format!(r#"{{"user":{},"session":{session}}}"#, plain_user("u1")),
                &full,
            ),
        );
    }
    for event_type in [
        "user.profile.updated",
        "user.reenabled",
        "user.deletion_scheduled",
        "user.deletion_unscheduled",
        "user.anonymization_scheduled",
        "user.anonymization_unscheduled",
        "user.anonymized",
    ] {
        add(
            event_type,
            envelope(
                "104",
                event_type,
                &format!(r#"{{"user":{}}}"#, full_user("u1")),
                &context_with("portal", r#""u1""#),
            ),
        );
    }
    // user_disabled.go: both pointers omitempty; user_deleted.go: reason omitzero.
    add(
        "user.disabled",
        envelope(
            "105",
            "user.disabled",
            &format!(r#"{{"user":{}}}"#, full_user("u1")),
            &context_with("site_admin", r#""u1""#),
        ),
    );
    add(
        "user.disabled temporarily",
        envelope(
            "105",
            "user.disabled",
            &format!(
                r#"{{"user":{},"temporarily_disabled_from":"2026-08-21T03:04:05.5+08:00","temporarily_disabled_until":"2026-08-22T03:04:05Z"}}"#,
                full_user("u1")
            ),
            &full,
        ),
    );
    add(
        "user.deleted",
        envelope(
            "106",
            "user.deleted",
            &format!(r#"{{"user":{}}}"#, plain_user("u1")),
            &context_with("system", r#""u1""#),
        ),
    );
    add(
        "user.deleted reason",
        envelope(
            "106",
            "user.deleted",
            &format!(
                r#"{{"user":{},"reason":"asked \u0026 done"}}"#,
                plain_user("u1")
            ),
            &bare,
        ),
    );
    // identity_*.go.
    for (kind, identity) in [
        ("email", email_identity()),
        ("phone", phone_identity()),
        ("username", username_identity()),
    ] {
        for action in ["added", "removed", "verified", "unverified"] {
            add(
                &format!("identity.{kind}.{action}"),
                envelope(
                    "107",
                    &format!("identity.{kind}.{action}"),
                    &format!(r#"{{"user":{},"identity":{identity}}}"#, full_user("u1")),
                    &full,
                ),
            );
        }
        add(
            &format!("identity.{kind}.updated"),
            envelope(
                "108",
                &format!("identity.{kind}.updated"),
                &format!(
                    r#"{{"user":{},"new_identity":{identity},"old_identity":{identity}}}"#,
                    plain_user("u1")
                ),
                &full,
            ),
        );
    }
    for (event_type, identity) in [
        ("identity.oauth.connected", oauth_identity()),
        ("identity.oauth.disconnected", oauth_identity()),
        ("identity.biometric.enabled", biometric_identity()),
        ("identity.biometric.disabled", biometric_identity()),
    ] {
        add(
            event_type,
            envelope(
                "109",
                event_type,
                &format!(r#"{{"user":{},"identity":{identity}}}"#, plain_user("u1")),
                &full,
            ),
        );
    }
    // A payload whose GetTriggeredBy() is the zero value: `"triggered_by":""`.
    add(
        "user.reenabled no triggered_by",
        envelope(
            "104",
            "user.reenabled",
            &format!(r#"{{"user":{}}}"#, plain_user("u1")),
            &context_with("", r#""u1""#),
        ),
    );
    // usage_alert_triggered.go: every field always sent (plain values, no omitempty).
    for (name, usage) in [
        (
            "sms",
            r#"{"name":"sms","action":"alert","period":"month","quota":1000,"current_value":900,"plan_name":"business"}"#,
        ),
        (
            "zero",
            r#"{"name":"whatsapp","action":"block","period":"day","quota":0,"current_value":0,"plan_name":""}"#,
        ),
        (
            "big",
            r#"{"name":"user_export","action":"a_future_action","period":"a_future_period","quota":9223372036854775807,"current_value":-1,"plan_name":"enterprise"}"#,
        ),
    ] {
        add(
            &format!("usage.alert.triggered {name}"),
            envelope(
                "110",
                "usage.alert.triggered",
                &format!(r#"{{"usage":{usage}}}"#),
                &context_with("system", "null"),
            ),
        );
    }
    all
}

/// The held-out contract: parses, keeps its type and its typed payload, not off-model, and
/// gives back exactly the JSON value it was parsed from.
fn check(name: &str, body: &[u8]) -> Event {
    let sent: Value = serde_json::from_slice(body).unwrap_or_else(|e| panic!("{name}: {e}"));
    let event: Event = serde_json::from_slice(body).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(event.event_type(), sent["type"], "{name}");
    assert_eq!(event.off_model_reason(), None, "{name}");
    assert!(
        !matches!(
            event.payload,
            Payload::OffModel { .. } | Payload::Unknown { .. }
        ),
        "{name}: {:?}",
        event.payload
    );
    assert!(event.context.is_some(), "{name}");
    assert!(event.seq.is_some(), "{name}");
    let written = serde_json::to_value(&event).expect("serialise");
    assert_eq!(written, sent, "{name}");
    // And from the written bytes again (a handler that stores and re-reads the event).
    let bytes = serde_json::to_vec(&event).expect("serialise");
    let again: Event = serde_json::from_slice(&bytes).expect("re-parse");
    assert_eq!(again, event, "{name}");
    event
}

/// The keys found in the `extra` of every typed part of `event` (but `audit_context`, a
/// free-form map on the server), as `part.key`.
fn untyped(event: &Event) -> Vec<String> {
    fn keys<'a>(part: &str, extra: impl IntoIterator<Item = &'a String>, out: &mut Vec<String>) {
        out.extend(extra.into_iter().map(|key| format!("{part}.{key}")));
    }
    fn user(user: &User, out: &mut Vec<String>) {
        keys("user", user.extra.keys(), out);
    }
    fn identity(identity: &Identity, out: &mut Vec<String>) {
        keys("identity", identity.extra.keys(), out);
    }
    fn identities(list: &Option<Vec<Identity>>, out: &mut Vec<String>) {
        for one in list.iter().flatten() {
            identity(one, out);
        }
    }
    fn session(session: &Option<Session>, out: &mut Vec<String>) {
        if let Some(session) = session {
            keys("session", session.extra.keys(), out);
        }
    }
    fn identification(identification: &Identification, out: &mut Vec<String>) {
        keys("identification", identification.extra.keys(), out);
        if let Some(one) = &identification.identity {
            identity(one, out);
        }
    }
    fn authentication(context: &AuthenticationContext, out: &mut Vec<String>) {
        keys("authentication_context", context.extra.keys(), out);
        if let Some(flow) = &context.authentication_flow {
            keys("authentication_flow", flow.extra.keys(), out);
        }
        if let Some(one) = &context.user {
            user(one, out);
        }
        for one in context.asserted_identifications.iter().flatten() {
            identification(one, out);
        }
        for one in context.asserted_authentications.iter().flatten() {
            keys("authentication", one.extra.keys(), out);
            if let Some(authenticator) = &one.authenticator {
                keys("authenticator", authenticator.extra.keys(), out);
            }
        }
    }
    let mut out = Vec::new();
    keys("envelope", event.extra.keys(), &mut out);
    if let Some(context) = &event.context {
        keys("context", context.extra.keys(), &mut out);
        if let Some(oauth) = &context.oauth {
            keys("oauth", oauth.extra.keys(), &mut out);
        }
    }
    match &event.payload {
        Payload::UserPreCreate(p) => {
            keys("payload", p.extra.keys(), &mut out);
            user(&p.user, &mut out);
            identities(&p.identities, &mut out);
        }
        Payload::UserProfilePreUpdate(p) => {
            keys("payload", p.extra.keys(), &mut out);
            user(&p.user, &mut out);
        }
        Payload::UserPreScheduleDeletion(p) => {
            keys("payload", p.extra.keys(), &mut out);
            user(&p.user, &mut out);
        }
        Payload::UserPreScheduleAnonymization(p) => {
            keys("payload", p.extra.keys(), &mut out);
            user(&p.user, &mut out);
        }
        Payload::OidcJwtPreCreate(p) => {
            keys("payload", p.extra.keys(), &mut out);
            keys("jwt", p.jwt.extra.keys(), &mut out);
            user(&p.user, &mut out);
            identities(&p.identities, &mut out);
        }
        Payload::OidcIdTokenPreCreate(p) => {
            keys("payload", p.extra.keys(), &mut out);
            keys("id_token", p.id_token.extra.keys(), &mut out);
            user(&p.user, &mut out);
            identities(&p.identities, &mut out);
        }
        Payload::AuthenticationPreInitialize(p) => {
            keys("payload", p.extra.keys(), &mut out);
            authentication(&p.authentication_context, &mut out);
        }
        Payload::AuthenticationPostIdentified(p) => {
            keys("payload", p.extra.keys(), &mut out);
            identification(&p.identification, &mut out);
            authentication(&p.authentication_context, &mut out);
        }
        Payload::AuthenticationPreAuthenticated(p) => {
            keys("payload", p.extra.keys(), &mut out);
            authentication(&p.authentication_context, &mut out);
        }
        Payload::UserCreated(p) => {
            keys("payload", p.extra.keys(), &mut out);
            user(&p.user, &mut out);
            identities(&p.identities, &mut out);
        }
        Payload::UserAuthenticated(p) | Payload::UserReauthenticated(p) => {
            keys("payload", p.extra.keys(), &mut out);
            user(&p.user, &mut out);
            session(&p.session, &mut out);
            session(&p.continue_from_session, &mut out);
        }
        Payload::UserProfileUpdated(p)
        | Payload::UserReenabled(p)
        | Payload::UserDeletionScheduled(p)
        | Payload::UserDeletionUnscheduled(p)
        | Payload::UserAnonymizationScheduled(p)
        | Payload::UserAnonymizationUnscheduled(p)
        | Payload::UserAnonymized(p) => {
            keys("payload", p.extra.keys(), &mut out);
            user(&p.user, &mut out);
        }
        Payload::UserDisabled(p) => {
            keys("payload", p.extra.keys(), &mut out);
            user(&p.user, &mut out);
        }
        Payload::UserAnonymousPromoted(p) => {
            keys("payload", p.extra.keys(), &mut out);
            user(&p.anonymous_user, &mut out);
            user(&p.user, &mut out);
            identities(&p.identities, &mut out);
        }
        Payload::UserDeleted(p) => {
            keys("payload", p.extra.keys(), &mut out);
            user(&p.user, &mut out);
        }
        Payload::IdentityEmailUpdated(p)
        | Payload::IdentityPhoneUpdated(p)
        | Payload::IdentityUsernameUpdated(p) => {
            keys("payload", p.extra.keys(), &mut out);
            user(&p.user, &mut out);
            identity(&p.new_identity, &mut out);
            identity(&p.old_identity, &mut out);
        }
        Payload::UsageAlertTriggered(p) => {
            keys("payload", p.extra.keys(), &mut out);
            keys("usage", p.usage.extra.keys(), &mut out);
        }
        Payload::IdentityEmailAdded(p)
        | Payload::IdentityEmailRemoved(p)
        | Payload::IdentityEmailVerified(p)
        | Payload::IdentityEmailUnverified(p)
        | Payload::IdentityPhoneAdded(p)
        | Payload::IdentityPhoneRemoved(p)
        | Payload::IdentityPhoneVerified(p)
        | Payload::IdentityPhoneUnverified(p)
        | Payload::IdentityUsernameAdded(p)
        | Payload::IdentityUsernameRemoved(p)
        | Payload::IdentityUsernameVerified(p)
        | Payload::IdentityUsernameUnverified(p)
        | Payload::IdentityOauthConnected(p)
        | Payload::IdentityOauthDisconnected(p)
        | Payload::IdentityBiometricEnabled(p)
        | Payload::IdentityBiometricDisabled(p) => {
            keys("payload", p.extra.keys(), &mut out);
            user(&p.user, &mut out);
            identity(&p.identity, &mut out);
        }
        other => out.push(format!("payload not typed: {}", other.event_type())),
    }
    out
}

#[test]
fn deliveries_of_todays_server_parse_typed_and_round_trip() {
    let deliveries = deliveries();
    assert!(deliveries.len() >= 80, "{}", deliveries.len());
    for (name, body) in &deliveries {
        let event = check(name, body.as_bytes());
        // Every key Go writes is a typed field: nothing lands in an `extra` (a misspelt
        // field would round-trip through `extra` and still be `None` in the typed model).
        let left = untyped(&event);
        assert!(left.is_empty(), "{name}: untyped keys {left:?}");
    }
}

#[test]
fn the_envelope_itself() {
    let payload = format!(r#"{{"user":{},"identities":null}}"#, plain_user("u1"));
    let context = context_full();
    // seq at both ends of int64; a trailing newline (json.Encoder's), surrounding spaces.
    for seq in ["0", "-9223372036854775808", "9223372036854775807"] {
        let body = envelope(seq, "user.created", &payload, &context);
        check(&format!("seq {seq}"), body.as_bytes());
        check("newline", format!("{body}\n").as_bytes());
        check("spaces", format!(" \r\n\t{body} \n").as_bytes());
    }
    // Unknown top-level keys are kept, and written back.
    let body = envelope("1", "user.created", &payload, &context).replacen(
        r#"{"id""#,
        r#"{"schema_version":2,"trace":{"a":[1,null]},"id""#,
        1,
    );
    let event = check("extra keys", body.as_bytes());
    assert_eq!(event.extra["schema_version"], 2);
    // Duplicate keys (Go never writes them): the last one wins, as in serde_json's Value,
    // and the event is still typed.
    let body = envelope("1", "user.created", &payload, &context)
        .replacen(
            r#"{"id":"0000000000a1b2c3""#,
            r#"{"id":"first","id":"second""#,
            1,
        )
        .replacen(r#""seq":1"#, r#""seq":5,"seq":1"#, 1);
    let event: Event = serde_json::from_slice(body.as_bytes()).expect("parses");
    assert_eq!(event.id, "second");
    assert_eq!(event.seq, Some(1));
    assert!(matches!(event.payload, Payload::UserCreated(_)));
    // Trailing garbage after the object is not JSON: refused.
    let body = format!("{} x", envelope("1", "user.created", &payload, &context));
    assert!(serde_json::from_slice::<Event>(body.as_bytes()).is_err());
    // A type this crate does not know (a portal event: project_app_created.go) is Unknown,
    // kept as sent.
    let body = envelope(
        "3",
        "project.domain.created",
        r#"{"domain":"auth.example.com","domain_id":"d1"}"#,
        &context_with("portal", "null"),
    );
    let event: Event = serde_json::from_slice(body.as_bytes()).expect("parses");
    assert!(matches!(event.payload, Payload::Unknown { .. }));
    assert_eq!(event.event_type(), "project.domain.created");
    assert_eq!(
        serde_json::to_value(&event).expect("serialise"),
        serde_json::from_str::<Value>(&body).expect("json")
    );
}

#[test]
fn context_fields_are_typed() {
    let body = envelope(
        "1",
        "user.created",
        &format!(r#"{{"user":{},"identities":null}}"#, plain_user("u1")),
        &context_full(),
    );
    let event = check("context", body.as_bytes());
    let context = event.context.expect("context");
    assert_eq!(context.timestamp, 1787299445);
    assert_eq!(context.user_id.as_deref(), Some("u1"));
    assert_eq!(
        context.triggered_by.as_ref().map(|t| t.as_str()),
        Some("user")
    );
    assert_eq!(
        context
            .audit_context
            .and_then(|audit| audit.http_url)
            .as_deref(),
        Some("https://myapp.authgear.cloud/oauth2/authorize?client_id=x&redirect_uri=y")
    );
    assert_eq!(
        context.preferred_languages.as_deref(),
        Some(&["zh-Hant-HK".to_owned(), "en".to_owned()][..])
    );
    assert_eq!(context.language.as_deref(), Some("zh-HK"));
    let oauth = context.oauth.expect("oauth");
    assert_eq!(oauth.state.as_deref(), Some("s<1>"));
    assert_eq!(oauth.x_state.as_deref(), Some("campaign=spring&ref=1"));
    assert_eq!(context.ip_address.as_deref(), Some("2001:db8::1"));
    assert_eq!(context.geo_location_code.as_deref(), Some("HK"));
    assert_eq!(
        context.user_agent.as_deref(),
        Some("Mozilla/5.0 \u{2028} \"quoted\"")
    );
    assert_eq!(context.app_id.as_deref(), Some("myapp"));
    assert_eq!(context.client_id.as_deref(), Some("my-client"));
    assert!(context.tracking_id.is_some());
    assert!(context.extra.is_empty(), "{:?}", context.extra);
}

// Runs `axum_server`.
#[tokio::test]
async fn every_audit_delivery_gets_200_from_axum_server() {
    use crate::common::example::{SECRET, Server};
    use authgear_webhook::sign;
    use http::StatusCode;

    use authgear_webhook::event::is_blocking_type;

    let schema = |event_type: &str| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
            "tests/fixtures/schema/{event_type}.response.schema.json"
        ));
        let schema: Value =
            serde_json::from_slice(&std::fs::read(path).expect("schema")).expect("json");
        jsonschema::validator_for(&schema).expect("a valid schema")
    };
    // Replay protection off: these deliveries share ids and carry fixed timestamps.
    let server = Server::start("axum_server", &[("AUTHGEAR_WEBHOOK_REPLAY", "off")]);
    for (name, body) in deliveries() {
        let sent: Value = serde_json::from_str(&body).expect("json");
        let body = body.as_bytes();
        let (status, _, answer) = server.post(body, Some(sign(SECRET, body))).await;
        assert_eq!(status, StatusCode::OK, "{name}: {answer}");
        let event_type = sent["type"].as_str().expect("type");
        if !is_blocking_type(event_type) {
            continue;
        }
        let answer: Value = serde_json::from_str(&answer).expect("a JSON answer");
        if let Err(error) = schema(event_type).validate(&answer) {
            panic!("{name}: Authgear refuses {answer}: {error}");
        }
        if event_type == "oidc.jwt.pre_create" {
            // Every claim sent comes back as the same JSON value, plus the example's one.
            let claims = answer["mutations"]["jwt"]["payload"]
                .as_object()
                .expect("claims");
            let sent = sent["payload"]["jwt"]["payload"].as_object().expect("sent");
            assert_eq!(claims.len(), sent.len() + 1, "{name}");
            for (claim, value) in sent {
                assert_eq!(claims.get(claim), Some(value), "{name}: {claim}");
            }
        }
    }
}

/// The same deliveries with replay protection on (the default): each with a fresh id and
/// the current time, its other bytes as written; and one with a trailing newline
/// (`json.Encoder`'s).
// Runs `axum_server`.
#[tokio::test]
async fn with_replay_protection_on_every_fresh_audit_delivery_gets_200() {
    use crate::common::example::{SECRET, Server};
    use authgear_webhook::sign;
    use http::StatusCode;
    use std::time::{SystemTime, UNIX_EPOCH};

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let server = Server::start("axum_server", &[]);
    let mut last = Vec::new();
    for (index, (name, body)) in deliveries().into_iter().enumerate() {
        let body = body
            .replacen(
                r#"{"id":"0000000000a1b2c3""#,
                &format!(r#"{{"id":"{:016x}""#, 0xa0d1_0000 + index),
                1,
            )
            .replacen(
                r#""timestamp":1787299445,"#,
                &format!(r#""timestamp":{now},"#),
                1,
            )
            .replacen(r#""timestamp":0,"#, &format!(r#""timestamp":{now},"#), 1);
        assert!(body.contains(&format!(r#""timestamp":{now},"#)), "{name}");
        let (status, _, answer) = server
            .post(body.as_bytes(), Some(sign(SECRET, body.as_bytes())))
            .await;
        assert_eq!(status, StatusCode::OK, "{name}: {answer}");
        last = body.into_bytes();
    }
    // A new id: the same id again is a repeated delivery (tests/suite/replay.rs).
    let mut body = String::from_utf8(last)
        .expect("utf-8")
        .replacen(r#"{"id":""#, r#"{"id":"n"#, 1);
    body.push('\n');
    let (status, _, answer) = server
        .post(body.as_bytes(), Some(sign(SECRET, body.as_bytes())))
        .await;
    assert_eq!(status, StatusCode::OK, "trailing newline: {answer}");
}
