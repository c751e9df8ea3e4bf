//! The hashing buffer: takes the body frame by frame, feeds it to the MACs as it arrives
//! (in runs of a few KiB when it comes in small frames), and keeps the bytes (bounded) for
//! the inner service.

use std::sync::Arc;

use bytes::Buf;
use http::HeaderMap;

use super::{
    budget::{Exhausted, Reservation},
    config::{Config, Macs},
};
use crate::{
    RejectionKind, Verified, VerifiedBody,
    buffer::{Buffer, TooLarge},
    signature::TAG_LEN,
};

/// Bytes hashed in one call, at least (but the last run): small frames are hashed together
/// once this many have arrived, while they are still in the cache.
const HASH_RUN: usize = 2 * 1024;

pub(crate) struct Collector {
    config: Arc<Config>,
    /// The keyed MACs, cloned from the config once the first run is hashed: a body that
    /// ends before (one frame, or a few small ones) is hashed in one go by `finish`. Boxed:
    /// the collector lives in every request's future, which moves a few times.
    macs: Option<Box<Macs>>,
    tag: [u8; TAG_LEN],
    buffer: Buffer,
}

impl Collector {
    #[inline]
    pub(crate) fn new(config: Arc<Config>, expected: u64, tag: [u8; TAG_LEN]) -> Self {
        Self {
            buffer: Buffer::new(config.body_limit, expected),
            config,
            macs: None,
            tag,
        }
    }

    /// The settings the collector was made with.
    #[inline]
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Takes the next data frame, once `room` in the body budget covers what the buffer
    /// will hold with it.
    #[inline]
    pub(crate) fn push_data(
        &mut self,
        data: impl Buf,
        room: &mut Reservation,
    ) -> Result<(), RejectionKind> {
        if let Some(held) = self.buffer.held_after(data.remaining()) {
            room.cover(held)
                .map_err(|Exhausted| RejectionKind::BudgetExhausted)?;
        }
        self.buffer
            .append(data)
            .map_err(|TooLarge| RejectionKind::BodyTooLarge)?;
        // A body in one frame is hashed by `finish`, in one go; copied frames in runs.
        if self.buffer.is_copied() {
            let run = self.buffer.unhashed(HASH_RUN);
            if !run.is_empty() {
                let macs = self
                    .macs
                    .get_or_insert_with(|| Box::new(self.config.keys.clone()));
                macs.update(run);
            }
        }
        Ok(())
    }

    /// The body makes the layer wait: stop holding a frame of the connection's.
    #[inline]
    pub(crate) fn waiting(&mut self) {
        self.buffer.unshare();
    }

    /// Takes a trailers frame.
    pub(crate) fn push_trailers(&mut self, trailers: HeaderMap) {
        self.buffer.push_trailers(trailers);
    }

    /// Checks the signature over the whole body, in constant time against every accepted
    /// secret, and hands back the body if it matched.
    #[inline]
    pub(crate) fn finish(&mut self) -> Result<(Verified, VerifiedBody), RejectionKind> {
        let rest = self.buffer.unhashed(0);
        let index = match self.macs.take() {
            Some(mut macs) => {
                macs.update(rest);
                macs.matching(&self.tag)
            }
            // Not hashed yet (one frame, or a few small ones): hashed here in one go.
            None => self.config.keys.verify(rest, &self.tag),
        };
        let index = index.ok_or(RejectionKind::InvalidSignature)?;
        let (data, trailers) = self.buffer.take();
        Ok((Verified::new(index), VerifiedBody::new(data, trailers)))
    }
}
