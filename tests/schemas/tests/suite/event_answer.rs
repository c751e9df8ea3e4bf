//! Blocking answers against Authgear's own response schemas: every answer the builders can
//! produce validates for its event (property test), and the example answers from Authgear's
//! docs and tests can be built and serialise to the same JSON.

use std::{collections::BTreeMap, fs, path::PathBuf};

use authgear_webhook::event::{
    Amr, Answer, AuthenticationPostIdentifiedPayload, AuthenticationPreAuthenticatedPayload,
    AuthenticationPreInitializePayload, BotProtectionMode, Event, OidcIdTokenPreCreatePayload,
    OidcJwtPreCreatePayload, Payload, RateLimit, UserPreCreatePayload,
    UserPreScheduleAnonymizationPayload, UserPreScheduleDeletionPayload,
    UserProfilePreUpdatePayload, Weight,
};
use jsonschema::Validator;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::common::BLOCKING;

const USER_EVENTS: [&str; 4] = [
    "user.pre_create",
    "user.profile.pre_update",
    "user.pre_schedule_deletion",
    "user.pre_schedule_anonymization",
];

fn fixture(path: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    serde_json::from_slice(&fs::read(&path).expect("read fixture")).expect("json fixture")
}

/// Authgear's response schema for `event_type`.
fn schema(event_type: &str) -> Validator {
    let schema = fixture(&format!("schema/{event_type}.response.schema.json"));
    jsonschema::validator_for(&schema).expect("a valid schema")
}

fn assert_valid(validator: &Validator, event_type: &str, answer: &Value) {
    if let Err(error) = validator.validate(answer) {
        panic!("{event_type} refuses {answer}: {error}");
    }
}

/// The example delivery of `event_type` if there is one, else one built from the nearest.
fn event(event_type: &str) -> Event {
    let value = match event_type {
        "user.pre_schedule_deletion" | "user.pre_schedule_anonymization" => {
            let mut value = fixture("events/user.profile.pre_update.json");
            value["type"] = json!(event_type);
            value
        }
        "oidc.id_token.pre_create" => {
            let mut value = fixture("events/oidc.jwt.pre_create.json");
            value["type"] = json!(event_type);
            let payload = value["payload"].as_object_mut().expect("payload");
            let token = payload.remove("jwt").expect("jwt");
            payload.insert("id_token".into(), token);
            value
        }
        _ => fixture(&format!("events/{event_type}.json")),
    };
    serde_json::from_value(value).expect("event")
}

fn user_pre_create() -> UserPreCreatePayload {
    match event("user.pre_create").payload {
        Payload::UserPreCreate(payload) => payload,
        other => panic!("{other:?}"),
    }
}

fn profile_pre_update() -> UserProfilePreUpdatePayload {
    match event("user.profile.pre_update").payload {
        Payload::UserProfilePreUpdate(payload) => payload,
        other => panic!("{other:?}"),
    }
}

fn pre_schedule_deletion() -> UserPreScheduleDeletionPayload {
    match event("user.pre_schedule_deletion").payload {
        Payload::UserPreScheduleDeletion(payload) => payload,
        other => panic!("{other:?}"),
    }
}

fn pre_schedule_anonymization() -> UserPreScheduleAnonymizationPayload {
    match event("user.pre_schedule_anonymization").payload {
        Payload::UserPreScheduleAnonymization(payload) => payload,
        other => panic!("{other:?}"),
    }
}

fn jwt_pre_create() -> OidcJwtPreCreatePayload {
    match event("oidc.jwt.pre_create").payload {
        Payload::OidcJwtPreCreate(payload) => payload,
        other => panic!("{other:?}"),
    }
}

fn id_token_pre_create() -> OidcIdTokenPreCreatePayload {
    match event("oidc.id_token.pre_create").payload {
        Payload::OidcIdTokenPreCreate(payload) => payload,
        other => panic!("{other:?}"),
    }
}

fn pre_initialize() -> AuthenticationPreInitializePayload {
    match event("authentication.pre_initialize").payload {
        Payload::AuthenticationPreInitialize(payload) => payload,
        other => panic!("{other:?}"),
    }
}

fn post_identified() -> AuthenticationPostIdentifiedPayload {
    match event("authentication.post_identified").payload {
        Payload::AuthenticationPostIdentified(payload) => payload,
        other => panic!("{other:?}"),
    }
}

fn pre_authenticated() -> AuthenticationPreAuthenticatedPayload {
    match event("authentication.pre_authenticated").payload {
        Payload::AuthenticationPreAuthenticated(payload) => payload,
        other => panic!("{other:?}"),
    }
}

fn to_value(answer: impl Into<Answer>) -> Value {
    serde_json::to_value(answer.into()).expect("serialises")
}

#[test]
fn the_schemas_refuse_what_the_builders_cannot_build() {
    // Proof that the validation below can fail: answers Authgear refuses.
    let refused = [
        ("user.pre_create", json!({})),
        (
            "user.pre_create",
            json!({ "is_allowed": false, "mutations": {} }),
        ),
        (
            "user.pre_create",
            json!({ "is_allowed": true, "constraints": { "amr": ["mfa"] } }),
        ),
        ("user.pre_create", json!({ "is_allowed": true, "extra": 1 })),
        (
            "oidc.jwt.pre_create",
            json!({ "is_allowed": true, "rate_limits": {} }),
        ),
        (
            "authentication.pre_authenticated",
            json!({ "is_allowed": true, "bot_protection": { "mode": "always" } }),
        ),
        (
            "authentication.pre_initialize",
            json!({ "is_allowed": true, "constraints": { "amr": ["face"] } }),
        ),
        (
            "authentication.pre_initialize",
            json!({ "is_allowed": true,
                "rate_limits": { "authentication.general": { "weight": -1 } } }),
        ),
        (
            "authentication.post_identified",
            json!({ "is_allowed": true, "mutations": { "user": {} } }),
        ),
    ];
    for (event_type, answer) in refused {
        assert!(
            !schema(event_type).is_valid(&answer),
            "{event_type} should refuse {answer}"
        );
    }
}

#[test]
fn every_example_answer_can_be_built_and_serialises_the_same() {
    let mut attributes = Map::new();
    attributes.insert("name".into(), json!("John"));
    let mut custom = Map::new();
    custom.insert("age".into(), json!(30));
    let mut jane = Map::new();
    jane.insert("name".into(), json!("Jane"));
    // The docs' token: the example delivery's event with the docs' claims.
    let mut docs_token = event("oidc.jwt.pre_create");
    let Payload::OidcJwtPreCreate(payload) = &mut docs_token.payload else {
        panic!("oidc.jwt.pre_create");
    };
    payload.jwt.payload = serde_json::from_value(json!({
        "iss": "https://myapp.authgear.cloud",
        "aud": ["YOUR_CLIENT_ID"],
        "sub": "THE_USER_ID",
    }))
    .expect("claims");
    let docs_jwt = payload
        .allow()
        .add_claim(
            "https://myapp.com",
            json!({ "custom_field": "custom_value" }),
        )
        .expect("a new claim");

    // (file, the event it answers, the answer built with the API)
    let built: BTreeMap<&str, (&str, Value)> = BTreeMap::from([
        ("allow.json", ("user.pre_create", to_value(Answer::allow()))),
        (
            "bot-protection-always.json",
            (
                "authentication.pre_initialize",
                to_value(
                    pre_initialize()
                        .allow()
                        .bot_protection(BotProtectionMode::Always),
                ),
            ),
        ),
        (
            "constraints-amr-mfa.json",
            (
                "authentication.pre_authenticated",
                to_value(pre_authenticated().allow().require_amr([Amr::Mfa])),
            ),
        ),
        (
            "deny.json",
            (
                "user.pre_create",
                to_value(Answer::deny().title("some title").reason("some reason")),
            ),
        ),
        (
            "mutations-jwt-docs.json",
            ("oidc.jwt.pre_create", to_value(docs_jwt)),
        ),
        (
            "mutations-user-attributes.json",
            (
                "user.profile.pre_update",
                to_value(
                    profile_pre_update()
                        .allow()
                        .standard_attributes(attributes)
                        .custom_attributes(custom),
                ),
            ),
        ),
        (
            "mutations-user-roles-groups.spec.json",
            (
                "user.pre_create",
                to_value(
                    user_pre_create()
                        .allow()
                        .standard_attributes(jane)
                        .roles(["store_manager", "salesperson"])
                        .groups(["manager"]),
                ),
            ),
        ),
        (
            "rate-limits-account-enumeration.json",
            (
                "authentication.post_identified",
                to_value(
                    post_identified()
                        .allow()
                        .rate_limit(RateLimit::AccountEnumeration, Weight::from(2)),
                ),
            ),
        ),
    ]);

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/responses");
    let mut files: Vec<String> = fs::read_dir(dir)
        .expect("responses")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    assert_eq!(
        files,
        built
            .keys()
            .map(|name| name.to_string())
            .collect::<Vec<_>>(),
        "every example answer is built here"
    );
    for (file, (event_type, answer)) in built {
        assert_eq!(answer, fixture(&format!("responses/{file}")), "{file}");
        assert_valid(&schema(event_type), event_type, &answer);
    }
}

#[test]
fn allow_and_deny_fit_every_blocking_event() {
    for event_type in BLOCKING {
        let validator = schema(event_type);
        for answer in [
            to_value(Answer::allow()),
            to_value(Answer::deny()),
            to_value(Answer::deny().title("t").reason("r")),
        ] {
            assert_valid(&validator, event_type, &answer);
        }
    }
}

#[test]
fn a_claim_already_in_the_token_cannot_be_changed() {
    let payload = jwt_pre_create();
    let error = payload
        .allow()
        .add_claim("sub", "someone-else")
        .expect_err("sub is the event's");
    assert_eq!(error.name(), "sub");
    let error = payload
        .allow()
        .add_claim("plan", "pro")
        .and_then(|answer| answer.add_claim("plan", "free"))
        .expect_err("plan was added with another value");
    assert_eq!(error.name(), "plan");
    // The same value is fine, and an answer with no claim added changes nothing.
    let same = payload
        .allow()
        .add_claim("sub", payload.jwt.payload["sub"].clone());
    assert_eq!(
        to_value(same.expect("unchanged")),
        json!({ "is_allowed": true })
    );
}

#[test]
fn weights_are_finite_and_not_negative() {
    for bad in [
        -1.0,
        -f64::MIN_POSITIVE,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ] {
        assert!(Weight::new(bad).is_err(), "{bad}");
    }
    for good in [0.0, -0.0, 0.5, 1.0, 1e300] {
        assert!(Weight::new(good).is_ok(), "{good}");
    }
    let answer = pre_initialize()
        .allow()
        .rate_limit(RateLimit::General, Weight::new(-0.0).expect("zero"))
        .rate_limit(
            RateLimit::AccountEnumeration,
            Weight::new(0.25).expect("a quarter"),
        );
    assert_eq!(
        to_value(answer),
        json!({ "is_allowed": true, "rate_limits": {
            "authentication.general": { "weight": 0 },
            "authentication.account_enumeration": { "weight": 0.25 }
        } }),
    );
}

const AMR: [Amr; 12] = [
    Amr::Mfa,
    Amr::Otp,
    Amr::Pwd,
    Amr::Sms,
    Amr::XPrimaryPassword,
    Amr::XPrimaryOobOtpEmail,
    Amr::XPrimaryOobOtpSms,
    Amr::XSecondaryPassword,
    Amr::XSecondaryOobOtpEmail,
    Amr::XSecondaryOobOtpSms,
    Amr::XSecondaryTotp,
    Amr::XRecoveryCode,
];

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::num::f64::NORMAL.prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(".{0,8}", json_value(), 0..5)
        .prop_map(|map| map.into_iter().collect())
}

/// One step of building a `UserAnswer`.
#[derive(Debug, Clone)]
enum UserStep {
    StandardAttributes(Map<String, Value>),
    CustomAttributes(Map<String, Value>),
    StandardAttribute(String, Value),
    CustomAttribute(String, Value),
    Roles(Vec<String>),
    Groups(Vec<String>),
}

fn user_step() -> impl Strategy<Value = UserStep> {
    prop_oneof![
        json_object().prop_map(UserStep::StandardAttributes),
        json_object().prop_map(UserStep::CustomAttributes),
        (".{0,8}", json_value()).prop_map(|(k, v)| UserStep::StandardAttribute(k, v)),
        (".{0,8}", json_value()).prop_map(|(k, v)| UserStep::CustomAttribute(k, v)),
        prop::collection::vec(".{0,8}", 0..4).prop_map(UserStep::Roles),
        prop::collection::vec(".{0,8}", 0..4).prop_map(UserStep::Groups),
    ]
}

fn apply_user_steps(
    mut answer: authgear_webhook::event::UserAnswer,
    steps: &[UserStep],
) -> authgear_webhook::event::UserAnswer {
    for step in steps.iter().cloned() {
        answer = match step {
            UserStep::StandardAttributes(map) => answer.standard_attributes(map),
            UserStep::CustomAttributes(map) => answer.custom_attributes(map),
            UserStep::StandardAttribute(name, value) => answer.standard_attribute(name, value),
            UserStep::CustomAttribute(name, value) => answer.custom_attribute(name, value),
            UserStep::Roles(roles) => answer.roles(roles),
            UserStep::Groups(groups) => answer.groups(groups),
        };
    }
    answer
}

/// One step of building an `AuthenticationAnswer` or `PreAuthenticatedAnswer`.
#[derive(Debug, Clone)]
enum AuthenticationStep {
    Amr(Vec<Amr>),
    BotProtection(BotProtectionMode),
    RateLimit(RateLimit, f64),
}

fn authentication_step() -> impl Strategy<Value = AuthenticationStep> {
    let weight = prop_oneof![
        any::<f64>(),
        (0u32..10).prop_map(f64::from),
        Just(-0.0),
        Just(f64::NAN)
    ];
    let limit = prop_oneof![
        Just(RateLimit::General),
        Just(RateLimit::AccountEnumeration)
    ];
    prop_oneof![
        prop::collection::vec(prop::sample::select(&AMR[..]), 0..5)
            .prop_map(AuthenticationStep::Amr),
        prop_oneof![
            Just(BotProtectionMode::Never),
            Just(BotProtectionMode::Always)
        ]
        .prop_map(AuthenticationStep::BotProtection),
        (limit, weight).prop_map(|(limit, weight)| AuthenticationStep::RateLimit(limit, weight)),
    ]
}

/// The weight the builder accepts, or `None` when `Weight::new` must refuse it.
fn weight(value: f64) -> Option<Weight> {
    let accepted = Weight::new(value).ok();
    assert_eq!(
        accepted.is_some(),
        value.is_finite() && value >= 0.0,
        "{value}"
    );
    accepted
}

/// Whether Go's `reflect.DeepEqual` sees the same value after `json.Unmarshal` (numbers are
/// float64s).
fn go_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| go_equal(a, b))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, a)| b.get(k).is_some_and(|b| go_equal(a, b)))
        }
        (a, b) => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_deny_validates_for_every_blocking_event(
        title in proptest::option::of(".{0,20}"),
        reason in proptest::option::of(".{0,40}"),
    ) {
        let mut deny = Answer::deny();
        if let Some(title) = title {
            deny = deny.title(title);
        }
        if let Some(reason) = reason {
            deny = deny.reason(reason);
        }
        let answer = to_value(deny);
        for event_type in BLOCKING {
            assert_valid(&schema(event_type), event_type, &answer);
        }
    }

    #[test]
    fn every_user_answer_validates_for_every_user_event(
        steps in prop::collection::vec(user_step(), 0..6),
    ) {
        let answers = [
            ("user.pre_create", user_pre_create().allow()),
            ("user.profile.pre_update", profile_pre_update().allow()),
            ("user.pre_schedule_deletion", pre_schedule_deletion().allow()),
            ("user.pre_schedule_anonymization", pre_schedule_anonymization().allow()),
        ];
        for (event_type, answer) in answers {
            let answer = to_value(apply_user_steps(answer, &steps));
            for user_event in USER_EVENTS {
                assert_valid(&schema(user_event), event_type, &answer);
            }
        }
    }

    #[test]
    fn every_token_answer_validates_and_keeps_the_original_claims(
        claims in prop::collection::vec((
            prop_oneof![Just("sub".to_owned()), Just("iss".to_owned()), ".{0,8}"],
            json_value(),
        ), 0..6),
    ) {
        let jwt = jwt_pre_create();
        let id_token = id_token_pre_create();
        let answers = [
            ("oidc.jwt.pre_create", "jwt", jwt.allow(), &jwt.jwt.payload),
            ("oidc.id_token.pre_create", "id_token", id_token.allow(), &id_token.id_token.payload),
        ];
        for (event_type, key, mut answer, original) in answers {
            for (name, value) in &claims {
                let before = answer.claims().get(name).cloned();
                answer = match answer.clone().add_claim(name.clone(), value.clone()) {
                    Ok(added) => {
                        // New, or the same to Go (`1` and `1.0` are one float64): kept as it was.
                        let same = before.as_ref().is_some_and(|before| go_equal(before, value));
                        prop_assert!(before.is_none() || same);
                        let kept = if same { before.as_ref() } else { Some(value) };
                        prop_assert_eq!(added.claims().get(name), kept);
                        added
                    }
                    Err(error) => {
                        prop_assert_eq!(error.name(), name.as_str());
                        prop_assert!(before.is_some_and(|before| !go_equal(&before, value)));
                        answer
                    }
                };
            }
            let json = to_value(answer);
            assert_valid(&schema(event_type), event_type, &json);
            if let Some(payload) = json["mutations"][key]["payload"].as_object() {
                // Claims are only ever added: every original claim is there, unchanged.
                for (name, value) in original {
                    prop_assert_eq!(payload.get(name), Some(value));
                }
            } else {
                prop_assert_eq!(&json, &json!({ "is_allowed": true }));
            }
        }
    }

    #[test]
    fn every_authentication_answer_validates_for_its_events(
        steps in prop::collection::vec(authentication_step(), 0..6),
    ) {
        let mut early = [
            ("authentication.pre_initialize", pre_initialize().allow()),
            ("authentication.post_identified", post_identified().allow()),
        ];
        let mut late = pre_authenticated().allow();
        for step in steps {
            match step {
                AuthenticationStep::Amr(amr) => {
                    for (_, answer) in &mut early {
                        *answer = answer.clone().require_amr(amr.iter().copied());
                    }
                    late = late.require_amr(amr);
                }
                AuthenticationStep::BotProtection(mode) => {
                    for (_, answer) in &mut early {
                        *answer = answer.clone().bot_protection(mode);
                    }
                }
                AuthenticationStep::RateLimit(limit, value) => {
                    if let Some(weight) = weight(value) {
                        for (_, answer) in &mut early {
                            *answer = answer.clone().rate_limit(limit, weight);
                        }
                        late = late.rate_limit(limit, weight);
                    }
                }
            }
        }
        for (event_type, answer) in early {
            assert_valid(&schema(event_type), event_type, &to_value(answer));
        }
        let event_type = "authentication.pre_authenticated";
        assert_valid(&schema(event_type), event_type, &to_value(late));
    }
}
