//! The whole layer: arbitrary headers, bodies, frame splits, lengths (true or not), size
//! hints, trailers, pending polls and broken-off bodies, two secrets and small limits.
//!
//! Invariants (`authgear_webhook_fuzz::check`): accepted implies the inner service got
//! exactly the bytes sent, within the limit, and the header is their signature under the
//! secret the layer names; refused implies the inner service was never called and the
//! answer gives nothing away; the layer never hangs; the outcome is the documented one.
//! The body budget: a refusal for want of room only when the body could need more than it
//! has (never when it can hold a body at the limit), and every byte of room is
//! returned once the request is gone, answered or cancelled after any number of polls.
#![no_main]

use arbitrary::Arbitrary;
use authgear_webhook::{
    BodyBudget, RejectionKind, SIGNATURE_HEADER, Verifier, VerifySignatureLayer, sign,
};
use authgear_webhook_fuzz::{Script, Step, check, run, run_cancelled, split_input};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, header};
use http_body::SizeHint;
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"Lx8k3mVq2ZpT9wR4yN6bC1dF7gH0jK5s";
const OLD_SECRET: &[u8] = b"old-secret";

#[derive(Arbitrary, Debug)]
enum Signer {
    /// The first secret.
    First,
    /// The second secret (accepted only when the layer has one).
    Second,
    Other(Vec<u8>),
    Raw(Vec<u8>),
    Missing,
    /// The first secret's signature, twice.
    Twice,
}

#[derive(Arbitrary, Debug)]
enum Length {
    Exact,
    Absent,
    Value(u64),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Hint {
    Exact,
    Absent,
    Lower(u32),
    Range(u32, u32),
}

#[derive(Arbitrary, Debug)]
struct Control {
    signer: Signer,
    /// Case flips of the signature's letters, and spaces around it.
    upper: u64,
    pad: (u8, u8),
    /// `None`: 1 MiB.
    limit: Option<u16>,
    /// `None`: the default secret.
    first: Option<Vec<u8>>,
    /// Whether the layer also accepts a second secret (`None`: the default old one).
    second: Option<Option<Vec<u8>>>,
    /// A byte of the body changed after signing: (position, xor).
    tamper: Option<(u16, u8)>,
    length: Length,
    hint: Hint,
    /// Frame lengths; the rest of the body in a last frame.
    splits: Vec<u16>,
    /// Before which steps to return `Pending` once.
    pending: Vec<u8>,
    /// Before which data frame the body breaks off.
    error: Option<u8>,
    trailers: Vec<Vec<(u8, Vec<u8>)>>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The body budget (`None`: the default 32 MiB). Last, so older seeds decode as before.
    budget: Option<u16>,
    /// Also run the request again, dropped after this many polls.
    cancel_after: Option<u8>,
}

const TRAILER_NAMES: [&str; 4] = [
    "x-trailer",
    "grpc-status",
    "x-authgear-body-signature",
    "content-length",
];

fuzz_target!(|data: &[u8]| {
    let (mut control, original) = split_input(data);
    let Ok(c) = Control::arbitrary(&mut control) else {
        return;
    };
    let first = c.first.clone().unwrap_or_else(|| SECRET.to_vec());
    let second = c
        .second
        .clone()
        .map(|s| s.unwrap_or_else(|| OLD_SECRET.to_vec()));
    let mut secrets = vec![first.clone()];
    secrets.extend(second.clone());
    let limit = c.limit.map_or(1024 * 1024, usize::from);

    let budget = c.budget.map_or_else(BodyBudget::default, |bytes| {
        BodyBudget::new(usize::from(bytes))
    });
    let mut layer = VerifySignatureLayer::new(first.clone())
        .body_limit(limit)
        .body_budget(budget.clone());
    if let Some(second) = &second {
        layer = layer.also_accept(second.clone());
    }

    // The body: signed as given, perhaps changed afterwards.
    let mut body = original.to_vec();
    if let Some((at, xor)) = c.tamper
        && !body.is_empty()
    {
        let at = usize::from(at) % body.len();
        body[at] ^= xor;
    }

    let mut headers = HeaderMap::new();
    for (name, value) in &c.headers {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        else {
            return;
        };
        headers.append(name, value);
    }
    let signature = |secret: &[u8]| {
        let mut value: Vec<u8> = vec![b' '; usize::from(c.pad.0 % 3)];
        value.extend(sign(secret, original).bytes().enumerate().map(|(i, b)| {
            if c.upper >> (i % 64) & 1 == 1 {
                b.to_ascii_uppercase()
            } else {
                b
            }
        }));
        value.extend(vec![b'\t'; usize::from(c.pad.1 % 3)]);
        HeaderValue::from_bytes(&value).expect("hex and whitespace")
    };
    match &c.signer {
        Signer::First => headers.append(SIGNATURE_HEADER, signature(&first)),
        Signer::Second => headers.append(
            SIGNATURE_HEADER,
            signature(second.as_deref().unwrap_or(OLD_SECRET)),
        ),
        Signer::Other(secret) => headers.append(SIGNATURE_HEADER, signature(secret)),
        Signer::Raw(bytes) => match HeaderValue::from_bytes(bytes) {
            Ok(value) => headers.append(SIGNATURE_HEADER, value),
            Err(_) => return,
        },
        Signer::Missing => false,
        Signer::Twice => {
            headers.append(SIGNATURE_HEADER, signature(&first));
            headers.append(SIGNATURE_HEADER, signature(&first))
        }
    };
    match &c.length {
        Length::Exact => headers.append(header::CONTENT_LENGTH, HeaderValue::from(body.len())),
        Length::Absent => false,
        Length::Value(n) => headers.append(header::CONTENT_LENGTH, HeaderValue::from(*n)),
        Length::Raw(bytes) => match HeaderValue::from_bytes(bytes) {
            Ok(value) => headers.append(header::CONTENT_LENGTH, value),
            Err(_) => return,
        },
    };
    let hint = match c.hint {
        Hint::Exact => SizeHint::with_exact(body.len() as u64),
        Hint::Absent => SizeHint::new(),
        Hint::Lower(lower) => {
            let mut hint = SizeHint::new();
            hint.set_lower(u64::from(lower));
            hint
        }
        Hint::Range(a, b) => {
            let mut hint = SizeHint::new();
            hint.set_lower(u64::from(a.min(b)));
            hint.set_upper(u64::from(a.max(b)));
            hint
        }
    };

    // The frames.
    let mut frames = Vec::new();
    let mut rest = &body[..];
    for &split in &c.splits {
        let (head, tail) = rest.split_at(usize::from(split).min(rest.len()));
        frames.push(Step::Data(Bytes::copy_from_slice(head)));
        rest = tail;
    }
    if !rest.is_empty() || frames.is_empty() {
        frames.push(Step::Data(Bytes::copy_from_slice(rest)));
    }
    if let Some(at) = c.error {
        frames.truncate(usize::from(at) % (frames.len() + 1));
        frames.push(Step::Error);
    }
    for trailers in &c.trailers {
        let mut map = HeaderMap::new();
        for (name, value) in trailers {
            let Ok(value) = HeaderValue::from_bytes(value) else {
                return;
            };
            map.append(
                TRAILER_NAMES[usize::from(*name) % TRAILER_NAMES.len()],
                value,
            );
        }
        frames.push(Step::Trailers(map));
    }
    let mut steps = Vec::with_capacity(frames.len() * 2);
    for (i, frame) in frames.into_iter().enumerate() {
        if c.pending.iter().any(|&p| usize::from(p) == i) {
            steps.push(Step::Pending);
        }
        steps.push(frame);
    }

    let mut request = Request::post("/hooks/authgear")
        .body(Script::new(steps.clone(), hint))
        .expect("request");
    *request.headers_mut() = headers.clone();
    let outcome = run(&layer, request, steps.len() + 8);
    assert_eq!(budget.in_use(), 0, "room not returned");
    let sent: usize = steps
        .iter()
        .map(|step| match step {
            Step::Data(data) => data.len(),
            _ => 0,
        })
        .sum();
    match outcome.rejection.as_ref().map(|r| r.kind()) {
        // The buffer holds at most twice what arrived, or its first 4 KiB, and never more
        // than the body limit.
        Some(RejectionKind::BudgetExhausted) => {
            assert!(budget.limit() < (2 * sent).max(4096), "refused with room");
            assert!(
                budget.limit() < limit,
                "refused with room for a body at the limit"
            );
            assert!(outcome.seen.is_empty());
        }
        _ => check(&secrets, limit, &headers, &hint, &steps, &outcome),
    }
    if let Some(polls) = c.cancel_after {
        let mut again = Request::post("/hooks/authgear")
            .body(Script::new(steps.clone(), hint))
            .expect("request");
        *again.headers_mut() = headers.clone();
        run_cancelled(&layer, again, usize::from(polls));
        assert_eq!(budget.in_use(), 0, "room not returned after a cancellation");
    }

    // Trailers reach the inner service: one trailers frame as it was.
    if let [seen] = &outcome.seen[..] {
        let sent: Vec<_> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Trailers(t) => Some(t),
                _ => None,
            })
            .collect();
        match &sent[..] {
            [] => assert!(seen.trailers.is_none()),
            [one] => assert_eq!(seen.trailers.as_ref(), Some(*one)),
            _ => assert!(seen.trailers.is_some()),
        }
    }

    // The Verifier, whole and chunk by chunk, answers as the layer does on the same bytes.
    let mut verifier = Verifier::new(first.clone());
    if let Some(second) = &second {
        verifier = verifier.also_accept(second.clone());
    }
    let mut values = headers.get_all(SIGNATURE_HEADER).iter();
    if let (Some(value), None) = (values.next(), values.next()) {
        let whole = verifier.verify(value.as_bytes(), &body);
        let mut verification = verifier.start();
        for step in &steps {
            if let Step::Data(data) = step {
                verification.update(data);
            }
        }
        let complete = !steps.iter().any(|s| matches!(s, Step::Error));
        if complete {
            assert_eq!(verification.finish(value.as_bytes()), whole);
        }
        match (
            &outcome.seen[..],
            outcome.rejection.as_ref().map(|r| r.kind()),
        ) {
            ([seen], _) => assert_eq!(whole.ok(), seen.verified),
            (
                _,
                Some(
                    kind @ (RejectionKind::MissingSignature
                    | RejectionKind::MalformedSignature
                    | RejectionKind::InvalidSignature),
                ),
            ) => assert_eq!(whole, Err(kind)),
            _ => {}
        }
    }
});
