//! The hashing buffer: takes the body frame by frame, feeds each frame to the MACs as it
//! arrives, and keeps the bytes (bounded) for the inner service.

use bytes::Bytes;
use hmac::Mac;
use http::HeaderMap;
use subtle::ConstantTimeEq;

use super::config::Config;
use crate::{
    RejectionKind, Verified, VerifiedBody,
    buffer::{Buffer, TooLarge},
    signature::{HmacSha256, TAG_LEN},
};

pub(crate) struct Collector {
    macs: Vec<(usize, HmacSha256)>,
    tag: [u8; TAG_LEN],
    buffer: Buffer,
}

impl Collector {
    pub(crate) fn new(config: &Config, expected: u64, tag: [u8; TAG_LEN]) -> Self {
        Self {
            macs: config.keys.clone(),
            tag,
            buffer: Buffer::new(config.body_limit, expected),
        }
    }

    /// Takes the next data frame.
    pub(crate) fn push_data(&mut self, data: Bytes) -> Result<(), RejectionKind> {
        let bytes = self
            .buffer
            .push(data)
            .map_err(|TooLarge| RejectionKind::BodyTooLarge)?;
        for (_, mac) in &mut self.macs {
            mac.update(bytes);
        }
        Ok(())
    }

    /// Takes a trailers frame.
    pub(crate) fn push_trailers(&mut self, trailers: HeaderMap) {
        self.buffer.push_trailers(trailers);
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
        let (data, trailers) = self.buffer.take();
        Ok((Verified::new(index), VerifiedBody::new(data, trailers)))
    }
}
