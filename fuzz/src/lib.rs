//! The harness shared by the fuzz targets: a scripted request body, a recording inner
//! service, a polling loop without a runtime, and the model the layer's answers are
//! checked against.
//!
//! Every input is `[control length: u16 LE][control bytes][body]`: the control bytes drive
//! `arbitrary`, the body is taken as it is, so a seed is two zero bytes and a delivery
//! (see `fuzz/run`), which the default control turns into a valid signed request.

use std::{
    cell::RefCell,
    collections::VecDeque,
    convert::Infallible,
    future::Future,
    pin::{Pin, pin},
    rc::Rc,
    task::{Context, Poll, Waker},
};

use arbitrary::Unstructured;
use authgear_webhook::{
    Rejection, RejectionKind, ResponseBody, SIGNATURE_HEADER, Verified, VerifiedBody,
    VerifySignatureLayer, sign,
};
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Empty;
use tower_layer::Layer;
use tower_service::Service;

/// Splits an input into the control bytes and the body.
pub fn split_input(data: &[u8]) -> (Unstructured<'_>, &[u8]) {
    let (length, rest) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
        _ => (0, data),
    };
    let (control, body) = rest.split_at(length.min(rest.len()));
    (Unstructured::new(control), body)
}

/// One step of a scripted body.
#[derive(Debug, Clone)]
pub enum Step {
    Data(Bytes),
    Trailers(HeaderMap),
    /// The body fails (the client broke off).
    Error,
    /// Not ready yet (wakes itself at once).
    Pending,
}

/// A request body that plays its steps, with the size hint it is given (which may lie, as
/// a peer's Content-Length may).
#[derive(Debug)]
pub struct Script {
    steps: VecDeque<Step>,
    hint: SizeHint,
    ended: bool,
}

impl Script {
    pub fn new(steps: Vec<Step>, hint: SizeHint) -> Self {
        Self {
            steps: steps.into(),
            hint,
            ended: false,
        }
    }
}

#[derive(Debug)]
pub struct BodyError;

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("broken off")
    }
}

impl std::error::Error for BodyError {}

impl Body for Script {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        assert!(!self.ended, "body polled after it ended or failed");
        match self.steps.pop_front() {
            Some(Step::Data(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
            Some(Step::Trailers(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Some(Step::Error) => {
                self.ended = true;
                Poll::Ready(Some(Err(BodyError)))
            }
            Some(Step::Pending) => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            None => {
                self.ended = true;
                Poll::Ready(None)
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.hint
    }
}

/// What the inner service saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
    pub verified: Option<Verified>,
}

/// An inner service that records its calls, and fails the run if it is called without
/// having been made ready first (as tower-test's mock does).
#[derive(Debug, Default)]
pub struct Recorder {
    seen: Rc<RefCell<Vec<Seen>>>,
    ready: bool,
}

impl Clone for Recorder {
    fn clone(&self) -> Self {
        Self {
            seen: self.seen.clone(),
            ready: false,
        }
    }
}

impl Service<Request<VerifiedBody>> for Recorder {
    type Response = Response<Empty<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Empty<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<VerifiedBody>) -> Self::Future {
        assert!(self.ready, "inner service called without poll_ready");
        self.ready = false;
        let verified = request.extensions().get::<Verified>().copied();
        let (parts, mut body) = request.into_parts();
        let mut cx = Context::from_waker(Waker::noop());
        let (mut data, mut trailers) = (Vec::new(), None);
        loop {
            match Pin::new(&mut body).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(chunk) => data.extend_from_slice(&chunk),
                    Err(frame) => {
                        let t = frame.into_trailers().expect("data or trailers");
                        assert!(trailers.replace(t).is_none(), "trailers twice");
                    }
                },
                Poll::Ready(None) => break,
                Poll::Ready(Some(Err(never))) => match never {},
                Poll::Pending => panic!("a VerifiedBody is always ready"),
            }
        }
        self.seen.borrow_mut().push(Seen {
            headers: parts.headers,
            body: data.into(),
            trailers,
            verified,
        });
        std::future::ready(Ok(Response::new(Empty::new())))
    }
}

/// What came out of one request.
#[derive(Debug)]
pub struct Outcome {
    pub status: StatusCode,
    pub rejection: Option<Rejection>,
    /// The refusal message (empty for an accepted request).
    pub message: Vec<u8>,
    pub seen: Vec<Seen>,
}

/// Runs `request` through `layer` in front of a [`Recorder`], polling without a runtime;
/// fails if the layer does not finish within `budget` polls.
pub fn run(layer: &VerifySignatureLayer, request: Request<Script>, budget: usize) -> Outcome {
    let recorder = Recorder::default();
    let mut service = layer.layer(recorder.clone());
    let mut cx = Context::from_waker(Waker::noop());
    assert!(Service::<Request<Script>>::poll_ready(&mut service, &mut cx).is_ready());
    let mut future = pin!(service.call(request));
    let response = (0..budget)
        .find_map(|_| match future.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(response)) => Some(response),
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => None,
        })
        .expect("the layer finishes: it must not hang on a body that keeps going");
    let rejection = response.extensions().get::<Rejection>().cloned();
    let status = response.status();
    let message = read(response.into_body());
    let seen = recorder.seen.borrow().clone();
    Outcome {
        status,
        rejection,
        message,
        seen,
    }
}

/// Runs `request` through `layer` for at most `polls` polls, then drops it, finished or not
/// (a client that hangs up): what a cancelled request leaves behind.
pub fn run_cancelled(layer: &VerifySignatureLayer, request: Request<Script>, polls: usize) {
    let mut service = layer.layer(Recorder::default());
    let mut cx = Context::from_waker(Waker::noop());
    assert!(Service::<Request<Script>>::poll_ready(&mut service, &mut cx).is_ready());
    let mut future = pin!(service.call(request));
    for _ in 0..polls {
        if future.as_mut().poll(&mut cx).is_ready() {
            return;
        }
    }
}

fn read(body: ResponseBody<Empty<Bytes>>) -> Vec<u8> {
    let mut body = pin!(body);
    let mut cx = Context::from_waker(Waker::noop());
    let mut bytes = Vec::new();
    loop {
        match body.as_mut().poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                bytes.extend_from_slice(&frame.into_data().expect("no trailers"))
            }
            Poll::Ready(None) => return bytes,
            Poll::Ready(Some(Err(never))) => match never {},
            Poll::Pending => panic!("the answer's body is always ready"),
        }
    }
}

/// What the layer should answer, from its documented behaviour alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Accepted { secret_index: usize },
    Refused(RejectionKind),
}

/// The model: the documented steps of the layer (`src/verify/mod.rs`), in order.
pub fn expected(
    secrets: &[Vec<u8>],
    limit: usize,
    headers: &HeaderMap,
    hint: &SizeHint,
    steps: &[Step],
) -> Expected {
    use RejectionKind::*;
    // 1. One signature header, 64 hex characters once surrounding whitespace is trimmed.
    let mut values = headers.get_all(&SIGNATURE_HEADER).iter();
    let Some(value) = values.next() else {
        return Expected::Refused(MissingSignature);
    };
    if values.next().is_some() {
        return Expected::Refused(MalformedSignature);
    }
    let value = value.as_bytes().trim_ascii();
    if value.is_empty() {
        return Expected::Refused(MissingSignature);
    }
    if value.len() != 64 || !value.iter().all(u8::is_ascii_hexdigit) {
        return Expected::Refused(MalformedSignature);
    }
    // 2. The announced length (Content-Length, or the body's own lower bound).
    let header = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if header.unwrap_or(0).max(hint.lower()) > limit as u64 {
        return Expected::Refused(BodyTooLarge);
    }
    // 3. The body, frame by frame.
    let mut body = Vec::new();
    for step in steps {
        match step {
            Step::Data(data) => {
                body.extend_from_slice(data);
                if body.len() > limit {
                    return Expected::Refused(BodyTooLarge);
                }
            }
            Step::Error => return Expected::Refused(BodyUnreadable),
            Step::Trailers(_) | Step::Pending => {}
        }
    }
    // 4. The signature against each accepted (non-empty) secret.
    let value = value.to_ascii_lowercase();
    secrets
        .iter()
        .position(|secret| !secret.is_empty() && sign(secret, &body).as_bytes() == value)
        .map_or(Expected::Refused(InvalidSignature), |secret_index| {
            Expected::Accepted { secret_index }
        })
}

/// Checks the invariants of one run, then that the outcome is the model's.
pub fn check(
    secrets: &[Vec<u8>],
    limit: usize,
    headers: &HeaderMap,
    hint: &SizeHint,
    steps: &[Step],
    outcome: &Outcome,
) {
    let sent: Vec<u8> = steps
        .iter()
        .filter_map(|step| match step {
            Step::Data(data) => Some(&data[..]),
            _ => None,
        })
        .flatten()
        .copied()
        .collect();
    match (&outcome.rejection, &outcome.seen[..]) {
        // Accepted: called once, with exactly the bytes sent, which the signature covers
        // under the secret the layer names.
        (None, [seen]) => {
            assert_eq!(outcome.status, StatusCode::OK);
            assert!(seen.body == sent, "the inner service saw other bytes");
            assert!(sent.len() <= limit, "accepted a body over the limit");
            assert!(
                !steps.iter().any(|step| matches!(step, Step::Error)),
                "accepted a body that broke off"
            );
            let verified = seen.verified.expect("a Verified extension");
            let secret = &secrets[verified.secret_index()];
            let value = headers[&SIGNATURE_HEADER].as_bytes().trim_ascii();
            assert!(!secret.is_empty(), "an empty secret matched");
            assert!(
                value.eq_ignore_ascii_case(sign(secret, &sent).as_bytes()),
                "accepted a signature that does not match"
            );
            assert!(seen.headers == *headers, "headers changed");
        }
        // Refused: never called, and the answer says why without giving anything away.
        (Some(rejection), []) => {
            assert_eq!(outcome.status, rejection.status());
            for secret in secrets.iter().filter(|s| s.len() >= 4) {
                assert!(!contains(&outcome.message, secret), "secret in the answer");
            }
            let signature = sign(&secrets[0], &sent);
            assert!(!contains(&outcome.message, signature.as_bytes()));
        }
        (rejection, seen) => panic!("refused {rejection:?} yet called {} times", seen.len()),
    }
    let got = match &outcome.rejection {
        None => Expected::Accepted {
            secret_index: outcome.seen[0].verified.expect("verified").secret_index(),
        },
        Some(rejection) => Expected::Refused(rejection.kind()),
    };
    assert_eq!(got, expected(secrets, limit, headers, hint, steps));
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
