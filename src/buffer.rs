//! A bounded body buffer shared by verifying and signing: a body that arrives as one frame
//! is kept as it is; more frames are copied into one contiguous buffer, never beyond the
//! limit, growing with the bytes received.

use bytes::Bytes;
use http::HeaderMap;

pub(crate) struct Buffer {
    limit: usize,
    /// How many bytes the body announced (0 when unknown): the buffer never grows past it.
    expected: usize,
    data: Data,
    trailers: Option<HeaderMap>,
}

/// The body so far.
enum Data {
    Empty,
    /// One frame: kept as it is, not copied.
    One(Bytes),
    /// More than one frame: copied into one contiguous buffer.
    Many(Vec<u8>),
}

/// The body went past the limit.
pub(crate) struct TooLarge;

impl Buffer {
    pub(crate) fn new(limit: usize, expected: u64) -> Self {
        Self {
            limit,
            expected: usize::try_from(expected).unwrap_or(usize::MAX).min(limit),
            data: Data::Empty,
            trailers: None,
        }
    }

    /// Takes the next data frame and returns its bytes (to hash them), or `TooLarge` if the
    /// body would pass the limit, in which case nothing is kept.
    pub(crate) fn push(&mut self, frame: Bytes) -> Result<&[u8], TooLarge> {
        if frame.is_empty() {
            return Ok(&[]);
        }
        let len = self.len();
        if frame.len() > self.limit - len {
            return Err(TooLarge);
        }
        self.data = match std::mem::replace(&mut self.data, Data::Empty) {
            Data::Empty => Data::One(frame),
            Data::One(first) => {
                let mut bytes = Vec::new();
                self.reserve(&mut bytes, len + frame.len());
                bytes.extend_from_slice(&first);
                bytes.extend_from_slice(&frame);
                Data::Many(bytes)
            }
            Data::Many(mut bytes) => {
                self.reserve(&mut bytes, len + frame.len());
                bytes.extend_from_slice(&frame);
                Data::Many(bytes)
            }
        };
        Ok(match &self.data {
            Data::Empty => &[],
            Data::One(bytes) => bytes,
            Data::Many(bytes) => &bytes[len..],
        })
    }

    /// Takes a trailers frame.
    pub(crate) fn push_trailers(&mut self, trailers: HeaderMap) {
        match &mut self.trailers {
            Some(existing) => existing.extend(trailers),
            None => self.trailers = Some(trailers),
        }
    }

    /// The whole body and its trailers; the buffer is empty afterwards.
    pub(crate) fn take(&mut self) -> (Bytes, Option<HeaderMap>) {
        let data = match std::mem::replace(&mut self.data, Data::Empty) {
            Data::Empty => Bytes::new(),
            Data::One(bytes) => bytes,
            Data::Many(bytes) => Bytes::from(bytes),
        };
        (data, self.trailers.take())
    }

    fn len(&self) -> usize {
        match &self.data {
            Data::Empty => 0,
            Data::One(bytes) => bytes.len(),
            Data::Many(bytes) => bytes.len(),
        }
    }

    /// Grows `bytes` to hold `needed`, by doubling what has arrived: memory follows the
    /// bytes received, never a `Content-Length` a client may not send. Never past the
    /// announced length (when there is one) nor the limit.
    fn reserve(&self, bytes: &mut Vec<u8>, needed: usize) {
        if needed <= bytes.capacity() {
            return;
        }
        let mut capacity = needed.max(bytes.capacity()).saturating_mul(2);
        if self.expected >= needed {
            capacity = capacity.min(self.expected);
        }
        bytes.reserve_exact(capacity.min(self.limit) - bytes.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacity(buffer: &Buffer) -> usize {
        match &buffer.data {
            Data::Many(bytes) => bytes.capacity(),
            _ => panic!("not copied"),
        }
    }

    #[test]
    fn one_frame_is_kept_without_a_copy() {
        let frame = Bytes::from(vec![7; 4096]);
        let mut buffer = Buffer::new(1 << 20, 4096);
        assert!(buffer.push(frame.clone()).is_ok());
        let (data, trailers) = buffer.take();
        assert_eq!(data.as_ptr(), frame.as_ptr());
        assert!(trailers.is_none());
    }

    #[test]
    fn memory_follows_the_bytes_received_not_the_announced_length() {
        let mut buffer = Buffer::new(1 << 20, 1 << 20);
        assert!(buffer.push(Bytes::from_static(b"a")).is_ok());
        assert!(buffer.push(Bytes::from_static(b"b")).is_ok());
        assert!(capacity(&buffer) <= 4, "{}", capacity(&buffer));
    }

    #[test]
    fn grows_to_the_announced_length_and_no_further() {
        let mut buffer = Buffer::new(1 << 20, 48 * 1024);
        for _ in 0..3 {
            let frame = buffer.push(Bytes::from(vec![1; 16 * 1024]));
            assert_eq!(frame.map(<[u8]>::len).ok(), Some(16 * 1024));
        }
        assert_eq!(capacity(&buffer), 48 * 1024);
        assert_eq!(buffer.take().0.len(), 48 * 1024);
    }

    #[test]
    fn refuses_a_frame_past_the_limit_and_keeps_what_it_had() {
        let mut buffer = Buffer::new(10, 0);
        assert!(buffer.push(Bytes::from_static(b"12345")).is_ok());
        assert!(buffer.push(Bytes::from_static(b"123456")).is_err());
        assert!(buffer.push(Bytes::from_static(b"67890")).is_ok());
        assert_eq!(buffer.take().0, &b"1234567890"[..]);
    }
}
