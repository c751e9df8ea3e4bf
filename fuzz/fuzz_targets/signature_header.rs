//! The signature header parser and verifier, through the public API: arbitrary header
//! values (and mutations of the right signature) over an arbitrary body and secret.
//!
//! Invariants (`authgear_webhook_fuzz::check`): accepted implies the inner service got
//! exactly the body and the header is its signature under the secret; refused implies the
//! inner service was never called; and the outcome is the documented one.
#![no_main]

use arbitrary::Arbitrary;
use authgear_webhook::{SIGNATURE_HEADER, VerifySignatureLayer, sign};
use authgear_webhook_fuzz::{Script, Step, check, run, split_input};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, header};
use http_body::SizeHint;
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"Lx8k3mVq2ZpT9wR4yN6bC1dF7gH0jK5s";

#[derive(Arbitrary, Debug)]
enum Values {
    /// The right signature, once.
    Signed,
    /// Any number of values, each one of these.
    Given(Vec<Value>),
}

#[derive(Arbitrary, Debug)]
enum Value {
    /// The right signature with its letters' case flipped by the bits of `upper`, spaces or
    /// tabs around it, and perhaps one byte replaced.
    Mutated {
        upper: u64,
        before: Vec<bool>,
        after: Vec<bool>,
        edit: Option<(u8, u8)>,
    },
    /// Any bytes (skipped where not a header value).
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Control {
    values: Values,
    /// `None`: the default secret; an empty one must match nothing.
    secret: Option<Vec<u8>>,
}

fn value(value: &Value, signature: &str) -> Option<HeaderValue> {
    let bytes = match value {
        Value::Raw(bytes) => bytes.clone(),
        Value::Mutated {
            upper,
            before,
            after,
            edit,
        } => {
            let ws = |tab: &bool| if *tab { b'\t' } else { b' ' };
            let mut bytes: Vec<u8> = before.iter().map(ws).collect();
            bytes.extend(signature.bytes().enumerate().map(|(i, c)| {
                if upper >> (i % 64) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            }));
            bytes.extend(after.iter().map(ws));
            if let Some((at, byte)) = edit {
                let at = usize::from(*at) % bytes.len();
                bytes[at] = *byte;
            }
            bytes
        }
    };
    HeaderValue::from_bytes(&bytes).ok()
}

fuzz_target!(|data: &[u8]| {
    let (mut control, body) = split_input(data);
    let Ok(control) = Control::arbitrary(&mut control) else {
        return;
    };
    let secret = control.secret.unwrap_or_else(|| SECRET.to_vec());
    let signature = sign(&secret, body);
    let mut headers = HeaderMap::new();
    match &control.values {
        Values::Signed => {
            headers.insert(SIGNATURE_HEADER, signature.parse().expect("hex"));
        }
        Values::Given(values) => {
            for v in values {
                let Some(v) = value(v, &signature) else {
                    return;
                };
                headers.append(SIGNATURE_HEADER, v);
            }
        }
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));

    let steps = vec![Step::Data(Bytes::copy_from_slice(body))];
    let hint = SizeHint::with_exact(body.len() as u64);
    let mut request = Request::post("/hooks/authgear")
        .body(Script::new(steps.clone(), hint))
        .expect("request");
    *request.headers_mut() = headers.clone();

    let layer = VerifySignatureLayer::new(secret.clone());
    let outcome = run(&layer, request, 8);
    check(&[secret], 1024 * 1024, &headers, &hint, &steps, &outcome);
});
