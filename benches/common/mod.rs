//! What the benches share, the library of their package: for the in-process benches,
//! signed requests whose body arrives in N frames, the two services compared (the layer and
//! a pass-through) and a poll-until-ready executor; for those that start their own servers,
//! [`server`].

pub mod server;

use std::{
    convert::Infallible,
    future::{Future, Ready, ready},
    pin::{Pin, pin},
    task::{Context, Poll, Waker},
};

use authgear_webhook::{SIGNATURE_HEADER, VerifySignature, VerifySignatureLayer, sign};
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Empty;
use tower::{Layer, Service, service_fn, util::ServiceFn};

pub const SECRET: &str = "bench-webhook-secret";

/// A request body handed out in frames of `chunk` bytes, announcing its exact length as
/// hyper does from `Content-Length`. It is cut from a static buffer: the body itself costs
/// next to nothing and allocates nothing, so what is measured is the layer's own work.
pub struct Frames {
    rest: Bytes,
    chunk: usize,
}

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.rest.is_empty() {
            return Poll::Ready(None);
        }
        let at = self.chunk.min(self.rest.len());
        let frame = self.rest.split_to(at);
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

/// A body of `len` bytes (JSON-looking ASCII) and its signature header.
pub struct Signed {
    pub body: Bytes,
    signature: HeaderValue,
}

impl Signed {
    pub fn new(len: usize) -> Self {
        let mut body = br#"{"type":"user.created","pad":""#.to_vec();
        body.resize(len.saturating_sub(2), b'x');
        body.extend_from_slice(br#""}"#);
        body.truncate(len);
        let signature = HeaderValue::from_str(&sign(SECRET, &body)).expect("hex is a header");
        // A static buffer: cutting it into frames costs nothing (no reference count), so
        // what is timed and counted is the layer's own work. Leaked once per size.
        let body = Bytes::from_static(Vec::leak(body));
        // Promote the header value to a shared one now, so later clones only bump a count.
        drop(signature.clone());
        Self { body, signature }
    }

    /// A signed POST whose body arrives in `frames` frames of equal size.
    pub fn request(&self, frames: usize) -> Request<Frames> {
        let chunk = self.body.len().div_ceil(frames).max(1);
        let mut request = Request::new(Frames {
            rest: self.body.clone(),
            chunk,
        });
        *request.method_mut() = http::Method::POST;
        request
            .headers_mut()
            .insert(SIGNATURE_HEADER, self.signature.clone());
        request
    }
}

type Handler<B> = fn(Request<B>) -> Ready<Result<Response<Empty<Bytes>>, Infallible>>;

/// The inner service: drops the request and answers 200 with an empty body.
pub fn inner<B>() -> ServiceFn<Handler<B>> {
    fn answer<B>(request: Request<B>) -> Ready<Result<Response<Empty<Bytes>>, Infallible>> {
        drop(request);
        ready(Ok(Response::new(Empty::new())))
    }
    service_fn(answer::<B> as Handler<B>)
}

/// The inner service behind the verifying layer, with the default settings.
pub fn layered() -> VerifySignature<ServiceFn<Handler<authgear_webhook::VerifiedBody>>> {
    VerifySignatureLayer::new(SECRET).layer(inner())
}

/// Drives `service` once: `poll_ready`, `call`, then polls the response future to the end.
/// Every body here is ready at once, so nothing ever waits.
pub fn oneshot<S, R, B>(service: &mut S, request: R) -> StatusCode
where
    S: Service<R, Response = Response<B>, Error = Infallible>,
{
    let mut cx = Context::from_waker(Waker::noop());
    assert!(service.poll_ready(&mut cx).is_ready(), "service not ready");
    let response = block_on(service.call(request));
    match response {
        Ok(response) => response.status(),
        Err(never) => match never {},
    }
}

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("an in-memory request must complete at the first poll"),
    }
}
