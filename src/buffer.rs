//! A bounded body buffer shared by verifying and signing: a body that arrives as one frame
//! is kept as it is; more frames are copied into one contiguous buffer, never beyond the
//! limit, growing with the bytes received.
//!
//! It also keeps track of which bytes were handed out to be hashed, so that a caller can
//! hash the body in runs of a few KiB rather than frame by frame: many small frames then
//! cost one hashing call per run rather than one each, and each byte is still hashed once,
//! shortly after it arrived.

use bytes::{Buf, BufMut, Bytes};
use http::HeaderMap;

pub(crate) struct Buffer {
    limit: usize,
    /// How many bytes the body announced (0 when unknown): the buffer never grows past it.
    expected: usize,
    data: Data,
    /// How many bytes, from the start, were handed out to be hashed.
    hashed: usize,
    /// Boxed: rare, and the buffer lives in every request's future.
    trailers: Option<Box<HeaderMap>>,
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

/// The first allocation, when a second frame arrives, may be this large (but never larger
/// than the announced length): a body in many small frames then grows in a few steps
/// rather than by doubling from its first bytes.
const FIRST_ALLOCATION: usize = 4 * 1024;

impl Buffer {
    #[inline]
    pub(crate) fn new(limit: usize, expected: u64) -> Self {
        Self {
            limit,
            expected: usize::try_from(expected).unwrap_or(usize::MAX).min(limit),
            data: Data::Empty,
            hashed: 0,
            trailers: None,
        }
    }

    /// Takes the next data frame and returns its bytes (to hash them), or `TooLarge` if the
    /// body would pass the limit, in which case nothing is kept.
    #[cfg(test)]
    fn push(&mut self, frame: Bytes) -> Result<&[u8], TooLarge> {
        self.append(frame)?;
        Ok(self.unhashed(0))
    }

    /// Takes the next data frame, or refuses it with `TooLarge` if the body would pass the
    /// limit, in which case nothing is kept. Its bytes are handed out by [`Self::unhashed`].
    /// The one place bytes are added to a request's buffer.
    #[inline]
    pub(crate) fn append(&mut self, mut frame: impl Buf) -> Result<(), TooLarge> {
        let size = frame.remaining();
        if size == 0 {
            return Ok(());
        }
        let len = self.len();
        if size > self.limit - len {
            return Err(TooLarge);
        }
        match &mut self.data {
            Data::Many(bytes) => {
                grow(bytes, len + size, self.expected, self.limit);
                bytes.put(frame);
            }
            // `Bytes` hands itself over without a copy.
            Data::Empty => self.data = Data::One(frame.copy_to_bytes(size)),
            Data::One(first) => {
                let mut bytes = Vec::new();
                grow(&mut bytes, len + size, self.expected, self.limit);
                bytes.extend_from_slice(first);
                bytes.put(frame);
                self.data = Data::Many(bytes);
            }
        }
        Ok(())
    }

    /// The bytes received but not handed out yet, if there are at least `run` of them
    /// (otherwise nothing): each byte is handed out once, in order.
    #[inline]
    pub(crate) fn unhashed(&mut self, run: usize) -> &[u8] {
        let bytes: &[u8] = match &self.data {
            Data::Empty => &[],
            Data::One(bytes) => bytes,
            Data::Many(bytes) => bytes,
        };
        if bytes.len() - self.hashed < run {
            return &[];
        }
        let start = std::mem::replace(&mut self.hashed, bytes.len());
        &bytes[start..]
    }

    /// The bytes the buffer will hold allocated once it has taken `size` more, as
    /// [`Self::append`] grows it, or `None` if they would pass the limit (then `append`
    /// refuses them). The body budget reserves this much before `append` runs.
    #[inline]
    pub(crate) fn held_after(&self, size: usize) -> Option<usize> {
        let len = self.len();
        if size > self.limit - len {
            return None;
        }
        Some(match &self.data {
            _ if size == 0 => self.held(),
            Data::Empty => size,
            Data::One(_) => capacity(0, len + size, self.expected, self.limit),
            Data::Many(bytes) => capacity(bytes.capacity(), len + size, self.expected, self.limit),
        })
    }

    /// The bytes the buffer holds: the frame kept as it is, or the copy's allocation.
    #[inline]
    pub(crate) fn held(&self) -> usize {
        match &self.data {
            Data::Empty => 0,
            Data::One(bytes) => bytes.len(),
            Data::Many(bytes) => bytes.capacity(),
        }
    }

    /// The body makes its reader wait: a frame kept as it is gets copied now (as the next
    /// frame would have it copied anyway), so that a stalled body never keeps alive the
    /// (possibly much larger) read buffer of the connection the frame was cut from, which
    /// the body budget could not count.
    pub(crate) fn unshare(&mut self) {
        if let Data::One(bytes) = &self.data {
            self.data = Data::Many(bytes.to_vec());
        }
    }

    /// Whether the frames were copied into a buffer of its own (more than one arrived).
    #[inline]
    pub(crate) fn is_copied(&self) -> bool {
        matches!(self.data, Data::Many(_))
    }

    /// Takes a trailers frame.
    pub(crate) fn push_trailers(&mut self, trailers: HeaderMap) {
        match &mut self.trailers {
            Some(existing) => existing.extend(trailers),
            None => self.trailers = Some(Box::new(trailers)),
        }
    }

    /// The whole body and its trailers; the buffer is empty afterwards.
    #[inline]
    pub(crate) fn take(&mut self) -> (Bytes, Option<Box<HeaderMap>>) {
        self.hashed = 0;
        let data = match std::mem::replace(&mut self.data, Data::Empty) {
            Data::Empty => Bytes::new(),
            Data::One(bytes) => bytes,
            Data::Many(bytes) => Bytes::from(bytes),
        };
        (data, self.trailers.take())
    }

    #[inline]
    fn len(&self) -> usize {
        match &self.data {
            Data::Empty => 0,
            Data::One(bytes) => bytes.len(),
            Data::Many(bytes) => bytes.len(),
        }
    }
}

/// Grows `bytes` to hold `needed`, by doubling what has arrived: memory follows the bytes
/// received, never a `Content-Length` a client may not send (the first allocation may be
/// up to [`FIRST_ALLOCATION`], if that much was announced). Never past the announced
/// length (when there is one) nor the limit.
fn grow(bytes: &mut Vec<u8>, needed: usize, expected: usize, limit: usize) {
    let capacity = capacity(bytes.capacity(), needed, expected, limit);
    bytes.reserve_exact(capacity - bytes.len());
}

/// The capacity [`grow`] gives a buffer of capacity `current` that must hold `needed`.
#[inline]
fn capacity(current: usize, needed: usize, expected: usize, limit: usize) -> usize {
    if needed <= current {
        return current;
    }
    let mut capacity = needed.max(current).saturating_mul(2);
    if current == 0 {
        capacity = capacity.max(expected.min(FIRST_ALLOCATION));
    }
    if expected >= needed {
        capacity = capacity.min(expected);
    }
    capacity.min(limit)
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
        // 1 MiB announced, 2 bytes sent: at most the first allocation is taken.
        let mut buffer = Buffer::new(1 << 20, 1 << 20);
        assert!(buffer.push(Bytes::from_static(b"a")).is_ok());
        assert!(buffer.push(Bytes::from_static(b"b")).is_ok());
        assert!(
            capacity(&buffer) <= FIRST_ALLOCATION,
            "{}",
            capacity(&buffer)
        );
        // Then it grows by doubling what has arrived.
        for _ in 0..3 {
            assert!(buffer.push(Bytes::from(vec![1; 8 * 1024])).is_ok());
        }
        let received = 2 + 3 * 8 * 1024;
        assert!(capacity(&buffer) <= 2 * received, "{}", capacity(&buffer));
        // Nothing announced, or less than the first allocation: never more than doubling.
        for announced in [0, 100] {
            let mut buffer = Buffer::new(1 << 20, announced);
            assert!(buffer.push(Bytes::from_static(b"a")).is_ok());
            assert!(buffer.push(Bytes::from_static(b"b")).is_ok());
            assert!(capacity(&buffer) <= 100, "{}", capacity(&buffer));
        }
    }

    #[test]
    fn hands_out_every_byte_once_in_order_in_runs() {
        let body: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut buffer = Buffer::new(1 << 20, body.len() as u64);
        let mut hashed = Vec::new();
        let mut runs = 0;
        for frame in body.chunks(100) {
            assert!(buffer.append(Bytes::copy_from_slice(frame)).is_ok());
            let run = buffer.unhashed(1000);
            assert!(run.is_empty() || run.len() >= 1000, "{}", run.len());
            runs += usize::from(!run.is_empty());
            hashed.extend_from_slice(run);
        }
        hashed.extend_from_slice(buffer.unhashed(0));
        assert!(buffer.unhashed(0).is_empty());
        assert_eq!(runs, 10);
        assert_eq!(hashed, body);
        assert_eq!(buffer.take().0, body);
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
    fn held_after_is_what_append_then_holds() {
        for (limit, expected, frames) in [
            (1 << 20, 1 << 20, &[1, 1, 5000, 3, 100_000, 0, 7][..]),
            (1 << 20, 0, &[4096, 1, 1, 9000][..]),
            (10_000, 6000, &[10, 20, 5000, 970, 4000][..]),
            (100, 100, &[0, 100][..]),
        ] {
            let mut buffer = Buffer::new(limit, expected);
            for &size in frames {
                let after = buffer.held_after(size).expect("within the limit");
                assert!(buffer.append(Bytes::from(vec![1; size])).is_ok());
                assert_eq!(buffer.held(), after, "{limit} {expected} {frames:?} {size}");
            }
            assert!(buffer.held_after(limit + 1).is_none());
        }
    }

    #[test]
    fn unshare_copies_a_kept_frame_and_keeps_its_bytes() {
        let mut buffer = Buffer::new(1 << 20, 1 << 20);
        assert!(buffer.append(Bytes::from_static(b"abc")).is_ok());
        buffer.unshare();
        assert!(buffer.is_copied());
        assert_eq!(buffer.held(), 3);
        let after = buffer.held_after(2);
        assert!(buffer.append(Bytes::from_static(b"de")).is_ok());
        assert_eq!(Some(buffer.held()), after);
        assert_eq!(buffer.unhashed(0), b"abcde");
        assert_eq!(buffer.take().0, &b"abcde"[..]);
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
