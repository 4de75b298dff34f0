//! Session and socket ids.
//!
//! Ids are 20 URL-safe base64 characters made from 15 random bytes, the
//! shape of the reference server's ids (the Redis adapter's sharded mode
//! tells socket ids from room names by that length). They come from a
//! ChaCha20 generator seeded from the operating system, or from a fixed seed
//! in tests.

use engineio_packet::Str;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// A source of unguessable ids.
#[derive(Debug, Clone)]
pub struct IdGenerator {
    rng: ChaCha20Rng,
}

impl IdGenerator {
    /// A generator seeded from the operating system's random source.
    ///
    /// # Errors
    ///
    /// When the operating system gives no randomness.
    pub fn from_os() -> Result<IdGenerator, getrandom::Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)?;
        Ok(IdGenerator::from_seed(seed))
    }

    /// A generator with a fixed seed: the same seed gives the same ids.
    pub fn from_seed(seed: [u8; 32]) -> IdGenerator {
        IdGenerator {
            rng: ChaCha20Rng::from_seed(seed),
        }
    }

    /// A new id.
    pub fn next_id(&mut self) -> Str {
        let mut raw = [0u8; ID_BYTES];
        self.rng.fill_bytes(&mut raw);
        encode_id(&raw)
    }

    /// A seed for a child generator (one per connection).
    pub fn fork(&mut self) -> IdGenerator {
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        IdGenerator::from_seed(seed)
    }

    /// The ids of one connection: its first id drawn here, the others
    /// made from a key drawn here.
    pub(crate) fn fork_stream(&mut self) -> IdStream {
        let mut key = [0u8; 16];
        self.rng.fill_bytes(&mut key);
        let mut first = [0u8; ID_BYTES];
        self.rng.fill_bytes(&mut first);
        IdStream {
            key,
            first: Some(first),
            next: 0,
        }
    }
}

/// The random bytes of an id.
const ID_BYTES: usize = 15;

/// The ids of one connection, in 36 bytes rather than a whole generator (a
/// ChaCha20 state and its block buffer, about 320).
///
/// The first id's bytes come from the endpoint's generator with the
/// connection (most connections draw one id: their one socket's). Id `n`
/// after it is the start of the ChaCha20 stream `n` of the key, so ids stay
/// unguessable and distinct; drawing one builds a generator on the stack.
/// The key is 128 bits, used twice as ChaCha20's 256 (as strong as the
/// ids' own 120 random bits).
#[derive(Debug, Clone)]
pub(crate) struct IdStream {
    key: [u8; 16],
    first: Option<[u8; ID_BYTES]>,
    next: u32,
}

impl IdStream {
    /// A new id.
    pub(crate) fn next_id(&mut self) -> Str {
        if let Some(first) = self.first.take() {
            return encode_id(&first);
        }
        let mut seed = [0u8; 32];
        seed[..16].copy_from_slice(&self.key);
        seed[16..].copy_from_slice(&self.key);
        let mut rng = ChaCha20Rng::from_seed(seed);
        rng.set_stream(u64::from(self.next));
        self.next = self.next.wrapping_add(1);
        IdGenerator { rng }.next_id()
    }
}

/// The URL-safe base64 alphabet (RFC 4648, section 5).
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `raw` in URL-safe base64: 15 bytes make 20 characters, with no padding.
fn encode_id(raw: &[u8; ID_BYTES]) -> Str {
    let mut out = [0u8; ID_BYTES / 3 * 4];
    for (group, chars) in raw.chunks_exact(3).zip(out.chunks_exact_mut(4)) {
        let n = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
        for (i, c) in chars.iter_mut().enumerate() {
            *c = URL_SAFE[(n >> (18 - 6 * i) & 63) as usize];
        }
    }
    // Owned as it is: the first clone of bytes made from a `Vec` allocates
    // their count of owners, and an id is cloned into several indexes.
    // Every byte of the alphabet is ASCII.
    Str::from_utf8(bytes::Bytes::from_owner(out)).unwrap_or_default()
}

/// Whether `id` is made of URL-safe characters only (`A-Z`, `a-z`, `0-9`,
/// `-`, `_`): what travels unescaped in a query, a cookie and JSON.
pub(crate) fn url_safe(id: &str) -> bool {
    id.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The longest session id the application may give
/// ([`Endpoint::handle_request_with_id`](crate::Endpoint::handle_request_with_id)).
pub const MAX_SESSION_ID_LEN: usize = 64;

/// Why a session id the application gave cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionIdError {
    /// The id is empty.
    #[error("the session id is empty")]
    Empty,
    /// The id is longer than [`MAX_SESSION_ID_LEN`] bytes.
    #[error("the session id is {0} bytes long, more than {MAX_SESSION_ID_LEN}")]
    TooLong(usize),
    /// The id has a character outside the URL-safe set (`A-Z`, `a-z`,
    /// `0-9`, `-`, `_`).
    #[error("the session id has a character outside A-Z, a-z, 0-9, '-' and '_'")]
    InvalidCharacter,
    /// A live session has that id.
    #[error("a live session has that id")]
    InUse,
}

/// Checks that `sid` is 1 to [`MAX_SESSION_ID_LEN`] URL-safe characters
/// (the shape of what travels unescaped in a query string and a cookie).
///
/// # Errors
///
/// What is wrong with it.
pub fn check_session_id(sid: &str) -> Result<(), SessionIdError> {
    if sid.is_empty() {
        return Err(SessionIdError::Empty);
    }
    if sid.len() > MAX_SESSION_ID_LEN {
        return Err(SessionIdError::TooLong(sid.len()));
    }
    if !url_safe(sid) {
        return Err(SessionIdError::InvalidCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_reference_shape_and_do_not_repeat() {
        let mut g = IdGenerator::from_seed([7; 32]);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = g.next_id();
            assert_eq!(id.len(), 20);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn a_connection_stream_gives_distinct_ids_of_the_same_shape() {
        let mut g = IdGenerator::from_seed([3; 32]);
        let mut a = g.fork_stream();
        let mut b = g.fork_stream();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            for id in [a.next_id(), b.next_id()] {
                assert_eq!(id.len(), 20);
                assert!(seen.insert(id));
            }
        }
        let mut again = IdGenerator::from_seed([3; 32]).fork_stream();
        let first = again.next_id();
        assert!(seen.contains(&first));
        assert_ne!(first, again.next_id());
    }

    #[test]
    fn session_ids_given_by_the_application_are_checked() {
        assert_eq!(check_session_id("abc-DEF_123"), Ok(()));
        assert_eq!(check_session_id(&"a".repeat(64)), Ok(()));
        assert_eq!(check_session_id(""), Err(SessionIdError::Empty));
        assert_eq!(
            check_session_id(&"a".repeat(65)),
            Err(SessionIdError::TooLong(65))
        );
        for bad in ["a b", "a&b", "a=b", "a/b", "a+b", "é", "a;b", "a%20"] {
            assert_eq!(
                check_session_id(bad),
                Err(SessionIdError::InvalidCharacter),
                "{bad}"
            );
        }
    }

    #[test]
    fn ids_are_their_bytes_in_url_safe_base64() {
        use base64::Engine as _;
        let mut g = IdGenerator::from_seed([9; 32]);
        let mut raw = [0u8; ID_BYTES];
        for _ in 0..1000 {
            g.rng.fill_bytes(&mut raw);
            assert_eq!(
                encode_id(&raw).as_str(),
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
            );
        }
        assert_eq!(encode_id(&[0; ID_BYTES]).as_str(), "AAAAAAAAAAAAAAAAAAAA");
        assert_eq!(
            encode_id(&[0xff; ID_BYTES]).as_str(),
            "____________________"
        );
    }

    #[test]
    fn a_connection_stream_draws_its_first_id_with_it_and_the_others_from_its_key() {
        let mut g = IdGenerator::from_seed([4; 32]);
        let mut a = g.fork_stream();
        let mut b = a.clone();
        // The same stream gives the same ids, the first as the others.
        let ids: Vec<Str> = (0..4).map(|_| a.next_id()).collect();
        assert_eq!(ids, (0..4).map(|_| b.next_id()).collect::<Vec<_>>());
        // A stream with the same key and another first id differs in its
        // first only.
        let mut c = IdStream {
            first: Some([1; ID_BYTES]),
            ..g.fork_stream()
        };
        c.key = a.key;
        assert_ne!(c.next_id(), ids[0]);
        assert_eq!(c.next_id(), ids[1]);
    }

    #[test]
    fn a_seed_fixes_the_sequence() {
        let mut a = IdGenerator::from_seed([1; 32]);
        let mut b = IdGenerator::from_seed([1; 32]);
        let mut c = IdGenerator::from_seed([2; 32]);
        let x = a.next_id();
        assert_eq!(x, b.next_id());
        assert_ne!(x, c.next_id());
    }
}
