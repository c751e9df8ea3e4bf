//! The answer recorded for a delivery, and how a store keeps it.

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderValue, Response, StatusCode, header};

/// The default [`record_limit`](super::ReplayProtection::record_limit): 64 KiB.
pub(super) const DEFAULT_RECORD_LIMIT: usize = 64 * 1024;

/// The answer given to the first copy of a delivery: status, `Content-Type` and body. A
/// repeated copy gets it again instead of running the handler a second time.
///
/// ```
/// use authgear_webhook::replay::RecordedAnswer;
/// use http::StatusCode;
///
/// let answer = RecordedAnswer::new(StatusCode::OK, r#"{"is_allowed":true}"#)
///     .with_content_type("application/json");
/// assert_eq!(answer.status(), StatusCode::OK);
/// assert_eq!(answer.content_type(), Some("application/json"));
/// assert_eq!(answer.body().as_ref(), br#"{"is_allowed":true}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedAnswer {
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Bytes,
}

/// The mark in the extensions of a response that replays the [`RecordedAnswer`] of an
/// earlier copy of the same delivery: the inner service was not called.
///
/// ```
/// use authgear_webhook::replay::Repeated;
///
/// fn is_repeat(response: &http::Response<()>) -> bool {
///     response.extensions().get::<Repeated>().is_some()
/// }
/// # assert!(!is_repeat(&http::Response::new(())));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Repeated;

impl RecordedAnswer {
    /// An answer with `status` and `body`, without `Content-Type`.
    pub fn new(status: StatusCode, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            content_type: None,
            body: body.into(),
        }
    }

    /// Sets the `Content-Type`; a value that is not a valid header value is left out.
    ///
    /// ```
    /// use authgear_webhook::replay::RecordedAnswer;
    /// let answer = RecordedAnswer::new(http::StatusCode::OK, "").with_content_type("text/plain");
    /// # assert_eq!(answer.content_type(), Some("text/plain"));
    /// ```
    pub fn with_content_type(mut self, content_type: &str) -> Self {
        self.content_type = HeaderValue::from_str(content_type).ok();
        self
    }

    pub(super) fn with_header(mut self, content_type: Option<HeaderValue>) -> Self {
        self.content_type = content_type;
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `Content-Type`, if there was one (and it is visible ASCII).
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_ref()?.to_str().ok()
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The response to a repeated copy: this answer, with [`Repeated`] in its extensions.
    ///
    /// ```
    /// use authgear_webhook::replay::{RecordedAnswer, Repeated};
    ///
    /// let response = RecordedAnswer::new(http::StatusCode::OK, "").into_response();
    /// assert!(response.extensions().get::<Repeated>().is_some());
    /// ```
    pub fn into_response(self) -> Response<Bytes> {
        let mut response = Response::new(self.body);
        *response.status_mut() = self.status;
        if let Some(content_type) = self.content_type {
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type);
        }
        response.extensions_mut().insert(Repeated);
        response
    }
}

/// What a store holds under a delivery's key.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Entry {
    /// The first copy is being answered (the value names its claim).
    InFlight,
    /// It was answered; the answer is kept if it was not too large.
    Answered(Option<RecordedAnswer>),
}

const IN_FLIGHT: u8 = b'p';
const ANSWERED: u8 = b'a';

/// The value of a claim: a tag and a token naming the claim, so that only its owner
/// records or releases it (a slow owner whose claim expired touches nothing).
pub(super) fn in_flight(token: u64) -> Bytes {
    let mut value = BytesMut::with_capacity(9);
    value.put_u8(IN_FLIGHT);
    value.put_u64(token);
    value.freeze()
}

/// The value of an answered delivery: `a`, status, `Content-Type` length and bytes, body.
/// Empty means answered, answer not kept (the layout a store falls back to when full).
pub(super) fn answered(answer: Option<&RecordedAnswer>) -> Bytes {
    let Some(answer) = answer else {
        return Bytes::new();
    };
    let content_type = answer
        .content_type
        .as_ref()
        .map_or(&[][..], |v| v.as_bytes());
    let Ok(length) = u16::try_from(content_type.len()) else {
        return Bytes::new();
    };
    let mut value = BytesMut::with_capacity(5 + content_type.len() + answer.body.len());
    value.put_u8(ANSWERED);
    value.put_u16(answer.status.as_u16());
    value.put_u16(length);
    value.put_slice(content_type);
    value.put_slice(&answer.body);
    value.freeze()
}

/// Reads a stored value; anything unreadable counts as answered, answer not kept.
pub(super) fn parse(value: &Bytes) -> Entry {
    match value.first() {
        Some(&IN_FLIGHT) => Entry::InFlight,
        Some(&ANSWERED) => Entry::Answered(parse_answer(value)),
        _ => Entry::Answered(None),
    }
}

fn parse_answer(value: &Bytes) -> Option<RecordedAnswer> {
    let status = StatusCode::from_u16(u16::from_be_bytes([*value.get(1)?, *value.get(2)?])).ok()?;
    let length = usize::from(u16::from_be_bytes([*value.get(3)?, *value.get(4)?]));
    let content_type = value.get(5..5 + length)?;
    let content_type = match content_type.is_empty() {
        true => None,
        false => Some(HeaderValue::from_bytes(content_type).ok()?),
    };
    Some(RecordedAnswer {
        status,
        content_type,
        body: value.slice(5 + length..),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip_through_the_stored_value() {
        let answers = [
            RecordedAnswer::new(StatusCode::OK, r#"{"is_allowed":false,"reason":"no"}"#)
                .with_content_type("application/json"),
            RecordedAnswer::new(StatusCode::NO_CONTENT, ""),
            RecordedAnswer::new(StatusCode::BAD_REQUEST, vec![0, 255, b'a'])
                .with_content_type("text/plain; charset=utf-8"),
        ];
        for answer in answers {
            assert_eq!(
                parse(&answered(Some(&answer))),
                Entry::Answered(Some(answer))
            );
        }
        assert_eq!(parse(&in_flight(7)), Entry::InFlight);
        assert_ne!(in_flight(7), in_flight(8));
        assert_eq!(parse(&answered(None)), Entry::Answered(None));
        for garbage in [
            &b"a"[..],
            b"a\x00",
            b"a\x00\xc8\x00\x09text",
            b"a\x03\xe8\x00\x00",
            b"x",
        ] {
            assert_eq!(
                parse(&Bytes::copy_from_slice(garbage)),
                Entry::Answered(None),
                "{garbage:?}"
            );
        }
    }
}
