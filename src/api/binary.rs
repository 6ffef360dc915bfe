//! Binary arguments in JSON: `{"_base64":"…"}` in a request becomes a
//! binary attachment (socket.io's placeholder and its bytes), and an
//! attachment in an answer (an ack) becomes `{"_base64":"…"}` again.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;

use super::error::ApiError;
use crate::socketio::Payload;

/// The key that marks a binary argument.
pub(crate) const BASE64_KEY: &str = "_base64";

/// Standard alphabet; padding may be there or not.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// `args` with every `{"_base64":"…"}` (at any depth) replaced by a
/// binary attachment. `field` names the list in errors (`args`).
pub(crate) fn decode_args(args: Vec<Value>, field: &str) -> Result<Payload, ApiError> {
    let mut payload = Payload::new();
    for (i, mut arg) in args.into_iter().enumerate() {
        attach_binaries(&mut arg, &mut payload, &format!("{field}[{i}]"))?;
        payload.args.push(arg);
    }
    Ok(payload)
}

fn attach_binaries(value: &mut Value, payload: &mut Payload, at: &str) -> Result<(), ApiError> {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                attach_binaries(item, payload, &format!("{at}[{i}]"))?;
            }
        }
        Value::Object(map) => {
            if let Some(encoded) = map.get(BASE64_KEY) {
                // Anything else beside the key would be silently lost.
                if map.len() != 1 {
                    return Err(ApiError::new(
                        http::StatusCode::BAD_REQUEST,
                        "invalid_base64",
                        format!("{at}: a {BASE64_KEY:?} object has no other keys"),
                    ));
                }
                let bytes = encoded
                    .as_str()
                    .ok_or_else(|| {
                        ApiError::new(
                            http::StatusCode::BAD_REQUEST,
                            "invalid_base64",
                            format!("{at}.{BASE64_KEY}: a base64 string expected"),
                        )
                    })
                    .and_then(|text| {
                        BASE64.decode(text).map_err(|e| {
                            ApiError::new(
                                http::StatusCode::BAD_REQUEST,
                                "invalid_base64",
                                format!("{at}.{BASE64_KEY}: {e}"),
                            )
                        })
                    })?;
                *value = payload.attach(bytes);
                return Ok(());
            }
            for (key, item) in map.iter_mut() {
                attach_binaries(item, payload, &format!("{at}.{key}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The payload's arguments as JSON, each binary attachment as
/// `{"_base64":"…"}` where its placeholder was.
pub(crate) fn encode_args(payload: &Payload) -> Vec<Value> {
    payload
        .args
        .iter()
        .cloned()
        .map(|mut arg| {
            inline_binaries(&mut arg, payload);
            arg
        })
        .collect()
}

fn inline_binaries(value: &mut Value, payload: &Payload) {
    match value {
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| inline_binaries(item, payload)),
        Value::Object(map) => {
            let bytes = (map.len() == 2 && map.get("_placeholder") == Some(&Value::Bool(true)))
                .then(|| map.get("num").and_then(Value::as_u64))
                .flatten()
                .and_then(|num| payload.bins.get(usize::try_from(num).ok()?));
            match bytes {
                Some(bytes) => {
                    *value = serde_json::json!({ BASE64_KEY: BASE64.encode(bytes) });
                }
                None => map
                    .values_mut()
                    .for_each(|item| inline_binaries(item, payload)),
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base64_objects_become_attachments_at_any_depth() {
        let args = vec![
            json!("text"),
            json!({ "_base64": "AQID" }),
            json!({ "file": { "_base64": "BAU" }, "list": [{ "_base64": "" }] }),
        ];
        let payload = decode_args(args, "args").unwrap();
        assert_eq!(
            payload.args,
            vec![
                json!("text"),
                json!({ "_placeholder": true, "num": 0 }),
                json!({ "file": { "_placeholder": true, "num": 1 }, "list": [{ "_placeholder": true, "num": 2 }] }),
            ]
        );
        assert_eq!(payload.bins, vec![&[1u8, 2, 3][..], &[4, 5][..], &[][..]]);
    }

    #[test]
    fn bad_base64_names_where_it_is() {
        let err = decode_args(
            vec![json!(1), json!({ "a": [{ "_base64": "!!" }] })],
            "args",
        )
        .unwrap_err();
        assert_eq!(err.code, "invalid_base64");
        assert_eq!(err.status, http::StatusCode::BAD_REQUEST);
        assert!(err.message.starts_with("args[1].a[0]._base64: "), "{err}");
        let err = decode_args(vec![json!({ "_base64": 5 })], "args").unwrap_err();
        assert_eq!(err.message, "args[0]._base64: a base64 string expected");
        let err = decode_args(vec![json!({ "_base64": "AA==", "x": 1 })], "args").unwrap_err();
        assert!(err.message.contains("no other keys"), "{err}");
    }

    #[test]
    fn attachments_read_back_as_base64() {
        let mut payload = Payload::new().arg("a").bin(vec![0u8, 255]);
        let nested = payload.attach(vec![7u8]);
        payload = payload.arg(json!({ "x": [nested] }));
        assert_eq!(
            encode_args(&payload),
            vec![
                json!("a"),
                json!({ "_base64": "AP8=" }),
                json!({ "x": [{ "_base64": "Bw==" }] })
            ]
        );
        // A placeholder without its attachment is left as it is.
        let stray = Payload::new().arg(json!({ "_placeholder": true, "num": 3 }));
        assert_eq!(encode_args(&stray), stray.args);
    }
}
