//! A one-pass JSON validator.
//!
//! It checks the grammar of RFC 8259 (what `JSON.parse` accepts), finds the bounds of the
//! top-level value and of the first element of a top-level array (the event name), and, for binary
//! packets, checks every placeholder's `num` against the attachment count, all without allocating
//! and without recursion: nesting is tracked in a fixed array of [`MAX_DEPTH`] levels.

/// The deepest nesting accepted, the same as serde_json's default recursion limit,
/// so that whatever passes here also deserializes with serde_json.
pub(crate) const MAX_DEPTH: usize = 127;

/// The JSON type of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

/// The first element of a top-level array.
#[derive(Debug, Clone, Copy)]
pub(crate) struct First {
    pub(crate) kind: Kind,
    /// Start of the element; for a string, just after the opening quote.
    pub(crate) start: usize,
    /// End of the element; for a string, the closing quote.
    pub(crate) end: usize,
    /// Whether a string element holds escapes.
    pub(crate) escaped: bool,
}

/// What a successful scan found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scanned {
    pub(crate) kind: Kind,
    /// Bounds of the top-level value, surrounding whitespace excluded.
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) first: Option<First>,
}

/// Why a scan failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanError {
    /// Bad syntax (or nesting too deep) at this offset.
    Syntax(usize),
    /// A placeholder's `num` is not an attachment index.
    BadPlaceholder,
}

/// What the key before the current value was, for placeholder tracking.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Other,
    Placeholder,
    Num,
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// A mask with the high bit set in each of the 8 bytes that is a quote, a backslash or a control
/// character. Bits above the first such byte may be set wrongly (borrows), so only the lowest set
/// bit is meaningful.
#[inline(always)]
pub(crate) fn special_mask(w: u64) -> u64 {
    let quote = w ^ (LO * u64::from(b'"'));
    let backslash = w ^ (LO * u64::from(b'\\'));
    let zero_q = quote.wrapping_sub(LO) & !quote;
    let zero_b = backslash.wrapping_sub(LO) & !backslash;
    let control = w.wrapping_sub(LO * 0x20);
    (zero_q | zero_b | control) & !w & HI
}

#[inline(always)]
pub(crate) fn is_special(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20
}

/// Skips JSON whitespace.
#[inline(always)]
fn ws(b: &[u8], i: &mut usize) {
    while let Some(&c) = b.get(*i) {
        if c > b' ' || !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            break;
        }
        *i += 1;
    }
}

/// A string, with `*i` on its opening quote. Leaves `*i` after the closing quote and returns
/// whether the string holds escapes.
#[inline(always)]
fn string(b: &[u8], i: &mut usize) -> Result<bool, ScanError> {
    let mut j = *i + 1;
    let mut escaped = false;
    loop {
        // Skip to the next quote, backslash or control character, 8 bytes at a time.
        loop {
            match b.get(j..j + 8).map(<[u8; 8]>::try_from) {
                Some(Ok(chunk)) => {
                    let mask = special_mask(u64::from_le_bytes(chunk));
                    if mask != 0 {
                        j += (mask.trailing_zeros() / 8) as usize;
                        break;
                    }
                    j += 8;
                }
                _ => {
                    while b.get(j).is_some_and(|&c| !is_special(c)) {
                        j += 1;
                    }
                    break;
                }
            }
        }
        match b.get(j) {
            Some(b'"') => {
                *i = j + 1;
                return Ok(escaped);
            }
            Some(b'\\') => {
                escaped = true;
                match b.get(j + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => j += 2,
                    Some(b'u')
                        if b.get(j + 2..j + 6)
                            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                    {
                        j += 6;
                    }
                    _ => return Err(ScanError::Syntax(j)),
                }
            }
            // The end, or a control character.
            _ => return Err(ScanError::Syntax(j)),
        }
    }
}

/// Skips ASCII digits, 8 bytes at a time; returns how many.
#[inline(always)]
fn digits(b: &[u8], i: &mut usize) -> usize {
    let start = *i;
    while let Some(chunk) = b.get(*i..).and_then(<[u8]>::first_chunk::<8>) {
        let mask = non_digit_mask(u64::from_le_bytes(*chunk));
        if mask != 0 {
            *i += (mask.trailing_zeros() / 8) as usize;
            return *i - start;
        }
        *i += 8;
    }
    while b.get(*i).is_some_and(u8::is_ascii_digit) {
        *i += 1;
    }
    *i - start
}

/// A mask with the high bit set in each of the 8 bytes that is not an ASCII digit. As in
/// [`special_mask`], only the lowest set bit is meaningful: below the first non-digit no byte
/// borrows or carries into the next.
#[inline(always)]
fn non_digit_mask(w: u64) -> u64 {
    // Below `0`: the subtraction sets the high bit; above `9` (or not ASCII): the addition or
    // the subtraction does.
    (w.wrapping_sub(LO * u64::from(b'0')) | w.wrapping_add(LO * (0x80 - 1 - u64::from(b'9')))) & HI
}

/// A number, with `*i` on its first character. Returns whether it is a plain non-negative
/// integer (digits only).
#[inline(always)]
fn number(b: &[u8], i: &mut usize) -> Result<bool, ScanError> {
    let mut plain = true;
    if b.get(*i) == Some(&b'-') {
        *i += 1;
        plain = false;
    }
    match b.get(*i) {
        Some(b'0') => *i += 1,
        Some(b'1'..=b'9') => {
            digits(b, i);
        }
        _ => return Err(ScanError::Syntax(*i)),
    }
    if b.get(*i) == Some(&b'.') {
        *i += 1;
        plain = false;
        if digits(b, i) == 0 {
            return Err(ScanError::Syntax(*i));
        }
    }
    if matches!(b.get(*i), Some(b'e' | b'E')) {
        *i += 1;
        plain = false;
        if matches!(b.get(*i), Some(b'+' | b'-')) {
            *i += 1;
        }
        if digits(b, i) == 0 {
            return Err(ScanError::Syntax(*i));
        }
    }
    Ok(plain)
}

#[inline(always)]
fn literal(b: &[u8], i: &mut usize, lit: &[u8]) -> Result<(), ScanError> {
    if b.get(*i..*i + lit.len()) == Some(lit) {
        *i += lit.len();
        Ok(())
    } else {
        Err(ScanError::Syntax(*i))
    }
}

/// An object key and its colon, with `*i` on the key's opening quote; leaves `*i` on the value.
#[inline(always)]
fn read_key<const TRACK: bool>(b: &[u8], i: &mut usize) -> Result<Key, ScanError> {
    if b.get(*i) != Some(&b'"') {
        return Err(ScanError::Syntax(*i));
    }
    let start = *i;
    let escaped = string(b, i)?;
    let end = *i;
    ws(b, i);
    if b.get(*i) != Some(&b':') {
        return Err(ScanError::Syntax(*i));
    }
    *i += 1;
    ws(b, i);
    if !TRACK {
        return Ok(Key::Other);
    }
    Ok(if escaped {
        classify_escaped(&b[start..end])
    } else {
        classify(&b[start + 1..end - 1])
    })
}

fn classify(key: &[u8]) -> Key {
    match key {
        b"_placeholder" => Key::Placeholder,
        b"num" => Key::Num,
        _ => Key::Other,
    }
}

/// Classifies a key written with escapes (rare): unescapes it first.
#[cold]
fn classify_escaped(quoted: &[u8]) -> Key {
    match serde_json::from_slice::<String>(quoted) {
        Ok(key) => classify(key.as_bytes()),
        Err(_) => Key::Other,
    }
}

/// Whether the number text is an index below `count`, the way the reference reads
/// `num`: any JSON number whose value is an integer in range.
fn is_index(text: &[u8], plain: bool, count: u64) -> bool {
    if plain {
        let mut n: u64 = 0;
        for &c in text {
            n = match n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(c - b'0')))
            {
                Some(n) => n,
                None => return false,
            };
        }
        return n < count;
    }
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    match text.parse::<f64>() {
        // `-0` is an index too, as in JavaScript.
        Ok(v) => v >= 0.0 && v.fract() == 0.0 && v < count as f64,
        Err(_) => false,
    }
}

/// A scalar value at `*i`: its kind, whether it holds escapes (strings) and whether it is a plain
/// integer (numbers).
#[inline(always)]
fn scalar(b: &[u8], i: &mut usize, c: u8) -> Result<(Kind, bool, bool), ScanError> {
    Ok(match c {
        b'"' => (Kind::String, string(b, i)?, false),
        b'-' | b'0'..=b'9' => (Kind::Number, false, number(b, i)?),
        b't' => {
            literal(b, i, b"true")?;
            (Kind::Bool, false, false)
        }
        b'f' => {
            literal(b, i, b"false")?;
            (Kind::Bool, false, false)
        }
        b'n' => {
            literal(b, i, b"null")?;
            (Kind::Null, false, false)
        }
        _ => return Err(ScanError::Syntax(*i)),
    })
}

/// Validates `b` as one JSON value surrounded by optional whitespace.
///
/// With `placeholders: Some(count)`, every object whose `_placeholder` is `true` must have a
/// `num` that is an index below `count`.
pub(crate) fn scan(b: &[u8], placeholders: Option<u64>) -> Result<Scanned, ScanError> {
    match placeholders {
        None => scan_impl::<false>(b, 0),
        Some(count) => scan_impl::<true>(b, count),
    }
}

fn scan_impl<const TRACK: bool>(b: &[u8], count: u64) -> Result<Scanned, ScanError> {
    let mut i = 0usize;
    ws(b, &mut i);
    let start = i;
    let kind = match b.get(i) {
        Some(b'{') => Kind::Object,
        Some(b'[') => Kind::Array,
        Some(b'"') => Kind::String,
        Some(b'-' | b'0'..=b'9') => Kind::Number,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'n') => Kind::Null,
        _ => return Err(ScanError::Syntax(i)),
    };

    // Open containers: one bit each, innermost in bit 0.
    let mut objects: u128 = 0;
    // For objects: `_placeholder` was last given `true`; `num` was last given a valid index.
    let mut ph_true: u128 = 0;
    let mut num_valid: u128 = 0;
    let mut depth = 0usize;
    let mut key = Key::Other;
    let mut first = None;

    // The first element of a top-level array, read here so that the loop does not look for it.
    let mut pending_value = true;
    if kind == Kind::Array {
        i += 1;
        depth = 1;
        ws(b, &mut i);
        match b.get(i) {
            Some(b']') => {
                i += 1;
                depth = 0;
                pending_value = false;
            }
            Some(&c @ (b'"' | b'-' | b'0'..=b'9')) => {
                let vstart = i;
                let (k, escaped, _) = scalar(b, &mut i, c)?;
                first = Some(if k == Kind::String {
                    First {
                        kind: k,
                        start: vstart + 1,
                        end: i - 1,
                        escaped,
                    }
                } else {
                    First {
                        kind: k,
                        start: vstart,
                        end: i,
                        escaped: false,
                    }
                });
                pending_value = false;
            }
            Some(&c) => {
                let k = match c {
                    b'{' => Kind::Object,
                    b'[' => Kind::Array,
                    b't' | b'f' => Kind::Bool,
                    _ => Kind::Null,
                };
                first = Some(First {
                    kind: k,
                    start: i,
                    end: i,
                    escaped: false,
                });
            }
            None => return Err(ScanError::Syntax(i)),
        }
    }

    'value: loop {
        if pending_value {
            // A value starts at `i`.
            let this_key = if TRACK {
                std::mem::replace(&mut key, Key::Other)
            } else {
                Key::Other
            };
            let Some(&c) = b.get(i) else {
                return Err(ScanError::Syntax(i));
            };
            match c {
                b'{' | b'[' => {
                    if TRACK && this_key != Key::Other && depth > 0 {
                        // A container is neither `true` nor a number.
                        if this_key == Key::Placeholder {
                            ph_true &= !1;
                        } else {
                            num_valid &= !1;
                        }
                    }
                    if depth == MAX_DEPTH {
                        return Err(ScanError::Syntax(i));
                    }
                    depth += 1;
                    objects = (objects << 1) | u128::from(c == b'{');
                    if TRACK {
                        ph_true <<= 1;
                        num_valid <<= 1;
                    }
                    i += 1;
                    ws(b, &mut i);
                    if c == b'{' {
                        if b.get(i) == Some(&b'}') {
                            i += 1;
                        } else {
                            key = read_key::<TRACK>(b, &mut i)?;
                            continue 'value;
                        }
                    } else if b.get(i) == Some(&b']') {
                        i += 1;
                    } else {
                        continue 'value;
                    }
                    depth -= 1;
                    objects >>= 1;
                    if TRACK {
                        ph_true >>= 1;
                        num_valid >>= 1;
                    }
                }
                _ => {
                    let vstart = i;
                    let (vkind, _, plain) = scalar(b, &mut i, c)?;
                    if TRACK && this_key != Key::Other && depth > 0 {
                        if this_key == Key::Placeholder {
                            if c == b't' {
                                ph_true |= 1;
                            } else {
                                ph_true &= !1;
                            }
                        } else if vkind == Kind::Number && is_index(&b[vstart..i], plain, count) {
                            num_valid |= 1;
                        } else {
                            num_valid &= !1;
                        }
                    }
                }
            }
        }
        pending_value = true;

        // After a complete value: a separator, a closing bracket, or the end.
        loop {
            if depth == 0 {
                break 'value;
            }
            ws(b, &mut i);
            let is_object = objects & 1 != 0;
            match b.get(i) {
                Some(b',') => {
                    i += 1;
                    ws(b, &mut i);
                    if is_object {
                        key = read_key::<TRACK>(b, &mut i)?;
                    }
                    continue 'value;
                }
                Some(b']') if !is_object => {}
                Some(b'}') if is_object => {
                    if TRACK && ph_true & 1 != 0 && num_valid & 1 == 0 {
                        return Err(ScanError::BadPlaceholder);
                    }
                }
                _ => return Err(ScanError::Syntax(i)),
            }
            i += 1;
            depth -= 1;
            objects >>= 1;
            if TRACK {
                ph_true >>= 1;
                num_valid >>= 1;
            }
        }
    }

    let end = i;
    ws(b, &mut i);
    if i != b.len() {
        return Err(ScanError::Syntax(i));
    }
    Ok(Scanned {
        kind,
        start,
        end,
        first,
    })
}

/// The decoding error that a scanning error means.
pub(crate) fn scan_error(e: ScanError) -> crate::error::DecodeError {
    use crate::error::DecodeError;
    match e {
        ScanError::Syntax(offset) => DecodeError::InvalidJson { offset },
        ScanError::BadPlaceholder => DecodeError::BadPlaceholder,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> bool {
        scan(s.as_bytes(), None).is_ok()
    }

    #[test]
    fn digits_are_counted_as_one_at_a_time() {
        // Every byte value, at every place of a run of digits longer and
        // shorter than a word.
        for len in 0..20 {
            for at in 0..=len {
                for v in 0..=u8::MAX {
                    let mut b = vec![b'7'; len];
                    if at < len {
                        b[at] = v;
                    }
                    b.push(b'x');
                    let want = b.iter().take_while(|c| c.is_ascii_digit()).count();
                    let mut i = 0;
                    assert_eq!(digits(&b, &mut i), want, "{b:?}");
                    assert_eq!(i, want);
                }
            }
        }
    }

    #[test]
    fn agrees_with_serde_json() {
        let cases = [
            "[]",
            "{}",
            " [ 1 , 2 ] ",
            "\"a\"",
            "0",
            "-0",
            "1.5e-3",
            "1E+2",
            "true",
            "false",
            "null",
            "[\"a\\\"b\\\\c\\/\\b\\f\\n\\r\\t\\u00e9\"]",
            "{\"a\":{\"b\":[1,{}]}}",
            "",
            " ",
            "[",
            "]",
            "[1,]",
            "[,1]",
            "{\"a\"}",
            "{\"a\":}",
            "{,}",
            "{\"a\":1,}",
            "01",
            "1.",
            ".1",
            "1e",
            "-",
            "+1",
            "tru",
            "nul",
            "[1 2]",
            "{\"a\" 1}",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\u{1}\"",
            "\"abc",
            "[1]x",
            "[1] [2]",
            "{1:2}",
            "\"é\"",
            "[\"0123456789abcdef0123456789\"]",
            "\"0123456789\\n0123456789\"",
            "NaN",
            "[-]",
            "{\"a\":1 \"b\":2}",
            "[\"\t\"]",
        ];
        for case in cases {
            let theirs = serde_json::from_str::<serde_json::Value>(case).is_ok();
            assert_eq!(ok(case), theirs, "{case:?}");
        }
    }

    #[test]
    fn depth_limit() {
        let deep = |n: usize| "[".repeat(n) + &"]".repeat(n);
        assert!(ok(&deep(MAX_DEPTH)));
        assert!(serde_json::from_str::<serde_json::Value>(&deep(MAX_DEPTH)).is_ok());
        assert!(!ok(&deep(MAX_DEPTH + 1)));
        assert!(!ok(&deep(100_000)));
    }

    #[test]
    fn first_element() {
        let s = "[\"chat\",1]";
        let r = scan(s.as_bytes(), None).unwrap_or_else(|e| panic!("{e:?}"));
        let f = r.first.unwrap_or_else(|| panic!("no first"));
        assert_eq!(f.kind, Kind::String);
        assert_eq!(&s[f.start..f.end], "chat");
        let s = " [ 12.5 , 1] ";
        let r = scan(s.as_bytes(), None).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((r.start, r.end), (1, s.len() - 1));
        let f = r.first.unwrap_or_else(|| panic!("no first"));
        assert_eq!((f.kind, &s[f.start..f.end]), (Kind::Number, "12.5"));
        assert!(scan(b"[]", None).is_ok_and(|r| r.first.is_none()));
    }

    #[test]
    fn placeholders() {
        let check = |s: &str, n| scan(s.as_bytes(), Some(n)).map(|_| ());
        assert_eq!(check("[{\"_placeholder\":true,\"num\":0}]", 1), Ok(()));
        assert_eq!(check("[{\"num\":1.0,\"_placeholder\":true}]", 2), Ok(()));
        assert_eq!(
            check("[{\"_placeholder\":true,\"num\":1}]", 1),
            Err(ScanError::BadPlaceholder)
        );
        assert_eq!(
            check("[{\"_placeholder\":true,\"num\":\"splice\"}]", 1),
            Err(ScanError::BadPlaceholder)
        );
        assert_eq!(
            check("[{\"_placeholder\":true}]", 1),
            Err(ScanError::BadPlaceholder)
        );
        assert_eq!(
            check("[{\"_placeholder\":true,\"num\":-1}]", 1),
            Err(ScanError::BadPlaceholder)
        );
        assert_eq!(
            check("[{\"_placeholder\":true,\"num\":0.5}]", 1),
            Err(ScanError::BadPlaceholder)
        );
        assert_eq!(
            check("[{\"_placeholder\":true,\"num\":[0]}]", 1),
            Err(ScanError::BadPlaceholder)
        );
        assert_eq!(check("[{\"_placeholder\":false,\"num\":9}]", 1), Ok(()));
        assert_eq!(check("[{\"_placeholder\":1,\"num\":9}]", 1), Ok(()));
        assert_eq!(
            check("[{\"_placeholder\":true,\"_placeholder\":false}]", 1),
            Ok(())
        );
        assert_eq!(
            check("[{\"_place\\u0068older\":true,\"num\":3}]", 1),
            Err(ScanError::BadPlaceholder)
        );
        assert_eq!(
            check("[{\"_placeholder\":true,\"num\":0,\"x\":{\"num\":7}}]", 1),
            Ok(())
        );
        assert_eq!(
            check(
                "[{\"a\":{\"_placeholder\":true,\"num\":99999999999999999999999}}]",
                1
            ),
            Err(ScanError::BadPlaceholder)
        );
        // Text packets do not look at placeholders.
        assert!(scan(b"[{\"_placeholder\":true,\"num\":7}]", None).is_ok());
    }
}
