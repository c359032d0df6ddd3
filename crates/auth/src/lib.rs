//! auth_key "Type A" URL signing and verification.
//!
//! A signed live-streaming URL carries `?auth_key={timestamp}-{rand}-{uid}-{md5hash}`
//! where `md5hash = md5("{uri}-{timestamp}-{rand}-{uid}-{key}")` in lowercase
//! hex, `uri` is the URL's path (`/{app}/{stream}` for RTMP and WebRTC,
//! `/{app}/{stream}.flv`, `/{app}/{stream}.m3u8`) and the URL is valid until
//! `timestamp + validity`; a timestamp more than the validity plus
//! [`MAX_CLOCK_SKEW`] ahead of now is refused. This is the scheme cloud CDNs and live services
//! call "Type A"; the public test vector from their documentation is a unit
//! test here.
//!
//! ```
//! use std::time::Duration;
//! use rts_auth::{sign, verify, Keys};
//!
//! let key = sign("/live/demo", 1_700_000_000, "0", "0", "secret")?;
//! let keys = Keys::new("secret").with_secondary("next-secret");
//! let ok = verify("/live/demo", &key, &keys, Duration::from_secs(1440 * 60), 1_700_000_100)?;
//! assert_eq!(ok.expires_at, 1_700_000_000 + 1440 * 60);
//!
//! // A key signed for one stream does not open another; the error text is
//! // what a 403 body shows.
//! let err = verify("/live/other", &key, &keys, Duration::from_secs(60), 1_700_000_001).unwrap_err();
//! assert!(err.to_string().starts_with("invalid md5hash="));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`urls`] builds the ingest and play URLs of a stream the way a console's
//! URL generator does; `cargo run --example sign-url` prints them.
//!
//! # Errors and panics
//! Peer mistakes (a missing, malformed, wrong or expired auth_key) are
//! [`Error`], cheap and `Copy`, with a `Display` text meant for the person at
//! the other end. Caller mistakes (a `rand` containing `-`, an invalid stream
//! name) are [`SignError`]. Nothing in this crate panics on any input, and it
//! reads no clock: the caller passes `now`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used
    )
)]

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

pub mod urls;

/// The query parameter that carries the signature.
pub const PARAM: &str = "auth_key";

/// Validity of a signed URL when a domain does not configure one: 1440
/// minutes.
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(1440 * 60);

/// Why a peer's auth_key was refused. `Display` is the text of the 403 body
/// (or of the RTMP status description).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL has no `auth_key` parameter.
    #[error(
        "missing auth_key: this URL must be signed (add ?auth_key={{timestamp}}-{{rand}}-{{uid}}-{{md5hash}})"
    )]
    Missing,
    /// The auth_key does not have the `{timestamp}-{rand}-{uid}-{md5hash}`
    /// shape.
    #[error("malformed auth_key: {0}")]
    Malformed(#[from] Malformed),
    /// The hash matches neither the primary nor the secondary key for this
    /// uri.
    #[error("invalid md5hash={given}: the URL was signed for another path or with another key")]
    InvalidHash {
        /// The hash the URL carried.
        given: Md5Hex,
    },
    /// The URL's validity ended.
    #[error(
        "expired timestamp={timestamp}: the URL expired at {expired_at} (now {now}); sign a new one"
    )]
    Expired {
        /// The timestamp the URL carried.
        timestamp: u64,
        /// `timestamp + validity`: the last second it was valid.
        expired_at: u64,
        /// The time of the check.
        now: u64,
    },
    /// The timestamp is further in the future than the validity plus
    /// [`MAX_CLOCK_SKEW`]: such a URL would stay valid for longer than any
    /// signer meant; it is refused as invalid.
    #[error(
        "invalid timestamp={timestamp}: it is {ahead} s in the future (now {now}), more than the validity plus {skew} s of clock skew; sign with the current time",
        ahead = timestamp.saturating_sub(*now),
        skew = MAX_CLOCK_SKEW.as_secs()
    )]
    FromTheFuture {
        /// The timestamp the URL carried.
        timestamp: u64,
        /// The time of the check.
        now: u64,
    },
}

/// How far beyond the validity a timestamp may be in the future (a
/// signer's clock ahead of ours): 5 minutes.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// Which part of an auth_key is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// Not four `-`-separated parts.
    #[error("expected {{timestamp}}-{{rand}}-{{uid}}-{{md5hash}}, found {0} part(s)")]
    Parts(usize),
    /// The timestamp is not a decimal Unix time.
    #[error("timestamp is not a decimal Unix time in seconds")]
    Timestamp,
    /// The rand part is empty.
    #[error("rand is empty")]
    Rand,
    /// The uid part is empty.
    #[error("uid is empty")]
    Uid,
    /// The md5hash is not 32 hexadecimal digits.
    #[error("md5hash is not 32 hexadecimal digits")]
    Hash,
    /// The query string names `auth_key` more than once.
    #[error("auth_key is given more than once")]
    Duplicate,
}

/// A caller mistake when signing or building URLs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// `rand` is empty or contains `-` (the separator).
    #[error("rand must be non-empty and must not contain '-', got {0:?}")]
    Rand(String),
    /// `uid` is empty or contains `-`.
    #[error("uid must be non-empty and must not contain '-', got {0:?}")]
    Uid(String),
    /// The signing key is empty.
    #[error("the signing key is empty")]
    EmptyKey,
    /// The ingest and play URLs were to be signed with one key: then any
    /// viewer's play URL could publish (RTMP play and publish sign the
    /// same uri).
    #[error(
        "the ingest and play keys are the same: a play URL could publish; give the ingest domain its own key"
    )]
    SharedKey,
    /// A domain, app, stream or template id cannot be used in a URL.
    #[error("invalid {what} {value:?}: {why}")]
    Name {
        /// Which name: "app", "stream", "template id", "domain".
        what: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        why: &'static str,
    },
}

/// A 128-bit MD5 digest, shown as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Md5Hex(pub [u8; 16]);

impl fmt::Display for Md5Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Md5Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Md5Hex({self})")
    }
}

/// The primary key of a domain and, during a key rotation, the secondary
/// one. Both are accepted.
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    primary: String,
    secondary: Option<String>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys are secrets: never print them.
        f.debug_struct("Keys")
            .field("primary", &"<redacted>")
            .field("secondary", &self.secondary.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Keys {
    /// Only a primary key.
    pub fn new(primary: impl Into<String>) -> Self {
        Self {
            primary: primary.into(),
            secondary: None,
        }
    }

    /// Adds a secondary key (also accepted).
    pub fn with_secondary(mut self, secondary: impl Into<String>) -> Self {
        self.secondary = Some(secondary.into());
        self
    }

    /// The primary key (the one new URLs are signed with).
    pub fn primary(&self) -> &str {
        &self.primary
    }

    /// The secondary key, if any.
    pub fn secondary(&self) -> Option<&str> {
        self.secondary.as_deref()
    }
}

/// Which key verified a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUsed {
    /// The primary key.
    Primary,
    /// The secondary key.
    Secondary,
}

/// A successful verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Which key matched.
    pub key: KeyUsed,
    /// The last second (Unix time) at which the URL is valid. A session that
    /// started before it keeps running after it.
    pub expires_at: u64,
}

/// An auth_key split into its parts (borrowing the input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthKey<'a> {
    /// Unix time in seconds.
    pub timestamp: u64,
    /// The random part (often `0`).
    pub rand: &'a str,
    /// The user id part (often `0`).
    pub uid: &'a str,
    /// The hash the key carries.
    pub md5hash: Md5Hex,
}

impl<'a> AuthKey<'a> {
    /// Parses `{timestamp}-{rand}-{uid}-{md5hash}`; hex in either case.
    pub fn parse(text: &'a str) -> Result<Self, Malformed> {
        let mut parts = text.split('-');
        let (Some(ts), Some(rand), Some(uid), Some(hash), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(Malformed::Parts(text.split('-').count()));
        };
        // Leading zeros are refused: the hash covers the decimal text, and a
        // signer never writes them.
        let leading_zero = ts.len() > 1 && ts.starts_with('0');
        if ts.is_empty() || ts.len() > 20 || leading_zero || !ts.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(Malformed::Timestamp);
        }
        let timestamp = ts.parse::<u64>().map_err(|_| Malformed::Timestamp)?;
        if rand.is_empty() {
            return Err(Malformed::Rand);
        }
        if uid.is_empty() {
            return Err(Malformed::Uid);
        }
        Ok(Self {
            timestamp,
            rand,
            uid,
            md5hash: Md5Hex(parse_hex(hash).ok_or(Malformed::Hash)?),
        })
    }

    /// The hash this key must carry for `uri` signed with `key`.
    pub fn expected_hash(&self, uri: &str, key: &str) -> Md5Hex {
        digest(uri, self.timestamp, self.rand, self.uid, key)
    }
}

impl fmt::Display for AuthKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{}-{}",
            self.timestamp, self.rand, self.uid, self.md5hash
        )
    }
}

fn parse_hex(text: &str) -> Option<[u8; 16]> {
    let bytes = text.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *o = (nibble(*hi)? << 4) | nibble(*lo)?;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c.wrapping_sub(b'0')),
        b'a'..=b'f' => Some(c.wrapping_sub(b'a').wrapping_add(10)),
        b'A'..=b'F' => Some(c.wrapping_sub(b'A').wrapping_add(10)),
        _ => None,
    }
}

/// `md5("{uri}-{timestamp}-{rand}-{uid}-{key}")`, computed without allocating.
fn digest(uri: &str, timestamp: u64, rand: &str, uid: &str, key: &str) -> Md5Hex {
    let mut ts_buf = [0u8; 20];
    let ts = decimal(timestamp, &mut ts_buf);
    let mut h = Md5::new();
    for part in [
        uri.as_bytes(),
        b"-",
        ts,
        b"-",
        rand.as_bytes(),
        b"-",
        uid.as_bytes(),
        b"-",
        key.as_bytes(),
    ] {
        h.update(part);
    }
    Md5Hex(h.finalize().into())
}

fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        // invariant: a u64 has at most 20 decimal digits, so i stays in 1..=20.
        i = i.saturating_sub(1);
        if let Some(slot) = buf.get_mut(i) {
            *slot = b'0'.wrapping_add((n % 10) as u8);
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.get(i..).unwrap_or_default()
}

fn check_part(value: &str, make: fn(String) -> SignError) -> Result<(), SignError> {
    if value.is_empty() || value.contains('-') {
        return Err(make(value.to_owned()));
    }
    Ok(())
}

/// Signs `uri` and returns the auth_key value (`{timestamp}-{rand}-{uid}-{md5hash}`).
///
/// `rand` and `uid` must be non-empty and must not contain `-`.
pub fn sign(
    uri: &str,
    timestamp: u64,
    rand: &str,
    uid: &str,
    key: &str,
) -> Result<String, SignError> {
    check_part(rand, SignError::Rand)?;
    check_part(uid, SignError::Uid)?;
    if key.is_empty() {
        return Err(SignError::EmptyKey);
    }
    let hash = digest(uri, timestamp, rand, uid, key);
    Ok(AuthKey {
        timestamp,
        rand,
        uid,
        md5hash: hash,
    }
    .to_string())
}

/// Verifies an auth_key for `uri` at Unix time `now` (seconds).
///
/// Valid while `now <= timestamp + validity`, and refused as
/// [`Error::FromTheFuture`] when `timestamp > now + validity +`
/// [`MAX_CLOCK_SKEW`]; the hash may match either key; the comparison is
/// constant-time. The hash is checked before the time, so
/// that a forged key learns nothing about validity.
pub fn verify(
    uri: &str,
    auth_key: &str,
    keys: &Keys,
    validity: Duration,
    now: u64,
) -> Result<Verified, Error> {
    let parsed = AuthKey::parse(auth_key)?;
    let given = parsed.md5hash.0;
    let primary = parsed.expected_hash(uri, &keys.primary).0.ct_eq(&given);
    let secondary = keys
        .secondary
        .as_deref()
        .map_or(subtle::Choice::from(0), |k| {
            parsed.expected_hash(uri, k).0.ct_eq(&given)
        });
    let key = if bool::from(primary) {
        KeyUsed::Primary
    } else if bool::from(secondary) {
        KeyUsed::Secondary
    } else {
        return Err(Error::InvalidHash {
            given: parsed.md5hash,
        });
    };
    let latest = now
        .saturating_add(validity.as_secs())
        .saturating_add(MAX_CLOCK_SKEW.as_secs());
    if parsed.timestamp > latest {
        return Err(Error::FromTheFuture {
            timestamp: parsed.timestamp,
            now,
        });
    }
    let expires_at = parsed.timestamp.saturating_add(validity.as_secs());
    if now > expires_at {
        return Err(Error::Expired {
            timestamp: parsed.timestamp,
            expired_at: expires_at,
            now,
        });
    }
    Ok(Verified { key, expires_at })
}

/// Extracts the `auth_key` value from a query string (with or without the
/// leading `?`), among other parameters, percent-decoded.
///
/// `Ok(None)` when there is none; [`Malformed::Duplicate`] when there are
/// several (which one to trust would be ambiguous).
pub fn auth_key_from_query(query: &str) -> Result<Option<Cow<'_, str>>, Malformed> {
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut found = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if name == PARAM {
            if found.is_some() {
                return Err(Malformed::Duplicate);
            }
            found = Some(value);
        }
    }
    Ok(found)
}

/// [`auth_key_from_query`] then [`verify`]: the whole check of a request's
/// query string. A missing query or parameter is [`Error::Missing`].
pub fn verify_query(
    uri: &str,
    query: Option<&str>,
    keys: &Keys,
    validity: Duration,
    now: u64,
) -> Result<Verified, Error> {
    let key = auth_key_from_query(query.unwrap_or_default())?.ok_or(Error::Missing)?;
    verify(uri, &key, keys, validity, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = DEFAULT_VALIDITY;

    /// The public Type A vector (DESIGN.md, "URL signing").
    #[test]
    fn public_vector() {
        let key = sign(
            "/video/standard/1K.html",
            1444435200,
            "0",
            "0",
            "aliyuncdnexp1234",
        )
        .unwrap();
        assert_eq!(key, "1444435200-0-0-80cd3862d699b7118eed99103f2a3a4f");
        let v = verify(
            "/video/standard/1K.html",
            &key,
            &Keys::new("aliyuncdnexp1234"),
            DAY,
            1444435200,
        )
        .unwrap();
        assert_eq!(
            v,
            Verified {
                key: KeyUsed::Primary,
                expires_at: 1444435200 + 86400
            }
        );
    }

    #[test]
    fn secondary_key_accepted_and_reported() {
        let keys = Keys::new("old").with_secondary("new");
        let by_new = sign("/live/s", 100, "r", "u", "new").unwrap();
        assert_eq!(
            verify("/live/s", &by_new, &keys, DAY, 100).unwrap().key,
            KeyUsed::Secondary
        );
        let by_old = sign("/live/s", 100, "r", "u", "old").unwrap();
        assert_eq!(
            verify("/live/s", &by_old, &keys, DAY, 100).unwrap().key,
            KeyUsed::Primary
        );
        let by_other = sign("/live/s", 100, "r", "u", "other").unwrap();
        assert!(matches!(
            verify("/live/s", &by_other, &keys, DAY, 100),
            Err(Error::InvalidHash { .. })
        ));
        // Without a secondary, the "new" key is refused.
        assert!(verify("/live/s", &by_new, &Keys::new("old"), DAY, 100).is_err());
    }

    #[test]
    fn expiry_boundary() {
        let validity = Duration::from_secs(600);
        let key = sign("/a/b", 1000, "0", "0", "k").unwrap();
        let keys = Keys::new("k");
        assert!(
            verify("/a/b", &key, &keys, validity, 1600).is_ok(),
            "last valid second"
        );
        let err = verify("/a/b", &key, &keys, validity, 1601).unwrap_err();
        assert_eq!(
            err,
            Error::Expired {
                timestamp: 1000,
                expired_at: 1600,
                now: 1601
            }
        );
        assert!(
            err.to_string().starts_with("expired timestamp=1000"),
            "{err}"
        );
        // Signed in the future (clock skew at the signer): valid until its
        // own expiry, up to validity + 5 min ahead of now.
        assert!(verify("/a/b", &key, &keys, validity, 500).is_ok());
        assert!(verify("/a/b", &key, &keys, validity, 1000 - 900).is_ok());
        let err = verify("/a/b", &key, &keys, validity, 1000 - 901).unwrap_err();
        assert_eq!(
            err,
            Error::FromTheFuture {
                timestamp: 1000,
                now: 99
            }
        );
        assert!(err.to_string().contains("901 s in the future"), "{err}");
        // A timestamp years ahead never becomes a URL that never expires.
        let far = sign("/a/b", u64::MAX, "0", "0", "k").unwrap();
        assert!(matches!(
            verify("/a/b", &far, &keys, validity, 1000),
            Err(Error::FromTheFuture { .. })
        ));
        // Overflowing bounds saturate instead of wrapping.
        assert!(verify("/a/b", &far, &keys, validity, u64::MAX).is_ok());
    }

    #[test]
    fn wrong_uri_is_invalid_hash_with_given_text() {
        let key = sign("/live/one", 5, "0", "0", "k").unwrap();
        let err = verify("/live/two", &key, &Keys::new("k"), DAY, 5).unwrap_err();
        let given = key.rsplit('-').next().unwrap();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid md5hash={given}: the URL was signed for another path or with another key"
            )
        );
        // The .flv uri is distinct from the RTMP one.
        assert!(verify("/live/one.flv", &key, &Keys::new("k"), DAY, 5).is_err());
    }

    #[test]
    fn hex_in_either_case() {
        let key = sign("/x/y", 7, "abc", "42", "k").unwrap();
        let upper = {
            let (head, hash) = key.rsplit_once('-').unwrap();
            format!("{head}-{}", hash.to_ascii_uppercase())
        };
        assert!(verify("/x/y", &upper, &Keys::new("k"), DAY, 7).is_ok());
    }

    #[test]
    fn malformed_shapes() {
        let cases: &[(&str, Malformed)] = &[
            ("", Malformed::Parts(1)),
            ("1-2-3", Malformed::Parts(3)),
            ("1-2-3-4-5", Malformed::Parts(5)),
            (
                "x-0-0-80cd3862d699b7118eed99103f2a3a4f",
                Malformed::Timestamp,
            ),
            (
                "+1-0-0-80cd3862d699b7118eed99103f2a3a4f",
                Malformed::Timestamp,
            ),
            (
                "99999999999999999999-0-0-80cd3862d699b7118eed99103f2a3a4f",
                Malformed::Timestamp,
            ),
            ("1--0-80cd3862d699b7118eed99103f2a3a4f", Malformed::Rand),
            ("1-0--80cd3862d699b7118eed99103f2a3a4f", Malformed::Uid),
            ("1-0-0-80cd3862d699b7118eed99103f2a3a4", Malformed::Hash),
            ("1-0-0-80cd3862d699b7118eed99103f2a3a4f0", Malformed::Hash),
            ("1-0-0-80cd3862d699b7118eed99103f2a3a4g", Malformed::Hash),
            ("1-0-0-80cd3862d699b7118eed99103f2a3aé", Malformed::Hash),
        ];
        for (text, want) in cases {
            assert_eq!(AuthKey::parse(text), Err(*want), "{text:?}");
            let err = verify("/a/b", text, &Keys::new("k"), DAY, 0).unwrap_err();
            assert_eq!(err, Error::Malformed(*want));
            assert!(err.to_string().starts_with("malformed auth_key: "), "{err}");
        }
        assert_eq!(
            Malformed::Parts(3).to_string(),
            "expected {timestamp}-{rand}-{uid}-{md5hash}, found 3 part(s)"
        );
    }

    #[test]
    fn sign_rejects_bad_parts() {
        assert_eq!(
            sign("/a", 1, "a-b", "0", "k"),
            Err(SignError::Rand("a-b".into()))
        );
        assert_eq!(
            sign("/a", 1, "", "0", "k"),
            Err(SignError::Rand(String::new()))
        );
        assert_eq!(
            sign("/a", 1, "0", "-", "k"),
            Err(SignError::Uid("-".into()))
        );
        assert_eq!(sign("/a", 1, "0", "0", ""), Err(SignError::EmptyKey));
    }

    #[test]
    fn query_extraction() {
        let key = "1444435200-0-0-80cd3862d699b7118eed99103f2a3a4f";
        assert_eq!(
            auth_key_from_query(&format!("auth_key={key}"))
                .unwrap()
                .as_deref(),
            Some(key)
        );
        assert_eq!(
            auth_key_from_query(&format!("?vhost=a.b&auth_key={key}&x=1"))
                .unwrap()
                .as_deref(),
            Some(key)
        );
        // Percent-encoded separators decode.
        let encoded = key.replace('-', "%2D");
        assert_eq!(
            auth_key_from_query(&format!("a=1&auth%5Fkey={encoded}"))
                .unwrap()
                .as_deref(),
            Some(key)
        );
        assert_eq!(auth_key_from_query("vhost=x&auth=1").unwrap(), None);
        assert_eq!(auth_key_from_query("").unwrap(), None);
        assert_eq!(
            auth_key_from_query("auth_key=1&auth_key=2"),
            Err(Malformed::Duplicate)
        );
        let keys = Keys::new("aliyuncdnexp1234");
        let uri = "/video/standard/1K.html";
        assert_eq!(verify_query(uri, None, &keys, DAY, 0), Err(Error::Missing));
        assert_eq!(
            verify_query(uri, Some("vhost=x"), &keys, DAY, 0),
            Err(Error::Missing)
        );
        assert!(
            verify_query(
                uri,
                Some(&format!("vhost=x&auth_key={encoded}")),
                &keys,
                DAY,
                1444435200
            )
            .is_ok()
        );
    }

    #[test]
    fn keys_are_not_printed() {
        let text = format!("{:?}", Keys::new("hunter2").with_secondary("swordfish"));
        assert!(
            !text.contains("hunter2") && !text.contains("swordfish"),
            "{text}"
        );
    }

    #[test]
    fn decimal_formats_extremes() {
        let mut buf = [0u8; 20];
        assert_eq!(decimal(0, &mut buf), b"0");
        assert_eq!(decimal(u64::MAX, &mut buf), u64::MAX.to_string().as_bytes());
    }

    proptest::proptest! {
        #[test]
        fn round_trip(uri in "/[a-z0-9/._]{0,40}", ts in proptest::prelude::any::<u64>(),
                      rand in "[A-Za-z0-9]{1,32}", uid in "[0-9]{1,8}", key in ".{1,40}") {
            let signed = sign(&uri, ts, &rand, &uid, &key).unwrap();
            let parsed = AuthKey::parse(&signed).unwrap();
            proptest::prop_assert_eq!(parsed.to_string(), signed.clone());
            proptest::prop_assert!(verify(&uri, &signed, &Keys::new(key.clone()), Duration::ZERO, ts).is_ok());
            let other = format!("{}x", uri);
            proptest::prop_assert!(verify(&other, &signed, &Keys::new(key), Duration::ZERO, ts).is_err());
        }
    }
}
