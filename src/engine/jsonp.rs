//! JSONP polling (`j=<index>` in the query), for browsers that can neither
//! make cross-origin XHR requests nor open a WebSocket. The same framing
//! serves both protocol versions; what travels inside is the version's text
//! payload (v4 `0x1e`-separated, v3 length-prefixed), so binary is always
//! base64.
//!
//! A GET answers JavaScript that hands the payload to the client's callback
//! slot, [`wrap`]: `___eio[<j>]("<payload as a JSON string>");`. A POST is an
//! HTML form submission (`application/x-www-form-urlencoded`) whose field `d`
//! holds the payload with its newlines escaped, [`decode_post`].

use super::error::DecodeError;

/// Longest accepted `j` value, in digits.
const MAX_INDEX_DIGITS: usize = 10;

/// Whether `j` (the query value) is a JSONP callback index this server
/// answers: 1 to 10 ASCII digits. Refuse the request otherwise, since the
/// index is written into the JavaScript of the answer.
pub fn valid_index(j: &str) -> bool {
    (1..=MAX_INDEX_DIGITS).contains(&j.len()) && j.bytes().all(|b| b.is_ascii_digit())
}

/// The body of a JSONP GET answer (`text/javascript; charset=UTF-8`):
/// `___eio[<index>]("<payload>");` with the payload escaped as
/// `JSON.stringify` does, and U+2028 and U+2029 escaped too, since they are
/// valid in a JSON string but end a line (and so the string) in JavaScript
/// before ES2019.
///
/// `index` should have passed [`valid_index`]; like the reference server,
/// only its ASCII digits are written, so that no other text can reach the
/// script.
pub fn wrap(index: &str, payload: &str) -> String {
    let mut out = String::with_capacity(payload.len() + index.len() + 13);
    out.push_str("___eio[");
    out.extend(index.chars().filter(char::is_ascii_digit));
    out.push_str("](\"");
    for c in payload.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{0}'..='\u{1f}' | '\u{2028}' | '\u{2029}' => push_unicode_escape(&mut out, c),
            c => out.push(c),
        }
    }
    out.push_str("\");");
    out
}

/// `\uXXXX` with lowercase hex, as `JSON.stringify` writes it.
fn push_unicode_escape(out: &mut String, c: char) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let code = c as u32;
    out.push_str("\\u");
    for shift in [12, 8, 4, 0] {
        out.push(char::from(HEX[((code >> shift) & 0xf) as usize]));
    }
}

/// The payload of a JSONP POST body: the form field `d`, with the client's
/// newline escaping undone.
///
/// The client writes the payload into a `<textarea>`, and browsers turn the
/// newlines of a textarea into `\r\n` when submitting it. So engine.io's JSONP
/// client first turns each two-character sequence backslash + `n` into
/// backslash + newline, then every newline into backslash + `n`: a real
/// newline travels as `\n` and an escaped one (as in JSON text) as `\\n`.
/// This undoes it the way engine.io's server does (its `polling-jsonp`
/// transport, with two regular expressions), in one left-to-right pass:
/// `\\n` becomes `\n`, any other `\n` becomes a newline, and every other
/// character is kept, lone backslashes included. As with the reference
/// server, a backslash that stood right before a real newline comes back as
/// `\n`: the client's escaping cannot tell those apart.
///
/// The form is decoded by the usual rules (`+` is a space, `%XX` a byte);
/// bytes that are not UTF-8 become U+FFFD, as with the Node server's
/// string decoding. A body without a `d` field, or with more than one (which
/// the reference server ignores), is [`DecodeError::MissingJsonpData`]; an
/// empty `d` gives an empty payload, which the payload decoder refuses.
pub fn decode_post(body: &[u8]) -> Result<String, DecodeError> {
    let mut fields = form_urlencoded::parse(body).filter(|(key, _)| key == "d");
    let (_, data) = fields.next().ok_or(DecodeError::MissingJsonpData)?;
    if fields.next().is_some() {
        return Err(DecodeError::MissingJsonpData);
    }
    Ok(unescape_newlines(&data))
}

/// Undoes the JSONP client's newline escaping (see [`decode_post`]).
fn unescape_newlines(data: &str) -> String {
    let mut out = String::with_capacity(data.len());
    let mut rest = data;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        rest = if let Some(after) = tail.strip_prefix("\\\\n") {
            out.push_str("\\n");
            after
        } else if let Some(after) = tail.strip_prefix("\\n") {
            out.push('\n');
            after
        } else {
            out.push('\\');
            &tail[1..]
        };
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_rng::Rng;

    /// The form body a JSONP client posts for `payload`: engine.io-client's
    /// two replacements, then form encoding.
    fn client_post(payload: &str) -> Vec<u8> {
        let escaped = payload.replace("\\n", "\\\n").replace('\n', "\\n");
        form_urlencoded::Serializer::new(String::new())
            .append_pair("d", &escaped)
            .finish()
            .into_bytes()
    }

    /// engine.io's server steps written out as its two global regular
    /// expressions would run them: `/(\\)?\\n/g` (keep the match when the
    /// group matched, else a newline), then `/\\\\n/g` → `\n`.
    fn reference_unescape(data: &str) -> String {
        let mut first = String::new();
        let mut rest = data;
        while let Some(c) = rest.chars().next() {
            if rest.starts_with("\\\\n") {
                first.push_str("\\\\n");
                rest = &rest[3..];
            } else if rest.starts_with("\\n") {
                first.push('\n');
                rest = &rest[2..];
            } else {
                first.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        first.replace("\\\\n", "\\n")
    }

    #[test]
    fn index_is_one_to_ten_ascii_digits() {
        for j in ["0", "1", "42", "4294967295"] {
            assert!(valid_index(j), "{j:?}");
        }
        for j in [
            "",
            "12345678901",
            "-1",
            "1a",
            " 1",
            "1 ",
            "0x1",
            "١",
            "１",
            "1);",
        ] {
            assert!(!valid_index(j), "{j:?}");
        }
    }

    #[test]
    fn wraps_a_payload_as_a_callback_call() {
        assert_eq!(wrap("0", "6:4hello"), r#"___eio[0]("6:4hello");"#);
        assert_eq!(wrap("12", ""), r#"___eio[12]("");"#);
        assert_eq!(
            wrap("3", "4hello\u{1e}bAQIDBA=="),
            r#"___eio[3]("4hello\u001ebAQIDBA==");"#
        );
    }

    #[test]
    fn escapes_quotes_backslashes_and_line_ends() {
        assert_eq!(wrap("1", "9:4\"a\\b\"\n"), r#"___eio[1]("9:4\"a\\b\"\n");"#);
        assert_eq!(
            wrap("1", "4\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}/<"),
            "___eio[1](\"4\\r\\t\\b\\f\\u0000\\u001f\u{7f}/<\");"
        );
        assert_eq!(
            wrap("1", "3:4\u{2028}\u{2029}"),
            r#"___eio[1]("3:4\u2028\u2029");"#
        );
        // other non-ASCII text is written as it is
        assert_eq!(wrap("1", "4é✓🎉"), "___eio[1](\"4é✓🎉\");");
    }

    #[test]
    fn index_text_other_than_digits_is_dropped() {
        assert_eq!(wrap("1);alert(1", "x"), r#"___eio[11]("x");"#);
    }

    #[test]
    fn wrapped_strings_are_json_and_javascript() {
        let alphabet = [
            'a', '4', '"', '\\', '\n', '\r', '\t', '\u{0}', '\u{1e}', '\u{7f}', '/', 'é',
            '\u{2028}', '\u{2029}', '🎉',
        ];
        let mut rng = Rng(0x0DD_BA11);
        for _ in 0..5_000 {
            let payload = rng.string(&alphabet, 30);
            let wrapped = wrap("7", &payload);
            let json = wrapped
                .strip_prefix("___eio[7](")
                .and_then(|s| s.strip_suffix(");"))
                .unwrap();
            // what JSON.stringify writes, plus the two JavaScript escapes
            let expected = serde_json::to_string(&payload)
                .unwrap()
                .replace('\u{2028}', "\\u2028")
                .replace('\u{2029}', "\\u2029");
            assert_eq!(json, expected);
            assert_eq!(serde_json::from_str::<String>(json).unwrap(), payload);
            assert!(!json.contains(['\n', '\r', '\u{2028}', '\u{2029}']));
        }
    }

    #[test]
    fn decodes_the_d_field() {
        assert_eq!(decode_post(b"d=6%3A4hello").unwrap(), "6:4hello");
        assert_eq!(decode_post(b"d=6:4hello").unwrap(), "6:4hello");
        assert_eq!(decode_post(b"d=5%3A4a+b").unwrap(), "5:4a b");
        assert_eq!(decode_post(b"t=abc&d=1%3A2&x=").unwrap(), "1:2");
        assert_eq!(decode_post(b"%64=1%3A2").unwrap(), "1:2");
        assert_eq!(
            decode_post(b"d=4hello%1Eb4AQIDBA%3D%3D").unwrap(),
            "4hello\u{1e}b4AQIDBA=="
        );
        assert_eq!(decode_post(b"d=2%3A4%C3%A9").unwrap(), "2:4é");
        assert_eq!(decode_post(b"d=").unwrap(), "");
        assert_eq!(decode_post(b"d=2%3A4%FF").unwrap(), "2:4\u{fffd}");
    }

    #[test]
    fn refuses_forms_without_a_single_d() {
        for body in [
            &b""[..],
            b"x=1",
            b"D=1%3A2",
            b"dd=1%3A2",
            b"d=1%3A2&d=1%3A3",
        ] {
            assert_eq!(
                decode_post(body),
                Err(DecodeError::MissingJsonpData),
                "{body:?}"
            );
        }
    }

    #[test]
    fn undoes_newline_escaping() {
        // a real newline travels as backslash + n
        assert_eq!(decode_post(b"d=4a%5Cnb").unwrap(), "4a\nb");
        // an escaped one (backslash + n, as in JSON text) as \\n
        assert_eq!(decode_post(b"d=4a%5C%5Cnb").unwrap(), "4a\\nb");
        // any other backslash is kept
        assert_eq!(decode_post(b"d=4%5C%22a%5C%5C%5C").unwrap(), "4\\\"a\\\\\\");
        assert_eq!(decode_post(b"d=4%5C%5C%5Cn").unwrap(), "4\\\\n");
    }

    #[test]
    fn reads_what_the_client_posts() {
        // from engine.io's JSONP tests: a message with newlines, and the
        // same message as JSON text (where they are escaped)
        let message = "4a\r\nb\n\n\n\nc";
        let json = "4{\"test\":\"a\\r\\nb\\n\\n\\n\\nc\"}";
        for payload in [message, json, "6:4a\\\"b", "4\\n\\\\n\n\\"] {
            assert_eq!(decode_post(&client_post(payload)).unwrap(), payload);
        }
    }

    #[test]
    fn a_backslash_before_a_newline_is_ambiguous() {
        // the client's escaping gives \\n for both, as with the Node server
        assert_eq!(client_post("4\\\n"), client_post("4\\n"));
        assert_eq!(decode_post(&client_post("4\\\n")).unwrap(), "4\\n");
    }

    #[test]
    fn one_pass_matches_the_reference_regular_expressions() {
        let mut rng = Rng(0xBAC_C5A5);
        for _ in 0..20_000 {
            let data = rng.string(&['\\', 'n', '\n', 'a', 'é'], 16);
            assert_eq!(
                unescape_newlines(&data),
                reference_unescape(&data),
                "{data:?}"
            );
        }
    }

    #[test]
    fn client_payloads_round_trip() {
        let mut rng = Rng(0x1234_0004);
        for _ in 0..5_000 {
            let payload = rng.string(
                &['\\', 'n', '\n', '\r', '4', ':', '+', '&', '=', '%', '🎉'],
                24,
            );
            if payload.contains("\\\n") {
                continue; // the ambiguous case above
            }
            assert_eq!(decode_post(&client_post(&payload)).unwrap(), payload);
        }
    }

    #[test]
    fn decode_post_never_panics() {
        let bytes = [
            b'd', b'=', b'&', b'%', b'5', b'C', b'n', b'\\', b'+', 0xc3, 0xff, 0,
        ];
        let mut rng = Rng(0xFEED_F00D);
        for _ in 0..20_000 {
            let body: Vec<u8> = (0..rng.below(40))
                .map(|_| {
                    if rng.below(2) == 0 {
                        bytes[rng.below(bytes.len())]
                    } else {
                        rng.next() as u8
                    }
                })
                .collect();
            let _ = decode_post(&body);
        }
    }
}
