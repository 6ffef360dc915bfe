//! The handshake packet's JSON body.

use serde::Serialize;

use super::sid::Sid;

/// The data of the `0` (open) packet that starts every session.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OpenData<'a> {
    pub sid: &'a str,
    pub upgrades: &'a [&'a str],
    pub ping_interval: u64,
    pub ping_timeout: u64,
    pub max_payload: usize,
}

impl<'a> OpenData<'a> {
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain strings and numbers always serialise")
    }

    pub(crate) fn new(sid: &'a Sid, upgrades: &'a [&'a str], cfg: &super::EngineConfig) -> Self {
        OpenData {
            sid: sid.as_str(),
            upgrades,
            ping_interval: cfg.ping_interval.as_millis() as u64,
            ping_timeout: cfg.ping_timeout.as_millis() as u64,
            max_payload: cfg.max_payload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_the_handshake_fields() {
        let sid = Sid::parse("AAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let cfg = super::super::EngineConfig::default();
        let json = OpenData::new(&sid, &["websocket"], &cfg).to_json();
        assert_eq!(
            json,
            r#"{"sid":"AAAAAAAAAAAAAAAAAAAAAAAA","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
    }
}
