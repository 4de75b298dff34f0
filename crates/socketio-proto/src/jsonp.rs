//! JSONP long-polling, as the reference serves it to clients that cannot use
//! XHR (a polling request with a `j` query parameter).
//!
//! A JSONP client reads by loading a `<script>` whose source is the poll, and
//! writes by submitting a hidden form. So:
//!
//! - a poll is answered with JavaScript, `___eio[<j>]("<payload>");`, where
//!   `<j>` is the digits of the handshake's `j` and the payload is written as
//!   a JSON string with U+2028 and U+2029 escaped too (JSON allows them raw in
//!   a string, older JavaScript does not): see [`wrap`];
//! - a POST is a form (`application/x-www-form-urlencoded`) whose field `d`
//!   holds the payload, in which the client wrote each newline as `\n` and
//!   each `\n` it meant literally as `\\n`: see [`decode_form`].
//!
//! A JSONP session never gets binary payloads: binary packets travel in the
//! text payload as base64, whatever `b64` says.
//!
//! ```
//! use socketio_proto::jsonp;
//!
//! let body = jsonp::wrap(&jsonp::callback_index("3"), "4hi\u{2028}\"");
//! assert_eq!(&body[..], b"___eio[3](\"4hi\\u2028\\\"\");");
//! let payload = jsonp::decode_form(b"d=7%3A42%5B%22a%5Cnb%22%5D").unwrap();
//! assert_eq!(payload, "7:42[\"a\nb\"]");
//! ```

use bytes::Bytes;

use crate::http::percent_decode;

/// The most `key=value` pairs of a form read, as the reference's
/// `querystring.parse` (`maxKeys`): later pairs are ignored.
pub const MAX_FORM_PAIRS: usize = 1000;

/// Why a JSONP POST's form carries no payload. The reference answers such a
/// POST `ok` and reads nothing from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// The form has no `d` field.
    #[error("the form has no `d` field")]
    Missing,
    /// The form has more than one `d` field.
    #[error("the form has more than one `d` field")]
    Repeated,
}

/// The callback index of a JSONP session: the digits of its `j` parameter,
/// the rest dropped (so that nothing but digits ever lands between the
/// brackets of `___eio[...]`).
pub fn callback_index(j: &str) -> Box<str> {
    j.chars().filter(char::is_ascii_digit).collect()
}

/// A poll's answer for a JSONP client: `___eio[<index>]("<payload>");`, the
/// payload escaped as `JSON.stringify` does, and U+2028 and U+2029 as
/// `\u2028` and `\u2029`.
///
/// The payload cannot leave the string literal: quotes, backslashes and
/// every line terminator are escaped. `</script>` stays as it is: the answer
/// is the source of a script, not part of an HTML page.
pub fn wrap(index: &str, payload: &str) -> Bytes {
    let mut out = Vec::with_capacity(payload.len() + payload.len() / 8 + index.len() + 12);
    out.extend_from_slice(b"___eio[");
    out.extend_from_slice(index.as_bytes());
    out.extend_from_slice(b"](");
    escape_js_string(payload, &mut out);
    out.extend_from_slice(b");");
    Bytes::from(out)
}

/// Writes `s` as a double-quoted JSON string, as `JSON.stringify` writes it,
/// with U+2028 and U+2029 escaped as well.
fn escape_js_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape: &[u8] = match c {
            '"' => b"\\\"",
            '\\' => b"\\\\",
            '\u{08}' => b"\\b",
            '\u{0c}' => b"\\f",
            '\n' => b"\\n",
            '\r' => b"\\r",
            '\t' => b"\\t",
            '\u{2028}' => b"\\u2028",
            '\u{2029}' => b"\\u2029",
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(&s.as_bytes()[start..i]);
                let b = c as u8;
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
                start = i + c.len_utf8();
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&s.as_bytes()[start..i]);
        out.extend_from_slice(escape);
        start = i + c.len_utf8();
    }
    out.extend_from_slice(&s.as_bytes()[start..]);
    out.push(b'"');
}

/// The payload of a JSONP POST: the form field `d`, percent-decoded (`+` is
/// a space), with the client's newline escapes undone (see
/// [`unescape_newlines`]). The body is read as UTF-8, invalid sequences
/// replaced, as the reference reads it.
///
/// # Errors
///
/// [`FormError`] when the form has no `d` field, or more than one, among its
/// first [`MAX_FORM_PAIRS`] pairs.
pub fn decode_form(body: &[u8]) -> Result<String, FormError> {
    let body = String::from_utf8_lossy(body);
    let mut found = None;
    for pair in body.split('&').take(MAX_FORM_PAIRS) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key.is_empty() && value.is_empty() {
            continue;
        }
        if percent_decode(key) != "d" {
            continue;
        }
        if found.is_some() {
            return Err(FormError::Repeated);
        }
        found = Some(value);
    }
    let value = found.ok_or(FormError::Missing)?;
    Ok(unescape_newlines(&percent_decode(value)))
}

/// Undoes the JSONP client's newline escapes as the reference does, in two
/// passes: first each `\n` (a backslash and an `n`) not preceded by another
/// backslash becomes a newline, then each `\\n` becomes `\n`.
pub fn unescape_newlines(data: &str) -> String {
    let b = data.as_bytes();
    // Pass one: `\\n` stays, `\n` becomes a newline.
    let mut first = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'\\') && b.get(i + 2) == Some(&b'n') {
            first.extend_from_slice(b"\\\\n");
            i += 3;
        } else if b[i] == b'\\' && b.get(i + 1) == Some(&b'n') {
            first.push(b'\n');
            i += 2;
        } else {
            first.push(b[i]);
            i += 1;
        }
    }
    // Pass two: `\\n` becomes `\n`.
    let mut out = Vec::with_capacity(first.len());
    let mut i = 0;
    while i < first.len() {
        if first[i..].starts_with(b"\\\\n") {
            out.extend_from_slice(b"\\n");
            i += 3;
        } else {
            out.push(first[i]);
            i += 1;
        }
    }
    // Only ASCII bytes were replaced by ASCII bytes: still UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_keeps_only_digits() {
        assert_eq!(&*callback_index("12"), "12");
        assert_eq!(&*callback_index("1);alert(1)//"), "11");
        assert_eq!(&*callback_index(""), "");
        assert_eq!(&*callback_index("٣4"), "4");
    }

    #[test]
    fn strings_are_written_as_json_stringify_writes_them() {
        let cases: &[(&str, &str)] = &[
            ("", r#""""#),
            ("plain", r#""plain""#),
            ("a\"b\\c", r#""a\"b\\c""#),
            ("\u{8}\u{c}\n\r\t", r#""\b\f\n\r\t""#),
            ("\u{0}\u{1f}\u{1e}\u{7f}", "\"\\u0000\\u001f\\u001e\u{7f}\""),
            ("\u{2028}\u{2029}", r#""\u2028\u2029""#),
            ("é😀", "\"é😀\""),
            ("</script><script>", r#""</script><script>""#),
        ];
        for (input, expected) in cases {
            let mut out = Vec::new();
            escape_js_string(input, &mut out);
            assert_eq!(
                String::from_utf8(out).expect("UTF-8"),
                *expected,
                "{input:?}"
            );
        }
    }

    #[test]
    fn a_wrapped_payload_reads_back_as_json() {
        let payload = "2:40\u{1e}x\"'</script>\u{2028}\u{2029}\\n\n";
        let body = wrap("0", payload);
        let text = std::str::from_utf8(&body).expect("UTF-8");
        let inner = text
            .strip_prefix("___eio[0](")
            .and_then(|t| t.strip_suffix(");"))
            .expect("wrapped");
        assert_eq!(
            serde_json::from_str::<String>(inner).expect("a string"),
            payload
        );
        assert!(!text.contains('\u{2028}') && !text.contains('\u{2029}'));
        assert!(!text.contains('\n'));
    }

    #[test]
    fn newlines_are_unescaped_as_the_reference_does() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("a\\nb", "a\nb"),
            ("a\\\\nb", "a\\nb"),
            ("a\\\\\\nb", "a\\\\nb"),
            ("\\n\\n", "\n\n"),
            ("\\", "\\"),
            ("\\\\", "\\\\"),
            ("n\\", "n\\"),
            ("é\\n😀", "é\n😀"),
        ];
        for (input, expected) in cases {
            assert_eq!(unescape_newlines(input), *expected, "{input:?}");
        }
    }

    #[test]
    fn forms_give_their_d_field() {
        assert_eq!(decode_form(b"d=4hello").expect("d"), "4hello");
        assert_eq!(decode_form(b"x=1&d=a+b%2Bc&y").expect("d"), "a b+c");
        assert_eq!(decode_form(b"%64=1").expect("d"), "1");
        assert_eq!(decode_form(b"d").expect("d"), "");
        assert_eq!(decode_form(b"d=%E2%80%A8%zz").expect("d"), "\u{2028}%zz");
        assert_eq!(decode_form(b"d=a%5C%5Cnb%5Cn").expect("d"), "a\\nb\n");
        assert_eq!(decode_form(b""), Err(FormError::Missing));
        assert_eq!(decode_form(b"e=1&dd=2"), Err(FormError::Missing));
        assert_eq!(decode_form(b"d=1&d=2"), Err(FormError::Repeated));
        // Pairs past the bound are not read.
        let mut far = "x=1&".repeat(MAX_FORM_PAIRS);
        far.push_str("d=1");
        assert_eq!(decode_form(far.as_bytes()), Err(FormError::Missing));
    }

    proptest::proptest! {
        #[test]
        fn wrapping_never_lets_the_payload_out_of_its_string(payload in "\\PC*|[\"\\\\\n\r\u{2028}\u{2029}<>/a]*") {
            let body = wrap("7", &payload);
            let text = std::str::from_utf8(&body).expect("UTF-8");
            let inner = text.strip_prefix("___eio[7](").and_then(|t| t.strip_suffix(");")).expect("wrapped");
            proptest::prop_assert_eq!(serde_json::from_str::<String>(inner).expect("a string"), payload);
        }

        #[test]
        fn forms_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = decode_form(&body);
        }
    }
}
