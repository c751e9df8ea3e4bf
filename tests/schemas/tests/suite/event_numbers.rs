//! Numbers survive a token answer. Authgear takes the whole token payload back from an
//! answer to `oidc.jwt.pre_create` / `oidc.id_token.pre_create` and refuses it if an original
//! claim changed under Go's `reflect.DeepEqual` after `json.Unmarshal` into `interface{}`
//! (`ApplyMutations` in the server's `pkg/util/jwtutil/jwtutil.go`), where every number is a
//! `float64`. So the claims are written as Go's encoder writes float64s, parsed by the crate,
//! written back in the answer, and both texts are read with a Go-faithful model: every
//! number is `str::parse::<f64>` of its text (correctly rounded, like Go's `strconv`), and
//! numbers compare with `==` (so `-0` equals `0`, as in Go).

use std::{collections::BTreeMap, fs, path::PathBuf};

use authgear_webhook::event::{Answer, Event, Payload, TokenAnswer};
use proptest::prelude::*;
use serde_json::json;

/// A JSON value as Go's `json.Unmarshal` into `interface{}` sees it.
#[derive(Debug, Clone, PartialEq)]
enum Go {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Go>),
    Object(BTreeMap<String, Go>),
}

/// A small JSON reader whose numbers are `f64`s parsed from their exact text.
struct Reader<'a> {
    text: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn parse(text: &str) -> Go {
        let mut reader = Reader {
            text: text.as_bytes(),
            at: 0,
        };
        let value = reader.value();
        reader.space();
        assert_eq!(reader.at, reader.text.len(), "trailing text in {text}");
        value
    }

    fn space(&mut self) {
        while self.text.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) {
        self.space();
        assert_eq!(self.text[self.at], byte, "at {}", self.at);
        self.at += 1;
    }

    fn value(&mut self) -> Go {
        self.space();
        match self.text[self.at] {
            b'n' => self.word("null", Go::Null),
            b't' => self.word("true", Go::Bool(true)),
            b'f' => self.word("false", Go::Bool(false)),
            b'"' => Go::String(self.string()),
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                self.space();
                if self.text[self.at] == b']' {
                    self.at += 1;
                    return Go::Array(items);
                }
                loop {
                    items.push(self.value());
                    self.space();
                    self.at += 1;
                    if self.text[self.at - 1] == b']' {
                        return Go::Array(items);
                    }
                }
            }
            b'{' => {
                self.at += 1;
                let mut map = BTreeMap::new();
                self.space();
                if self.text[self.at] == b'}' {
                    self.at += 1;
                    return Go::Object(map);
                }
                loop {
                    self.space();
                    let key = self.string();
                    self.eat(b':');
                    map.insert(key, self.value());
                    self.space();
                    self.at += 1;
                    if self.text[self.at - 1] == b'}' {
                        return Go::Object(map);
                    }
                }
            }
            _ => {
                let start = self.at;
                while self
                    .text
                    .get(self.at)
                    .is_some_and(|b| b"+-.eE0123456789".contains(b))
                {
                    self.at += 1;
                }
                let number = std::str::from_utf8(&self.text[start..self.at]).expect("ascii");
                Go::Number(number.parse().expect("a number"))
            }
        }
    }

    fn word(&mut self, word: &str, value: Go) -> Go {
        assert!(self.text[self.at..].starts_with(word.as_bytes()));
        self.at += word.len();
        value
    }

    fn string(&mut self) -> String {
        let start = self.at;
        self.at += 1;
        while self.text[self.at] != b'"' {
            self.at += if self.text[self.at] == b'\\' { 2 } else { 1 };
        }
        self.at += 1;
        let literal = std::str::from_utf8(&self.text[start..self.at]).expect("utf-8");
        serde_json::from_str(literal).expect("a JSON string")
    }
}

/// A float64 as Go's `encoding/json` writes it: the shortest digits that read back the
/// same, in `'f'` format unless the magnitude is below 1e-6 or at least 1e21, then in
/// `'e'` format (`1e-7`, `1.5e+300`).
fn go_float(f: f64) -> String {
    assert!(f.is_finite());
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    if (1e-6..1e21).contains(&f.abs()) {
        return format!("{f}");
    }
    let rust = format!("{f:e}");
    let (mantissa, exponent) = rust.split_once('e').expect("exponent");
    let exponent: i32 = exponent.parse().expect("exponent");
    if exponent < 0 {
        format!("{mantissa}e-{}", -exponent)
    } else {
        format!("{mantissa}e+{exponent:02}")
    }
}

#[test]
fn go_float_writes_what_go_writes() {
    for (f, go) in [
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (0.30000000000000004, "0.30000000000000004"),
        (1e-7, "1e-7"),
        (2.5e-10, "2.5e-10"),
        (1e-6, "0.000001"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.2345678901234568e29, "1.2345678901234568e+29"),
        (9223372036854775808.0, "9223372036854776000"),
        (f64::MAX, "1.7976931348623157e+308"),
        (5e-324, "5e-324"),
    ] {
        assert_eq!(go_float(f), go, "{f:e}");
    }
}

fn fixture(path: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/events")
        .join(path);
    fs::read_to_string(path).expect("fixture")
}

/// A delivery of `event_type` (one of the two token events) whose token payload is
/// `claims`, as raw JSON text.
fn token_delivery(event_type: &str, claims: &str) -> String {
    let key = if event_type == "oidc.jwt.pre_create" {
        "jwt"
    } else {
        "id_token"
    };
    format!(
        r#"{{"id":"0000000000000001","seq":1,"type":"{event_type}","payload":{{"user":{{"id":"u1","created_at":"2006-01-02T03:04:05Z","updated_at":"2006-01-02T03:04:05Z","is_anonymous":false,"is_verified":true,"is_disabled":false,"is_deactivated":false,"is_anonymized":false,"can_reauthenticate":true,"standard_attributes":{{}},"custom_attributes":{{}},"x_web3":{{}},"roles":[],"groups":[]}},"identities":[],"{key}":{{"payload":{claims}}}}},"context":{{"timestamp":1764304914,"user_id":"u1","triggered_by":"user","audit_context":{{"http_url":""}},"preferred_languages":[],"language":"","geo_location_code":null}}}}"#
    )
}

/// The answer's allow builder for a token event.
fn allow(event: &Event) -> TokenAnswer {
    match &event.payload {
        Payload::OidcJwtPreCreate(payload) => payload.allow(),
        Payload::OidcIdTokenPreCreate(payload) => payload.allow(),
        other => panic!("not a token event: {other:?}"),
    }
}

/// The token payload of an answer, as Go reads it.
fn answered_claims(answer: &Answer, key: &str) -> BTreeMap<String, Go> {
    let text = serde_json::to_string(answer).expect("json");
    let Go::Object(mut answer) = Reader::parse(&text) else {
        panic!("not an object: {text}");
    };
    assert_eq!(answer.remove("is_allowed"), Some(Go::Bool(true)));
    let Some(Go::Object(mut mutations)) = answer.remove("mutations") else {
        panic!("no mutations: {text}");
    };
    let Some(Go::Object(mut token)) = mutations.remove(key) else {
        panic!("no {key}: {text}");
    };
    let Some(Go::Object(claims)) = token.remove("payload") else {
        panic!("no payload: {text}");
    };
    claims
}

/// Authgear's check: every original claim is there, `reflect.DeepEqual` to the original.
fn assert_every_claim_survives(event_type: &str, claims: &str) {
    let event: Event =
        serde_json::from_str(&token_delivery(event_type, claims)).expect("the delivery parses");
    assert_eq!(event.off_model_reason(), None);
    let added = "https://authgear-webhook.example/added";
    let answer: Answer = allow(&event)
        .add_claim(added, "yes")
        .expect("a new claim")
        .into();
    let key = if event_type == "oidc.jwt.pre_create" {
        "jwt"
    } else {
        "id_token"
    };
    let mut answered = answered_claims(&answer, key);
    assert_eq!(answered.remove(added), Some(Go::String("yes".to_owned())));
    let Go::Object(original) = Reader::parse(claims) else {
        panic!("claims are an object");
    };
    assert_eq!(answered, original, "{claims}");
}

#[test]
fn the_float_claims_of_the_fixtures_survive() {
    for (event_type, file) in [
        (
            "oidc.jwt.pre_create",
            "edge/oidc.jwt.pre_create--float-claims.json",
        ),
        (
            "oidc.id_token.pre_create",
            "edge/oidc.id_token.pre_create--float-claims.json",
        ),
        ("oidc.jwt.pre_create", "oidc.jwt.pre_create.json"),
        ("oidc.id_token.pre_create", "oidc.id_token.pre_create.json"),
    ] {
        let delivery: serde_json::Value =
            serde_json::from_str(&fixture(file)).expect("json fixture");
        let key = if event_type == "oidc.jwt.pre_create" {
            "jwt"
        } else {
            "id_token"
        };
        // The claims' exact text, cut out of the fixture.
        let text = fixture(file);
        let start = text
            .find(&format!(r#""{key}":{{"payload":"#))
            .expect("token")
            + key.len()
            + 14;
        let claims = &text[start..start + balanced(&text[start..])];
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(claims).expect("claims"),
            delivery["payload"][key]["payload"]
        );
        assert_every_claim_survives(event_type, claims);
    }
}

/// The length of the JSON object at the start of `text` (no braces inside its strings).
fn balanced(text: &str) -> usize {
    let mut depth = 0;
    for (index, char) in text.char_indices() {
        match char {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return index + 1;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced");
}

/// Any finite float64: normal, subnormal, zero, of either sign.
fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        prop::num::f64::NORMAL
            | prop::num::f64::SUBNORMAL
            | prop::num::f64::ZERO
            | prop::num::f64::NEGATIVE
            | prop::num::f64::POSITIVE,
        (-1_000_000i64..1_000_000).prop_map(|n| n as f64 / 1000.0),
        Just(-0.0),
        Just(0.1 + 0.2),
    ]
}

/// Number texts another encoder might write: big integers, long mantissas, exponents; all
/// within float64's range (Go's `json.Unmarshal` refuses the others, and its encoder never
/// writes them).
fn number_text() -> impl Strategy<Value = String> {
    let texts = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "-?[1-9][0-9]{19,40}",
        "-?[0-9]\\.[0-9]{15,25}",
        "-?[1-9](\\.[0-9]{1,20})?[eE][+-]?[0-9]{1,3}",
        "-?0\\.0{0,10}[1-9][0-9]{0,20}",
    ];
    texts.prop_filter("within float64's range", |text| {
        text.parse::<f64>().is_ok_and(f64::is_finite)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_claim_survives_a_token_answer(
        floats in prop::collection::vec(finite(), 1..6),
        texts in prop::collection::vec(number_text(), 0..4),
        id_token in any::<bool>(),
    ) {
        let mut claims = vec![r#""sub":"u1""#.to_owned()];
        for (index, f) in floats.iter().enumerate() {
            claims.push(format!(r#""f{index}":{}"#, go_float(*f)));
        }
        for (index, text) in texts.iter().enumerate() {
            claims.push(format!(r#""t{index}":{text}"#));
        }
        let list: Vec<String> = floats.iter().map(|f| go_float(*f)).collect();
        claims.push(format!(r#""list":[{}]"#, list.join(",")));
        claims.push(format!(r#""nested":{{"x":{}}}"#, list[0]));
        let claims = format!("{{{}}}", claims.join(","));
        let event_type = if id_token { "oidc.id_token.pre_create" } else { "oidc.jwt.pre_create" };
        assert_every_claim_survives(event_type, &claims);
    }

    #[test]
    fn add_claim_compares_numbers_as_go_does(f in finite(), other in finite()) {
        let claims = format!(r#"{{"sub":"u1","n":{}}}"#, go_float(f));
        let event: Event =
            serde_json::from_str(&token_delivery("oidc.jwt.pre_create", &claims)).expect("parses");
        // The same float64, however it is written, is the same claim: a no-op.
        let same = [json!(f), serde_json::from_str(&format!("{f:e}")).expect("json")];
        for value in same {
            let answer = allow(&event).add_claim("n", value.clone()).expect("the same claim");
            prop_assert_eq!(
                serde_json::to_string(&Answer::from(answer)).expect("json"),
                r#"{"is_allowed":true}"#
            );
        }
        if f.fract() == 0.0 && f.abs() < 9e15 {
            // An integer claim and the same float are one claim to Go.
            let _ = allow(&event).add_claim("n", f as i64).expect("1 and 1.0 are equal");
        }
        // Another float64 is another claim: refused (Go's `==`, so -0 equals 0).
        let result = allow(&event).add_claim("n", other);
        prop_assert_eq!(result.is_ok(), other == f);
    }
}

#[test]
fn one_and_one_point_zero_are_the_same_claim() {
    for (claim, value) in [
        ("1", json!(1.0)),
        ("1.0", json!(1)),
        ("1e0", json!(1u64)),
        ("-0", json!(0)),
        ("100000000000000000000", json!(1e20)),
        ("[1,2.0]", json!([1.0, 2])),
        (r#"{"a":1}"#, json!({ "a": 1.0 })),
    ] {
        let claims = format!(r#"{{"sub":"u1","n":{claim}}}"#);
        let event: Event =
            serde_json::from_str(&token_delivery("oidc.jwt.pre_create", &claims)).expect("parses");
        let answer = allow(&event).add_claim("n", value.clone());
        assert!(answer.is_ok(), "{claim} and {value}");
    }
    for (claim, value) in [
        ("1", json!(1.5)),
        ("1", json!("1")),
        ("[1,2]", json!([1, 2, 3])),
        (r#"{"a":1}"#, json!({ "a": 1, "b": 2 })),
    ] {
        let claims = format!(r#"{{"sub":"u1","n":{claim}}}"#);
        let event: Event =
            serde_json::from_str(&token_delivery("oidc.jwt.pre_create", &claims)).expect("parses");
        let error = allow(&event).add_claim("n", value.clone()).unwrap_err();
        assert_eq!(error.name(), "n", "{claim} and {value}");
    }
}

/// The crate's own `serde_json` enables `float_roundtrip`. The tests above cannot see the
/// difference: a dev-dependency (jsonschema) turns the feature on for every test build, but
/// a user's build without it reads about 30% of random float64 texts one unit off (measured
/// on 1,000,000 random bit patterns with serde_json 1.0.154), and Authgear then refuses the
/// token as "changed".
#[test]
fn the_library_parses_floats_correctly_rounded_without_help_from_dev_dependencies() {
    let manifest = include_str!("../../../../Cargo.toml");
    let dependencies = manifest
        .split("\n[dependencies]\n")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("[dependencies]");
    let serde_json = dependencies
        .lines()
        .find(|line| line.starts_with("serde_json"))
        .expect("serde_json");
    assert!(serde_json.contains("float_roundtrip"), "{serde_json}");
    assert!(!serde_json.contains("arbitrary_precision"), "{serde_json}");
}
