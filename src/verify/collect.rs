//! The bounded, hashing buffer: takes the body frame by frame, feeds each frame to the
//! MACs as it arrives, and keeps the bytes for the inner service.

use bytes::Bytes;
use hmac::Mac;
use http::HeaderMap;
use subtle::ConstantTimeEq;

use super::config::Config;
use crate::{
    RejectionKind, Verified, VerifiedBody,
    signature::{HmacSha256, TAG_LEN},
};

pub(crate) struct Collector {
    macs: Vec<(usize, HmacSha256)>,
    tag: [u8; TAG_LEN],
    limit: usize,
    /// How many bytes the body announced, to size the buffer once.
    expected: usize,
    buffer: Buffer,
    trailers: Option<HeaderMap>,
}

enum Buffer {
    Empty,
    /// The body so far is one frame: kept as it is, not copied.
    One(Bytes),
    /// More than one frame: copied into one contiguous buffer, never beyond the limit.
    Many(Vec<u8>),
}

impl Collector {
    pub(crate) fn new(config: &Config, expected: u64, tag: [u8; TAG_LEN]) -> Self {
        Self {
            macs: config.keys.clone(),
            tag,
            limit: config.body_limit,
            expected: usize::try_from(expected)
                .unwrap_or(usize::MAX)
                .min(config.body_limit),
            buffer: Buffer::Empty,
            trailers: None,
        }
    }

    /// Takes the next data frame.
    pub(crate) fn push_data(&mut self, data: Bytes) -> Result<(), RejectionKind> {
        if data.is_empty() {
            return Ok(());
        }
        let len = self.len();
        if data.len() > self.limit - len {
            return Err(RejectionKind::BodyTooLarge);
        }
        for (_, mac) in &mut self.macs {
            mac.update(&data);
        }
        self.buffer = match std::mem::replace(&mut self.buffer, Buffer::Empty) {
            Buffer::Empty => Buffer::One(data),
            Buffer::One(first) => {
                let mut bytes = Vec::new();
                self.reserve(&mut bytes, first.len() + data.len());
                bytes.extend_from_slice(&first);
                bytes.extend_from_slice(&data);
                Buffer::Many(bytes)
            }
            Buffer::Many(mut bytes) => {
                self.reserve(&mut bytes, len + data.len());
                bytes.extend_from_slice(&data);
                Buffer::Many(bytes)
            }
        };
        Ok(())
    }

    /// Takes a trailers frame.
    pub(crate) fn push_trailers(&mut self, trailers: HeaderMap) {
        match &mut self.trailers {
            Some(existing) => existing.extend(trailers),
            None => self.trailers = Some(trailers),
        }
    }

    /// Checks the signature over the whole body, in constant time against every accepted
    /// secret, and hands back the body if it matched.
    pub(crate) fn finish(&mut self) -> Result<(Verified, VerifiedBody), RejectionKind> {
        let mut matched = None;
        for (index, mac) in std::mem::take(&mut self.macs) {
            let computed = mac.finalize().into_bytes();
            if bool::from(computed.as_slice().ct_eq(&self.tag)) {
                matched = matched.or(Some(index));
            }
        }
        let index = matched.ok_or(RejectionKind::InvalidSignature)?;
        let data = match std::mem::replace(&mut self.buffer, Buffer::Empty) {
            Buffer::Empty => Bytes::new(),
            Buffer::One(bytes) => bytes,
            Buffer::Many(bytes) => Bytes::from(bytes),
        };
        Ok((
            Verified::new(index),
            VerifiedBody::new(data, self.trailers.take()),
        ))
    }

    fn len(&self) -> usize {
        match &self.buffer {
            Buffer::Empty => 0,
            Buffer::One(bytes) => bytes.len(),
            Buffer::Many(bytes) => bytes.len(),
        }
    }

    /// Grows `bytes` to hold `needed`: to the announced length at once, else by doubling,
    /// but never past the limit.
    fn reserve(&self, bytes: &mut Vec<u8>, needed: usize) {
        if needed <= bytes.capacity() {
            return;
        }
        let capacity = needed
            .max(self.expected)
            .max(bytes.capacity().saturating_mul(2))
            .min(self.limit);
        bytes.reserve_exact(capacity - bytes.len());
    }
}
