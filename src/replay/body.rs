//! The first copy's response on its way out: recorded for the copies that follow.

use std::{
    pin::Pin,
    sync::atomic::{AtomicBool, Ordering},
    task::{Context, Poll, ready},
};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::{Claim, RecordedAnswer};

pin_project! {
    /// The body of the inner service's answer to the first copy of a delivery, recorded
    /// frame by frame for the copies that follow, as it streams out (see the
    /// [module docs](super)); any other body passes through untouched.
    ///
    /// It implements `Default` when the inner body does, so the layer composes with layers
    /// that need it (tower-http's `TimeoutLayer`, for one).
    ///
    /// ```
    /// use authgear_webhook::replay::RecordingBody;
    /// use http_body::Body;
    ///
    /// let body = RecordingBody::<http_body_util::Empty<bytes::Bytes>>::default();
    /// assert!(body.is_end_stream());
    /// ```
    #[derive(Debug)]
    pub struct RecordingBody<B> {
        #[pin]
        body: B,
        recorder: Option<Box<Recorder>>,
    }
}

impl<B> RecordingBody<B> {
    pub(super) fn new(body: B, recorder: Option<Box<Recorder>>) -> Self {
        Self { body, recorder }
    }
}

impl<B: Default> Default for RecordingBody<B> {
    fn default() -> Self {
        Self::new(B::default(), None)
    }
}

impl<B> Body for RecordingBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let mut body = this.body;
        let Some(recorder) = this.recorder else {
            return body.poll_frame(cx);
        };
        let frame = ready!(body.as_mut().poll_frame(cx));
        let ended = match &frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    recorder.data(data);
                }
                // A server stops polling a body that says it has ended.
                body.is_end_stream().then_some(true)
            }
            Some(Err(_)) => Some(false),
            None => Some(true),
        };
        if let Some(complete) = ended {
            recorder.finish(complete);
            *this.recorder = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        let ended = self.body.is_end_stream();
        if let (true, Some(recorder)) = (ended, &self.recorder) {
            recorder.at_end.store(true, Ordering::Relaxed);
        }
        ended
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Records the inner service's response to the first copy, as it streams out: a 5xx (or
/// an error, or a cancelled request) releases the claim; any other answer is kept if its
/// body fits in the record limit.
#[derive(Debug)]
pub(super) struct Recorder {
    claim: Claim,
    record_limit: usize,
    /// Status and `Content-Type`, once the inner service answered.
    head: Option<(StatusCode, Option<HeaderValue>)>,
    /// The body so far (cheap clones of its frames), unless it outgrew the limit.
    frames: Vec<Bytes>,
    size: usize,
    /// The body said it has ended: dropped unpolled, it is still complete.
    at_end: AtomicBool,
}

impl Recorder {
    pub(super) fn new(claim: Claim, record_limit: usize) -> Self {
        Self {
            claim,
            record_limit,
            head: None,
            frames: Vec::new(),
            size: 0,
            at_end: AtomicBool::new(false),
        }
    }

    /// The inner service's status and headers; `false`: nothing to record (a 5xx released
    /// the claim), drop the recorder.
    pub(super) fn head(&mut self, status: StatusCode, headers: &HeaderMap) -> bool {
        if status.is_server_error() {
            // Handling failed: free the delivery for a later copy.
            std::mem::replace(&mut self.claim, Claim::none()).release();
            return false;
        }
        self.head = Some((status, headers.get(header::CONTENT_TYPE).cloned()));
        true
    }

    fn data(&mut self, data: &Bytes) {
        self.size = self.size.saturating_add(data.len());
        match self.size <= self.record_limit {
            true => self.frames.push(data.clone()),
            false => self.frames = Vec::new(),
        }
    }

    /// The body ended (`complete`), or failed.
    fn finish(&mut self, complete: bool) {
        let Some((status, content_type)) = self.head.take() else {
            return;
        };
        if !complete || self.size > self.record_limit {
            return self.claim.answered_unkept();
        }
        let body = match self.frames.as_slice() {
            [one] => one.clone(),
            frames => frames
                .iter()
                .fold(BytesMut::with_capacity(self.size), |mut body, frame| {
                    body.extend_from_slice(frame);
                    body
                })
                .freeze(),
        };
        let answer = RecordedAnswer::new(status, body).with_header(content_type);
        std::mem::replace(&mut self.claim, Claim::none()).record(&answer);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Dropped with the answer given but its body not read to the end. If the body said
        // it had ended (a server does not poll an empty body), the answer is complete.
        // Otherwise the client went away mid-way, or nobody read it: the handler did run, so
        // the delivery stays answered, without an answer to repeat.
        let complete = *self.at_end.get_mut();
        self.finish(complete);
        // Without a head (the inner service failed, or the request was cancelled), the
        // claim is dropped here: released.
    }
}
