//! The one collector, for verifying and signing alike: reads a request body frame by frame,
//! feeds it to the keyed MACs as it arrives (in runs of a few KiB when it comes in small
//! frames) and keeps the bytes, never beyond the limit. Only the last step differs:
//! verifying compares the MACs with the signature, signing takes the tag to hex-encode it.

use std::{
    convert::Infallible,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Buf;
use http::{HeaderMap, Request, header};
use http_body::Body;

use crate::{
    BodyReservation, RejectionKind, Verified, VerifiedBody,
    buffer::{Buffer, TooLarge},
    signature::{Keys, Macs, Tag},
};

/// The default body limit, verifying and signing: 1 MiB.
pub(crate) const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Bytes hashed in one call, at least (but the last run): small frames are hashed together
/// once this many have arrived, while they are still in the cache.
const HASH_RUN: usize = 2 * 1024;

/// Settings that hold the keyed MACs a collector hashes with.
pub(crate) trait Keyed {
    fn keys(&self) -> &Keys;
}

impl<C: Keyed> Keyed for Arc<C> {
    #[inline]
    fn keys(&self) -> &Keys {
        C::keys(self)
    }
}

/// Why the collector stopped before the body's end.
pub(crate) enum Stop<E, F = Infallible> {
    /// The body went past the limit.
    TooLarge,
    /// The [`Room`] had none for the next frame.
    NoRoom(F),
    /// The body failed with this error.
    Unreadable(E),
}

/// Why [`Collector::poll_body`] stopped reading `B` with room `R`.
pub(crate) type BodyStop<B, R> = Stop<<B as Body>::Error, <R as Room>::Full>;

/// Where a collector accounts for the bytes it holds before it takes a frame.
pub(crate) trait Room {
    /// Why there is no room.
    type Full;
    /// Makes room for `total` bytes held in all, or says why there is none.
    fn cover(&mut self, total: usize) -> Result<(), Self::Full>;
}

/// Verifying: the request's room in the [`BodyBudget`](crate::BodyBudget).
impl Room for BodyReservation {
    type Full = RejectionKind;

    #[inline]
    fn cover(&mut self, total: usize) -> Result<(), RejectionKind> {
        BodyReservation::cover(self, total)
    }
}

/// Signing: no account beyond the limit (the body is the signer's own).
pub(crate) struct Unbounded;

impl Room for Unbounded {
    type Full = Infallible;

    #[inline]
    fn cover(&mut self, _total: usize) -> Result<(), Infallible> {
        Ok(())
    }
}

pub(crate) struct Collector<C> {
    /// The settings, with the keyed MACs.
    config: C,
    /// The MACs, copied from the config once the first run is hashed: a body that ends
    /// before (one frame, or a few small ones) is hashed in one go at the end. Boxed: the
    /// collector lives in every request's future, which moves a few times.
    macs: Option<Box<Macs>>,
    buffer: Buffer,
}

impl<C: Keyed> Collector<C> {
    /// A collector for a body of at most `limit` bytes, which announced `expected` (see
    /// [`declared_length`]).
    #[inline]
    pub(crate) fn new(config: C, limit: usize, expected: u64) -> Self {
        Self {
            config,
            macs: None,
            buffer: Buffer::new(limit, expected),
        }
    }

    /// The settings the collector was made with.
    #[inline]
    pub(crate) fn config(&self) -> &C {
        &self.config
    }

    /// Reads `body` until its end (`Ready(Ok)`), or until it passes the limit, finds no
    /// `room` for the next frame or fails. Polls until the body returns `None`, not until
    /// `is_end_stream()`.
    #[inline]
    pub(crate) fn poll_body<B: Body, R: Room>(
        &mut self,
        mut body: Pin<&mut B>,
        cx: &mut Context<'_>,
        room: &mut R,
    ) -> Poll<Result<(), BodyStop<B, R>>> {
        loop {
            let frame = match body.as_mut().poll_frame(cx) {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    // The body makes us wait: stop holding a frame of the connection's
                    // read buffer, whose size the budget does not see.
                    self.buffer.unshare();
                    return Poll::Pending;
                }
            };
            match frame {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => self.push_data(data, room)?,
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            self.buffer.push_trailers(trailers);
                        }
                    }
                },
                Some(Err(error)) => return Poll::Ready(Err(Stop::Unreadable(error))),
                None => return Poll::Ready(Ok(())),
            }
        }
    }

    /// Takes the next data frame, once `room` covers what the buffer will hold with it: the
    /// one place bytes are kept and hashed.
    #[inline]
    fn push_data<E, R: Room>(
        &mut self,
        data: impl Buf,
        room: &mut R,
    ) -> Result<(), Stop<E, R::Full>> {
        if let Some(held) = self.buffer.held_after(data.remaining()) {
            room.cover(held).map_err(Stop::NoRoom)?;
        }
        self.buffer
            .append(data)
            .map_err(|TooLarge| Stop::TooLarge)?;
        // A body in one frame is hashed at the end, in one go; copied frames in runs.
        if self.buffer.is_copied() {
            let run = self.buffer.unhashed(HASH_RUN);
            if !run.is_empty() {
                let keys = self.config.keys();
                let macs = self.macs.get_or_insert_with(|| Box::new(keys.start()));
                macs.update(run);
            }
        }
        Ok(())
    }

    /// The body has ended: checks `tag` over it, in constant time against every accepted
    /// secret, and hands back the body if it matched.
    #[inline]
    pub(crate) fn verify(&mut self, tag: &Tag) -> Result<(Verified, VerifiedBody), RejectionKind> {
        let rest = self.buffer.unhashed(0);
        let verified = match self.macs.take() {
            Some(mut macs) => {
                macs.update(rest);
                macs.verify(tag)
            }
            // Not hashed yet (one frame, or a few small ones): hashed here in one go.
            None => self.config.keys().verify(rest, tag),
        }?;
        Ok((verified, self.body()))
    }

    /// The body has ended: its MAC under the (first) key, and the body.
    pub(crate) fn sign(&mut self) -> (Tag, VerifiedBody) {
        let rest = self.buffer.unhashed(0);
        let tag = match self.macs.take() {
            Some(mut macs) => {
                macs.update(rest);
                macs.tag()
            }
            None => self.config.keys().tag(rest),
        };
        (tag, self.body())
    }

    fn body(&mut self) -> VerifiedBody {
        let (data, trailers) = self.buffer.take();
        VerifiedBody::new(data, trailers)
    }
}

/// The body length a request announces: the larger of its `Content-Length` and the lower
/// bound the body itself knows (hyper sets it from `Content-Length` on HTTP/1.1 and HTTP/2).
/// Both are read: a request whose header and body disagree is judged by the larger, and a
/// collector never grows its buffer past it (the bytes received decide beyond).
#[inline]
pub(crate) fn declared_length<B: Body>(request: &Request<B>) -> u64 {
    content_length(request.headers())
        .unwrap_or(0)
        .max(request.body().size_hint().lower())
}

#[inline]
fn content_length(headers: &HeaderMap) -> Option<u64> {
    parse_length(headers.get(header::CONTENT_LENGTH)?.as_bytes())
}

/// `value.to_str()?.trim().parse::<u64>()` on a header value's bytes, in one pass without
/// the UTF-8 check (about 200 instructions less per request): spaces and tabs around, an
/// optional `+`, then only digits, no overflow. A header value holds no other whitespace.
#[inline]
fn parse_length(value: &[u8]) -> Option<u64> {
    let blank = |byte: &u8| *byte == b' ' || *byte == b'\t';
    let start = value.iter().position(|byte| !blank(byte))?;
    let end = value.iter().rposition(|byte| !blank(byte))?;
    let digits = &value[start..=end];
    let digits = digits.strip_prefix(b"+").unwrap_or(digits);
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0_u64, |length, byte| {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        length.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::{Empty, Full};

    use super::*;

    #[test]
    fn declared_length_is_the_larger_of_header_and_body() {
        let full = |n: usize| Full::new(Bytes::from(vec![0; n]));
        let with = |length: &str, n| {
            let mut request = Request::new(full(n));
            let value = http::HeaderValue::from_str(length).expect("test header");
            request.headers_mut().insert(header::CONTENT_LENGTH, value);
            request
        };
        assert_eq!(declared_length(&Request::new(Empty::<Bytes>::new())), 0);
        assert_eq!(declared_length(&Request::new(full(10))), 10);
        assert_eq!(declared_length(&with("2000000", 10)), 2_000_000);
        assert_eq!(declared_length(&with(" 5 ", 0)), 5);
        assert_eq!(declared_length(&with("5", 10)), 10);
        for unreadable in ["", "-1", "1e3", "abc", "99999999999999999999999"] {
            assert_eq!(declared_length(&with(unreadable, 3)), 3, "{unreadable:?}");
        }
        // A streaming body knows nothing: the header alone speaks.
        let mut request = Request::new(Unknown);
        request
            .headers_mut()
            .insert(header::CONTENT_LENGTH, http::HeaderValue::from_static("42"));
        assert_eq!(declared_length(&request), 42);
    }

    #[test]
    fn parse_length_is_str_parse_of_the_trimmed_value() {
        let alphabet: &[u8] = b" \t+-09a\x0b\r\x80";
        let mut values: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..4 {
            let longer: Vec<Vec<u8>> = values
                .iter()
                .flat_map(|value| {
                    alphabet.iter().map(move |byte| {
                        let mut value = value.clone();
                        value.push(*byte);
                        value
                    })
                })
                .collect();
            values.extend(longer);
        }
        for big in [
            &b"18446744073709551615"[..],
            b"18446744073709551616",
            b" +0018446744073709551615\t",
            b"99999999999999999999999",
        ] {
            values.push(big.to_vec());
        }
        for value in &values {
            let by_str = std::str::from_utf8(value)
                .ok()
                .filter(|text| text.bytes().all(|b| b == b'\t' || (32..127).contains(&b)))
                .and_then(|text| text.trim().parse::<u64>().ok());
            assert_eq!(parse_length(value), by_str, "{value:?}");
        }
    }

    /// A body that tells nothing of its length.
    struct Unknown;

    impl Body for Unknown {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            Poll::Ready(None)
        }
    }
}
