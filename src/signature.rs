//! The security core, in one file to audit alone: the signature header's parsing, the keyed
//! MACs, the constant-time comparison against every accepted secret, and signing. Pure
//! functions, no I/O. [`Verifier`] is its public face; the verifying layer, the signing
//! layer and [`sign`] all go through the code below.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::{RejectionKind, Secret, Verified};

/// The header that carries Authgear's body signature: `x-authgear-body-signature`.
///
/// ```
/// assert_eq!(authgear_webhook::SIGNATURE_HEADER, "x-authgear-body-signature");
/// ```
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-authgear-body-signature");

/// HMAC-SHA256, the MAC Authgear signs bodies with.
type HmacSha256 = Hmac<Sha256>;

/// Length of a decoded signature: the 32 bytes of an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;

/// A decoded signature: the 32 bytes of an HMAC-SHA256 tag.
pub(crate) type Tag = [u8; TAG_LEN];

/// Returns the signature Authgear would send for `body` under `secret`: the lowercase hex
/// of HMAC-SHA256 over the exact bytes, as found in [`SIGNATURE_HEADER`].
///
/// Use it to sign test deliveries, or to send Authgear-style signed calls yourself.
///
/// ```
/// // Authgear's own test vector.
/// assert_eq!(
///     authgear_webhook::sign("secret", b"body"),
///     "dc46983557fea127b43af721467eb9b3fde2338fe3e14f51952aa8478c13d355",
/// );
/// ```
#[must_use]
pub fn sign(secret: impl AsRef<[u8]>, body: &[u8]) -> String {
    let mut mac = keyed(secret.as_ref());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Keys an HMAC-SHA256 with `key`.
fn keyed(key: &[u8]) -> HmacSha256 {
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC hashes long keys and pads short ones: every length is accepted.
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// The signature header's value for `tag`: its lowercase hex, as [`sign`] returns it.
pub(crate) fn header_value(tag: &Tag) -> HeaderValue {
    match HeaderValue::from_str(&hex::encode(tag)) {
        Ok(value) => value,
        // Hex digits are visible ASCII, which a header value always accepts.
        Err(_) => unreachable!("hex is a valid header value"),
    }
}

/// Reads the one signature header of a request and decodes it as [`parse_signature`] does.
/// A missing header is `MissingSignature`; a repeated one is `MalformedSignature`.
#[inline]
pub(crate) fn parse_header(headers: &HeaderMap) -> Result<Tag, RejectionKind> {
    let mut values = headers.get_all(&SIGNATURE_HEADER).iter();
    let value = values.next().ok_or(RejectionKind::MissingSignature)?;
    if values.next().is_some() {
        return Err(RejectionKind::MalformedSignature);
    }
    parse_signature(value.as_bytes())
}

/// Decodes a signature header's value to the 32-byte tag. Hex is accepted in either case;
/// surrounding whitespace is ignored. An empty value is `MissingSignature`; a wrong
/// length, a non-hex character or a `sha256=` prefix is `MalformedSignature`.
#[inline]
pub(crate) fn parse_signature(value: &[u8]) -> Result<Tag, RejectionKind> {
    let hex = value.trim_ascii();
    if hex.is_empty() {
        return Err(RejectionKind::MissingSignature);
    }
    decode_tag(hex).ok_or(RejectionKind::MalformedSignature)
}

/// Decodes exactly 64 hex digits, in either case, to the 32-byte tag; anything else is
/// `None`. A table lookup per digit, without a branch: kept over the `hex` crate (which
/// checks each digit in turn) because the in-process bench shows it at small bodies
/// (BENCHMARKS.md, section 7: 256 B in one frame, 0.44-0.47x with it, 0.40-0.43x without).
#[inline]
fn decode_tag(hex: &[u8]) -> Option<Tag> {
    let hex: &[u8; 2 * TAG_LEN] = hex.try_into().ok()?;
    let mut tag = [0; TAG_LEN];
    // Collects the bits of every digit's value: 0xff marks a non-digit.
    let mut values = 0;
    for (byte, [high, low]) in tag.iter_mut().zip(hex.as_chunks::<2>().0) {
        let (high, low) = (HEX_VALUE[usize::from(*high)], HEX_VALUE[usize::from(*low)]);
        values |= high | low;
        *byte = (high << 4) | low;
    }
    (values < 16).then_some(tag)
}

/// The value of each byte as a hex digit (`0-9`, `a-f`, `A-F`), or 0xff if it is none.
const HEX_VALUE: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < 16 {
        let digit = b"0123456789abcdef"[i];
        table[digit as usize] = i as u8;
        table[digit.to_ascii_uppercase() as usize] = i as u8;
        i += 1;
    }
    table
};

/// Keyed MACs, each with the index of its secret: keyed once, cloned per body. The first
/// is kept inline, so that a clone allocates only when more than one secret is accepted.
#[derive(Clone, Default)]
pub(crate) struct Keys {
    first: Option<(usize, HmacSha256)>,
    others: Vec<(usize, HmacSha256)>,
}

impl Keys {
    /// No MAC: matches nothing.
    pub(crate) fn none() -> &'static Self {
        static NONE: Keys = Keys {
            first: None,
            others: Vec::new(),
        };
        &NONE
    }

    /// One MAC keyed with `key` (signing: any key, the empty one included).
    pub(crate) fn one(key: &[u8]) -> Self {
        Self {
            first: Some((0, keyed(key))),
            others: Vec::new(),
        }
    }

    fn push(&mut self, index: usize, key: &[u8]) {
        let mac = (index, keyed(key));
        match self.first {
            None => self.first = Some(mac),
            Some(_) => self.others.push(mac),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &(usize, HmacSha256)> {
        self.first.iter().chain(&self.others)
    }

    /// Starts hashing a body with a copy of every MAC.
    #[inline]
    pub(crate) fn start(&self) -> Macs {
        Macs(self.clone())
    }

    /// Hashes the whole `body` with a copy of every MAC and compares each with `tag`, as
    /// [`Macs::verify`] does, without copying the `Keys` first (a body in one piece).
    #[inline]
    pub(crate) fn verify(&self, body: &[u8], tag: &Tag) -> Result<Verified, RejectionKind> {
        let macs = self.iter().map(|(index, keyed)| {
            let mut mac = keyed.clone();
            mac.update(body);
            (*index, mac)
        });
        first_match(macs, tag)
    }

    /// The first MAC over the whole `body` (signing a body in one piece).
    #[inline]
    pub(crate) fn tag(&self, body: &[u8]) -> Tag {
        let mut macs = self.start();
        macs.update(body);
        macs.tag()
    }
}

/// MACs hashing a body, as [`Keys::start`] gave them.
pub(crate) struct Macs(Keys);

impl Macs {
    /// Feeds the next bytes of the body to every MAC.
    #[inline]
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        for (_, mac) in self.0.first.iter_mut().chain(&mut self.0.others) {
            mac.update(bytes);
        }
    }

    /// Finishes every MAC and compares each with `tag`: verified by the first secret whose
    /// MAC equals `tag`.
    #[inline]
    pub(crate) fn verify(self, tag: &Tag) -> Result<Verified, RejectionKind> {
        first_match(self.0.first.into_iter().chain(self.0.others), tag)
    }

    /// Finishes the first MAC (signing: there is one).
    pub(crate) fn tag(self) -> Tag {
        let mut tag = [0; TAG_LEN];
        if let Some((_, mac)) = self.0.first {
            tag.copy_from_slice(&mac.finalize().into_bytes());
        }
        tag
    }
}

/// The one comparison: finishes every MAC and compares each with `tag` in constant time, all
/// of them whatever matched; verified by the first whose MAC equals `tag`.
#[inline]
fn first_match(
    macs: impl Iterator<Item = (usize, HmacSha256)>,
    tag: &Tag,
) -> Result<Verified, RejectionKind> {
    let mut matched = None;
    for (index, mac) in macs {
        if equal(&mac.finalize().into_bytes(), tag) {
            matched = matched.or(Some(index));
        }
    }
    matched
        .map(Verified::new)
        .ok_or(RejectionKind::InvalidSignature)
}

/// Whether `mac` equals `tag`, in constant time: the differences of the four 8-byte words
/// are ORed together, then compared with zero by `subtle` (the same guarantee as `subtle`'s
/// comparison of the 32 bytes, with one optimisation barrier instead of 33: about 100
/// instructions less per request).
#[inline]
fn equal(mac: &[u8], tag: &Tag) -> bool {
    let Ok(mac) = <&Tag>::try_from(mac) else {
        return false;
    };
    let (mac, _) = mac.as_chunks::<8>();
    let (tag, _) = tag.as_chunks::<8>();
    let difference = mac.iter().zip(tag).fold(0, |difference, (a, b)| {
        difference | (u64::from_ne_bytes(*a) ^ u64::from_ne_bytes(*b))
    });
    bool::from(difference.ct_eq(&0))
}

/// Checks Authgear signatures without tower: for actix-web, rocket, a queue consumer, a job
/// re-processing stored deliveries. [`VerifySignatureLayer`](crate::VerifySignatureLayer)
/// is built on it, so both apply the same rules.
///
/// `signature` is the raw value of the [`SIGNATURE_HEADER`] as a framework hands it over:
/// 64 hex characters in either case, surrounding whitespace ignored. Empty is
/// [`MissingSignature`](RejectionKind::MissingSignature), anything else that is not 64 hex
/// characters (a `sha256=` prefix, a wrong length) is
/// [`MalformedSignature`](RejectionKind::MalformedSignature), and a signature that matches
/// no accepted secret is [`InvalidSignature`](RejectionKind::InvalidSignature). The
/// comparison is in constant time, against every accepted secret. An empty secret matches
/// nothing: with an empty key anybody could sign.
///
/// ```
/// use authgear_webhook::{sign, RejectionKind, Verifier};
///
/// let verifier = Verifier::new("my-webhook-secret");
/// let body = br#"{"type":"user.created"}"#;
///
/// let signature = sign("my-webhook-secret", body);
/// assert!(verifier.verify(signature.as_bytes(), body).is_ok());
///
/// let forged = sign("not-the-secret", body);
/// assert_eq!(verifier.verify(forged.as_bytes(), body), Err(RejectionKind::InvalidSignature));
/// assert_eq!(verifier.verify(b"", body), Err(RejectionKind::MissingSignature));
/// assert_eq!(verifier.verify(b"sha256=00", body), Err(RejectionKind::MalformedSignature));
/// ```
///
/// Check the signature before parsing the body, and refuse bodies above a limit while
/// reading them (the layer's default is 1 MiB): see `examples/actix-web/src/main.rs`.
#[derive(Clone)]
pub struct Verifier {
    keys: Keys,
    /// How many secrets were given, empty ones included.
    secrets: usize,
}

impl Verifier {
    /// Accepts bodies signed with `secret`.
    ///
    /// ```
    /// use authgear_webhook::{Secret, Verifier};
    ///
    /// let verifier = Verifier::new("my-webhook-secret");
    /// let verifier = Verifier::new(Secret::from(b"raw bytes".to_vec()));
    /// ```
    pub fn new(secret: impl Into<Secret>) -> Self {
        let verifier = Self {
            keys: Keys::default(),
            secrets: 0,
        };
        verifier.also_accept(secret)
    }

    /// Also accepts bodies signed with `secret`: call it once per extra secret, e.g. to
    /// accept the old and the new secret while rotating.
    /// [`Verified::secret_index`] then says which one matched.
    ///
    /// ```
    /// use authgear_webhook::{sign, Verifier};
    ///
    /// let verifier = Verifier::new("new-secret").also_accept("old-secret");
    /// let verified = verifier.verify(sign("old-secret", b"{}").as_bytes(), b"{}").unwrap();
    /// assert_eq!(verified.secret_index(), 1);
    /// ```
    pub fn also_accept(mut self, secret: impl Into<Secret>) -> Self {
        self.accept(secret.into());
        self
    }

    /// Accepts `secrets`, in order; `None` if there are none, or only empty ones (a set
    /// that would match nothing).
    pub(crate) fn from_secrets(
        secrets: impl IntoIterator<Item = impl Into<Secret>>,
    ) -> Option<Self> {
        let mut secrets = secrets.into_iter();
        let verifier = Self::new(secrets.next()?);
        let verifier = secrets.fold(verifier, Self::also_accept);
        verifier.keys.first.is_some().then_some(verifier)
    }

    /// Adds a secret. An empty one is counted but matches nothing.
    pub(crate) fn accept(&mut self, secret: Secret) {
        if !secret.as_ref().is_empty() {
            self.keys.push(self.secrets, secret.as_ref());
        }
        self.secrets += 1;
    }

    /// Checks that `signature` (the header's raw value) is the signature of `body` under an
    /// accepted secret.
    ///
    /// ```
    /// use authgear_webhook::{sign, Verifier};
    ///
    /// let verifier = Verifier::new("my-webhook-secret");
    /// let upper = sign("my-webhook-secret", b"body").to_uppercase();
    /// assert_eq!(verifier.verify(upper.as_bytes(), b"body").unwrap().secret_index(), 0);
    /// ```
    #[inline]
    ///
    /// # Errors
    ///
    /// The refusal's kind: [`MissingSignature`](RejectionKind::MissingSignature),
    /// [`MalformedSignature`](RejectionKind::MalformedSignature) or
    /// [`InvalidSignature`](RejectionKind::InvalidSignature), each a 401.
    pub fn verify(&self, signature: &[u8], body: &[u8]) -> Result<Verified, RejectionKind> {
        let tag = parse_signature(signature)?;
        self.verify_tag(body, &tag)
    }

    /// Checks only the form of `signature` (the header's raw value), with the rules of
    /// [`verify`](Self::verify): to refuse a missing or malformed signature before reading
    /// the body, as the layer does.
    ///
    /// ```
    /// use authgear_webhook::{sign, RejectionKind, Verifier};
    ///
    /// assert_eq!(Verifier::check_format(sign("any", b"").as_bytes()), Ok(()));
    /// assert_eq!(Verifier::check_format(b" "), Err(RejectionKind::MissingSignature));
    /// assert_eq!(Verifier::check_format(b"abc"), Err(RejectionKind::MalformedSignature));
    /// ```
    ///
    /// # Errors
    ///
    /// [`MissingSignature`](RejectionKind::MissingSignature) for an empty or blank value,
    /// [`MalformedSignature`](RejectionKind::MalformedSignature) for anything but 64 hex
    /// characters.
    pub fn check_format(signature: &[u8]) -> Result<(), RejectionKind> {
        parse_signature(signature).map(drop)
    }

    /// [`verify`](Self::verify) with the signature already decoded.
    #[inline]
    pub(crate) fn verify_tag(&self, body: &[u8], tag: &Tag) -> Result<Verified, RejectionKind> {
        self.keys.verify(body, tag)
    }

    /// Starts checking a body that arrives in chunks: feed each chunk to
    /// [`Verification::update`], in order, then give the signature to
    /// [`Verification::finish`]. The body is hashed as it arrives, never kept.
    ///
    /// ```
    /// use authgear_webhook::{sign, Verifier};
    ///
    /// let verifier = Verifier::new("my-webhook-secret");
    /// let signature = sign("my-webhook-secret", b"hello world");
    ///
    /// let mut verification = verifier.start();
    /// for chunk in [&b"hello"[..], b" ", b"world"] {
    ///     verification.update(chunk);
    /// }
    /// assert!(verification.finish(signature.as_bytes()).is_ok());
    /// ```
    #[inline]
    pub fn start(&self) -> Verification {
        Verification {
            macs: self.keys.start(),
        }
    }

    /// The keyed MACs (the layer's collector hashes with them).
    #[inline]
    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

/// A body being checked chunk by chunk: see [`Verifier::start`].
///
/// ```
/// use authgear_webhook::{sign, RejectionKind, Verifier};
///
/// let verifier = Verifier::new("my-webhook-secret");
/// let mut verification = verifier.start();
/// verification.update(b"{}");
/// let signature = sign("my-webhook-secret", b"{ }");
/// assert_eq!(verification.finish(signature.as_bytes()), Err(RejectionKind::InvalidSignature));
/// ```
pub struct Verification {
    macs: Macs,
}

impl Verification {
    /// Feeds the next chunk of the body.
    #[inline]
    pub fn update(&mut self, chunk: &[u8]) {
        self.macs.update(chunk);
    }

    /// Checks `signature` (the header's raw value) against the body fed so far, with the
    /// same rules as [`Verifier::verify`].
    ///
    /// # Errors
    ///
    /// As [`Verifier::verify`]: the kind of a 401.
    pub fn finish(self, signature: &[u8]) -> Result<Verified, RejectionKind> {
        let tag = parse_signature(signature)?;
        self.finish_tag(&tag)
    }

    /// [`finish`](Self::finish) with the signature already decoded.
    #[inline]
    pub(crate) fn finish_tag(self, tag: &Tag) -> Result<Verified, RejectionKind> {
        self.macs.verify(tag)
    }
}

impl fmt::Debug for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verification").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const VECTOR: &str = "dc46983557fea127b43af721467eb9b3fde2338fe3e14f51952aa8478c13d355";

    #[test]
    fn equal_sees_every_bit_of_the_tag() {
        let tag: Tag = std::array::from_fn(|i| i as u8 * 7);
        assert!(equal(&tag, &tag));
        for byte in 0..TAG_LEN {
            for bit in 0..8 {
                let mut other = tag;
                other[byte] ^= 1 << bit;
                assert!(!equal(&other, &tag), "byte {byte} bit {bit}");
            }
        }
        assert!(!equal(&tag[..31], &tag));
    }

    #[test]
    fn authgear_vector() {
        assert_eq!(sign("secret", b"body"), VECTOR);
        assert_eq!(sign(b"secret", b"body"), VECTOR);
        assert_ne!(sign("secret", b"body "), VECTOR);
    }

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(
                SIGNATURE_HEADER,
                HeaderValue::from_bytes(value).expect("test header value"),
            );
        }
        map
    }

    #[test]
    fn parses_header() {
        let upper = VECTOR.to_uppercase();
        let padded = format!("  {VECTOR}\t");
        let prefixed = format!("sha256={VECTOR}");
        let short = &VECTOR[..63];
        let long = format!("{VECTOR}0");
        let non_hex = format!("{}g", &VECTOR[..63]);
        let expected = hex::decode(VECTOR).expect("vector is hex");

        use RejectionKind::*;
        type Case<'a> = (&'a [&'a [u8]], Result<(), RejectionKind>);
        let cases: &[Case<'_>] = &[
            (&[VECTOR.as_bytes()], Ok(())),
            (&[upper.as_bytes()], Ok(())),
            (&[padded.as_bytes()], Ok(())),
            (&[], Err(MissingSignature)),
            (&[b""], Err(MissingSignature)),
            (&[b"   "], Err(MissingSignature)),
            (&[prefixed.as_bytes()], Err(MalformedSignature)),
            (&[short.as_bytes()], Err(MalformedSignature)),
            (&[long.as_bytes()], Err(MalformedSignature)),
            (&[non_hex.as_bytes()], Err(MalformedSignature)),
            (&[&[0xff; 64]], Err(MalformedSignature)),
            (
                &[VECTOR.as_bytes(), VECTOR.as_bytes()],
                Err(MalformedSignature),
            ),
        ];
        for (values, want) in cases {
            let got = parse_header(&headers(values));
            match want {
                Ok(()) => assert_eq!(
                    got.as_ref().map(|t| &t[..]),
                    Ok(&expected[..]),
                    "{values:?}"
                ),
                Err(kind) => assert_eq!(got, Err(*kind), "{values:?}"),
            }
        }
    }

    #[test]
    fn decodes_as_the_hex_crate_does() {
        // Every byte value, in both halves of a pair, against the `hex` crate.
        for byte in 0..=255u8 {
            for at in [0, 1, 62, 63] {
                let mut digits =
                    *b"00112233445566778899aAbBcCdDeEfF00112233445566778899aAbBcCdDeEfF";
                digits[at] = byte;
                let mut want = [0; TAG_LEN];
                let want = hex::decode_to_slice(digits, &mut want).ok().map(|()| want);
                assert_eq!(decode_tag(&digits), want, "byte {byte:#04x} at {at}");
            }
        }
        assert_eq!(decode_tag(&[b'0'; 63]), None);
        assert_eq!(decode_tag(&[b'0'; 65]), None);
        assert_eq!(decode_tag(b""), None);
    }

    #[test]
    fn decodes_every_byte_and_refuses_every_non_digit() {
        // Every byte value, in both halves of a pair.
        for byte in 0..=255u8 {
            for at in [0, 1, 62, 63] {
                let mut digits =
                    *b"00112233445566778899aAbBcCdDeEfF00112233445566778899aAbBcCdDeEfF";
                digits[at] = byte;
                let got = parse_signature(&digits);
                match byte {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let value = (byte as char).to_digit(16).map(|v| v as u8);
                        let decoded = got.map(|tag| match at % 2 {
                            0 => tag[at / 2] >> 4,
                            _ => tag[at / 2] & 0xf,
                        });
                        assert_eq!(decoded.ok(), value, "byte {byte:#04x} at {at}");
                    }
                    // Whitespace at either end is trimmed: 63 digits are left.
                    _ => assert_eq!(got, Err(RejectionKind::MalformedSignature), "{byte:#04x}"),
                }
            }
        }
        assert_eq!(
            parse_signature(&[b'0'; 63]),
            Err(RejectionKind::MalformedSignature)
        );
        assert_eq!(
            parse_signature(&[b'0'; 65]),
            Err(RejectionKind::MalformedSignature)
        );
        assert_eq!(parse_signature(b""), Err(RejectionKind::MissingSignature));
        assert_eq!(
            parse_signature(b" \t"),
            Err(RejectionKind::MissingSignature)
        );
    }

    #[test]
    fn verifier_applies_the_header_rules_and_every_secret() {
        use RejectionKind::*;
        let upper = VECTOR.to_uppercase();
        let padded = format!(" {VECTOR}\t");
        let other = sign("other", b"body");
        let verifier = Verifier::new("secret");
        for (signature, want) in [
            (VECTOR.as_bytes(), Ok(0)),
            (upper.as_bytes(), Ok(0)),
            (padded.as_bytes(), Ok(0)),
            (other.as_bytes(), Err(InvalidSignature)),
            (b"", Err(MissingSignature)),
            (b"  ", Err(MissingSignature)),
            (&VECTOR.as_bytes()[1..], Err(MalformedSignature)),
            (b"sha256=dc46", Err(MalformedSignature)),
        ] {
            let want = want.map(Verified::new);
            assert_eq!(verifier.verify(signature, b"body"), want);
            let mut verification = verifier.start();
            verification.update(b"bo");
            verification.update(b"");
            verification.update(b"dy");
            assert_eq!(verification.finish(signature), want);
        }
        assert_eq!(
            verifier.verify(VECTOR.as_bytes(), b"body "),
            Err(InvalidSignature)
        );

        // Rotation: the index of the secret that matched; an empty secret matches nothing
        // but is counted.
        let verifier = Verifier::new("new").also_accept("").also_accept("secret");
        assert_eq!(
            verifier
                .verify(VECTOR.as_bytes(), b"body")
                .map(|v| v.secret_index()),
            Ok(2)
        );
        let empty = sign("", b"body");
        assert_eq!(
            verifier.verify(empty.as_bytes(), b"body"),
            Err(InvalidSignature)
        );
        let only_empty = Verifier::new("");
        assert_eq!(
            only_empty.verify(empty.as_bytes(), b"body"),
            Err(InvalidSignature)
        );
        assert!(!format!("{verifier:?} {:?}", verifier.start()).contains("secret\""));
    }

    #[test]
    fn keys_sign_as_sign_does() {
        for key in [&b""[..], b"secret", &[7; 200]] {
            let keys = Keys::one(key);
            assert_eq!(hex::encode(keys.tag(b"body")), sign(key, b"body"));
            let mut macs = keys.start();
            macs.update(b"bo");
            macs.update(b"dy");
            assert_eq!(hex::encode(macs.tag()), sign(key, b"body"));
        }
    }
}
