//! The body budget and the body deadline: room is returned exactly, on every path, and the
//! refusals are the documented ones.
//!
//! Properties (proptest) over random bodies, frame splits, body limits, budget sizes,
//! pending polls, broken-off bodies, cancellation points, and inner services that answer,
//! fail or panic: the budget never holds more than its limit, it covers the whole body
//! while the inner service has it, and it is back to 0 once every request is gone.

use std::{
    convert::Infallible,
    future::Future,
    io,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::{Pin, pin},
    task::{Context, Poll, Waker},
    time::Duration,
};

use authgear_webhook::{
    BodyBudget, Rejection, RejectionKind, SIGNATURE_HEADER, VerifiedBody, VerifySignatureLayer,
    sign,
};
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use proptest::prelude::*;
use tower::{Layer, Service, ServiceExt};

use crate::common::{SECRET, Script, Step};

/// What the inner service does with a verified request.
#[derive(Debug, Clone, Copy)]
enum Inner {
    Answer,
    Fail,
    /// Panics while its future is polled.
    Panic,
    /// Never answers (the request is cancelled).
    Hang,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<String>, io::Error>>>>;

/// Each case: the inner service checks that the budget covers the body it was handed.
fn inner(
    mode: Inner,
    budget: BodyBudget,
) -> impl Service<Request<VerifiedBody>, Response = Response<String>, Error = io::Error, Future = Answer>
+ Clone {
    tower::service_fn(move |request: Request<VerifiedBody>| {
        let body = request.into_body().into_bytes();
        assert!(budget.in_use() >= body.len(), "the budget covers the body");
        assert!(budget.in_use() <= budget.limit());
        let future: Answer = match mode {
            Inner::Answer => Box::pin(async { Ok(Response::new(String::from("ok"))) }),
            Inner::Fail => Box::pin(async { Err(io::Error::other("inner failed")) }),
            Inner::Panic => Box::pin(async { panic!("inner panicked") }),
            Inner::Hang => Box::pin(std::future::pending()),
        };
        future
    })
}

fn steps_strategy() -> impl Strategy<Value = (Vec<u8>, Vec<Step>)> {
    (
        prop::collection::vec(any::<u8>(), 0..6000),
        prop::collection::vec(0usize..3000, 0..8),
        prop::collection::vec(0usize..10, 0..4),
        prop::option::of(0usize..10),
    )
        .prop_map(|(body, splits, pending, error)| {
            let mut frames = Vec::new();
            let mut rest = &body[..];
            for split in splits {
                let (head, tail) = rest.split_at(split.min(rest.len()));
                frames.push(Step::Data(Bytes::copy_from_slice(head)));
                rest = tail;
            }
            frames.push(Step::Data(Bytes::copy_from_slice(rest)));
            if let Some(at) = error {
                frames.truncate(at % (frames.len() + 1));
                frames.push(Step::Error);
            }
            let mut steps = Vec::new();
            for (i, frame) in frames.into_iter().enumerate() {
                if pending.contains(&i) {
                    steps.push(Step::Pending);
                }
                steps.push(frame);
            }
            (body, steps)
        })
}

fn request(body: &[u8], steps: Vec<Step>, announce: bool) -> Request<Script> {
    let mut request = Request::post("/")
        .header(SIGNATURE_HEADER, sign(SECRET, body))
        .body(Script::new(steps))
        .expect("request");
    if announce {
        request
            .headers_mut()
            .insert(header::CONTENT_LENGTH, body.len().into());
    }
    request
}

/// Polls `future` up to `polls` times without a runtime, each poll caught if it panics:
/// `Some` once it finished (or panicked).
fn drive<F: Future>(future: Pin<&mut F>, polls: usize) -> Option<Result<F::Output, ()>> {
    let mut future = future;
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..polls {
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx))) {
            Ok(Poll::Ready(output)) => return Some(Ok(output)),
            Ok(Poll::Pending) => {}
            Err(_) => return Some(Err(())),
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// One request at a time, dropped after a random number of polls (or run to its end):
    /// the budget is back to 0 whichever way it ended.
    #[test]
    fn one_request_returns_its_room_on_every_path(
        (body, steps) in steps_strategy(),
        announce in any::<bool>(),
        limit in 1usize..8000,
        budget_size in 0usize..20_000,
        mode in prop::sample::select(vec![Inner::Answer, Inner::Fail, Inner::Panic, Inner::Hang]),
        polls in 0usize..20,
    ) {
        // Quiet the expected panics of `Inner::Panic`.
        std::panic::set_hook(Box::new(|_| {}));
        let budget = BodyBudget::new(budget_size);
        let layer = VerifySignatureLayer::new(SECRET)
            .body_limit(limit)
            .body_budget(budget.clone());
        let mut service = layer.layer(inner(mode, budget.clone()));
        let mut cx = Context::from_waker(Waker::noop());
        prop_assert!(Service::<Request<Script>>::poll_ready(&mut service, &mut cx).is_ready());
        let future = service.call(request(&body, steps.clone(), announce));
        {
            let mut future = pin!(future);
            let outcome = drive(future.as_mut(), polls);
            prop_assert!(budget.in_use() <= budget.limit());
            if let Some(Ok(Ok(response))) = &outcome
                && let Some(rejection) = response.extensions().get::<Rejection>()
            {
                // What the budget refuses: a body that needs more room than it has (its
                // buffer holds at most twice what arrived, or the first 4 KiB, and never
                // more than the body limit).
                if rejection.kind() == RejectionKind::BudgetExhausted {
                    prop_assert!(budget_size < (2 * body.len()).max(4096));
                    prop_assert!(budget_size < limit);
                    prop_assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
                    prop_assert_eq!(&response.headers()[header::RETRY_AFTER], "1");
                }
                // Nothing else holds room once refused.
                prop_assert_eq!(budget.in_use(), 0);
            }
            if let Some(Ok(Ok(response))) = &outcome
                && response.extensions().get::<Rejection>().is_none()
            {
                prop_assert_eq!(response.status(), StatusCode::OK);
                prop_assert_eq!(budget.in_use(), 0, "returned once answered");
            }
            // Dropped here: finished, cancelled mid-body, mid-call, or after a panic.
        }
        let _ = std::panic::take_hook();
        prop_assert_eq!(budget.in_use(), 0, "leaked after {} polls, {:?}", polls, mode);
        // A budget that can hold a body at the limit never refuses one.
        if budget_size >= limit {
            let layer = VerifySignatureLayer::new(SECRET).body_limit(limit).body_budget(budget.clone());
            let service = layer.layer(inner(Inner::Answer, budget.clone()));
            let mut future = pin!(service.oneshot(request(&body, steps, announce)));
            if let Some(Ok(Ok(response))) = drive(future.as_mut(), 100) {
                let kind = response.extensions().get::<Rejection>().map(Rejection::kind);
                prop_assert_ne!(kind, Some(RejectionKind::BudgetExhausted));
            }
        }
    }

    /// Many requests sharing one budget, polled in a random interleaving and dropped at
    /// random points: the budget never passes its limit and ends at 0.
    #[test]
    fn requests_together_stay_within_the_budget(
        cases in prop::collection::vec(steps_strategy(), 1..8),
        budget_size in 0usize..30_000,
        order in prop::collection::vec(0usize..8, 0..80),
    ) {
        let budget = BodyBudget::new(budget_size);
        let layer = VerifySignatureLayer::new(SECRET).body_budget(budget.clone());
        let mut futures: Vec<Option<Pin<Box<_>>>> = cases
            .iter()
            .map(|(body, steps)| {
                let service = layer.layer(inner(Inner::Answer, budget.clone()));
                Some(Box::pin(service.oneshot(request(body, steps.clone(), false))))
            })
            .collect();
        let mut cx = Context::from_waker(Waker::noop());
        for (turn, pick) in order.into_iter().enumerate() {
            let index = pick % futures.len();
            if let Some(future) = &mut futures[index] {
                // Every seventh turn cancels instead of polling.
                if turn % 7 == 6 || future.as_mut().poll(&mut cx).is_ready() {
                    futures[index] = None;
                }
            }
            prop_assert!(budget.in_use() <= budget.limit());
        }
        drop(futures);
        prop_assert_eq!(budget.in_use(), 0);
    }
}

/// A body that sends its first part, then nothing: the deadline refuses it (408) and
/// returns its room; over gRPC it is `DEADLINE_EXCEEDED`.
#[tokio::test(start_paused = true)]
async fn a_stalled_body_is_refused_at_its_deadline() {
    for grpc in [false, true] {
        let budget = BodyBudget::new(1 << 20);
        let layer = VerifySignatureLayer::new(SECRET)
            .body_deadline(Duration::from_secs(3))
            .body_budget(budget.clone());
        let service = layer.layer(inner(Inner::Answer, budget.clone()));
        // Its first part, then never another frame: a stalled client.
        let stalled = Script::split(&[b'a'; 1000], &[]).then(Step::Stall);
        let mut request = Request::post("/")
            .header(SIGNATURE_HEADER, sign(SECRET, b"whatever"))
            .body(stalled)
            .expect("request");
        if grpc {
            request.headers_mut().insert(
                header::CONTENT_TYPE,
                "application/grpc".parse().expect("value"),
            );
        }
        let started = tokio::time::Instant::now();
        let response = service.oneshot(request).await.expect("a response");
        // Paused time: exactly the deadline, no wall clock involved.
        assert_eq!(started.elapsed(), Duration::from_secs(3));
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        let rejection = response.extensions().get::<Rejection>().expect("rejection");
        assert_eq!(rejection.kind(), RejectionKind::BodyDeadline);
        assert_eq!(budget.in_use(), 0);
        if grpc {
            assert_eq!(response.headers()["grpc-status"], "4");
        }
    }
}

/// The budget full: a gRPC call is refused `UNAVAILABLE`, with `Retry-After`.
#[tokio::test]
async fn a_full_budget_refuses_at_once() {
    let budget = BodyBudget::new(100);
    let layer = VerifySignatureLayer::new(SECRET).body_budget(budget.clone());
    let service = layer.layer(inner(Inner::Answer, budget.clone()));
    let body = vec![b'a'; 101];
    let request = Request::post("/")
        .header(SIGNATURE_HEADER, sign(SECRET, &body))
        .header(header::CONTENT_TYPE, "application/grpc")
        .body(http_body_util::Full::new(Bytes::from(body)))
        .expect("request");
    let response = service.oneshot(request).await.expect("a response");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["grpc-status"], "14");
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    assert_eq!(budget.in_use(), 0);
    // With the budget off, the same body is accepted.
    let layer = VerifySignatureLayer::new(SECRET).body_budget(None);
    let service = layer.layer(tower::service_fn(|_: Request<VerifiedBody>| async {
        Ok::<_, Infallible>(Response::new(String::from("ok")))
    }));
    let body = vec![b'a'; 101];
    let request = Request::post("/")
        .header(SIGNATURE_HEADER, sign(SECRET, &body))
        .body(http_body_util::Full::new(Bytes::from(body)))
        .expect("request");
    let response = service.oneshot(request).await.expect("a response");
    assert_eq!(response.status(), StatusCode::OK);
}
