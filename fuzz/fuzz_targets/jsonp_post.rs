//! A JSONP POST body (`d=<payload>`, form-encoded, newlines escaped), then
//! the payload inside it by either protocol's text form.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use socketgate::engine::{jsonp, payload, payload_v3};

/// What engine.io-client posts for `payload`: its two newline replacements,
/// then form encoding.
fn client_post(payload: &str) -> String {
    let escaped = payload.replace("\\n", "\\\n").replace('\n', "\\n");
    form_urlencoded::Serializer::new(String::new())
        .append_pair("d", &escaped)
        .finish()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = jsonp::decode_post(data) else {
        return;
    };
    let _ = payload::decode(Bytes::from(text.clone()));
    let _ = payload_v3::decode_text(&text);
    // What a client posts comes back as it was, except a backslash right
    // before a newline, which the client's escaping cannot tell apart.
    if !text.contains("\\\n") {
        let body = client_post(&text);
        assert_eq!(
            jsonp::decode_post(body.as_bytes()).as_deref(),
            Ok(text.as_str()),
            "{body:?}"
        );
    }
});
