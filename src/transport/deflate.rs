//! permessage-deflate (RFC 7692): the handshake negotiation and the
//! compression of one message. Pure functions, no I/O.
//!
//! Only the no-context-takeover form is negotiated: every message is
//! compressed on its own, so no connection keeps a compressor or an
//! inflater (each is 40 to 300 KiB with miniz_oxide). One of each per
//! thread is reset and reused instead, and a message compressed once is
//! sent to every connection that negotiated the extension (all of them
//! negotiate the same parameters): see [`compress_shared`].

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use http::HeaderMap;
use http::header::SEC_WEBSOCKET_EXTENSIONS;

/// The extension as the server accepts it: each side compresses every
/// message on its own (RFC 7692 §7.1.1.1 and §7.1.1.2 let the server ask
/// for both, offered or not).
pub(crate) const RESPONSE: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// The bytes a sync flush ends with; removed from a compressed message and
/// put back before inflating it (RFC 7692 §7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// zlib level 1: realtime payloads (JSON, repeated keys) shrink most of
/// the way at the fastest level, and a gateway's budget is CPU per message.
const LEVEL: u32 = 1;

/// Why a compressed message from the client cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InflateError {
    /// It inflates (or is, compressed) past max_payload: 1009.
    #[error("compressed message over max_payload")]
    TooLarge,
    /// Not a deflate stream, or compressed frames out of order: 1002.
    #[error("invalid compressed message")]
    Invalid,
}

/// Whether the client offered permessage-deflate in a form we accept. The
/// offers are read in the client's order of preference; an offer with an
/// unknown or repeated parameter, or one that limits our window below 15
/// bits (miniz_oxide only compresses with a 32 KiB window), is declined.
pub(crate) fn accepts_offer(headers: &HeaderMap) -> bool {
    headers
        .get_all(SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(acceptable)
}

fn acceptable(offer: &str) -> bool {
    let mut parts = offer.split(';').map(str::trim);
    if parts.next() != Some("permessage-deflate") {
        return false;
    }
    let mut seen: Vec<&str> = Vec::new();
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (param, None),
        };
        if seen.contains(&name) {
            return false;
        }
        seen.push(name);
        let bits = |v: Option<&str>| v.and_then(|v| v.parse::<u8>().ok());
        let ok = match name {
            "server_no_context_takeover" | "client_no_context_takeover" => value.is_none(),
            "server_max_window_bits" => bits(value) == Some(15),
            // We may leave it out of the answer; the client then uses
            // its full window, which our 32 KiB inflater reads.
            "client_max_window_bits" => {
                value.is_none() || bits(value).is_some_and(|b| (8..=15).contains(&b))
            }
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Compressed messages remembered, and the largest one remembered: at
/// most 16 × 2 × 64 KiB held.
const RECENT: usize = 16;
const RECENT_MAX_BYTES: usize = 64 << 10;

/// A message compressed (or being compressed) lately, by its source.
type Recent = VecDeque<(Bytes, Arc<OnceLock<Bytes>>)>;

/// The messages compressed lately, for every thread.
static RECENT_COMPRESSED: Mutex<Recent> = Mutex::new(VecDeque::new());

thread_local! {
    static COMPRESS: RefCell<Compress> = RefCell::new(Compress::new(Compression::new(LEVEL), false));
    static INFLATE: RefCell<Decompress> = RefCell::new(Decompress::new(false));
}

/// [`compress`], once in all for a message queued to many sessions: a
/// broadcast is one shared `Bytes` in every recipient's queue, so the
/// writers after the first reuse its result, on whatever thread they run;
/// one that comes while the first is at it waits for its result rather
/// than doing the same work. An entry keeps its source alive, so no other
/// message can take its address while it is remembered; same address and
/// length means same bytes.
pub(crate) fn compress_shared(src: &Bytes) -> Bytes {
    if src.len() > RECENT_MAX_BYTES {
        return Bytes::from(compress(src));
    }
    let same = |s: &Bytes| s.as_ptr() == src.as_ptr() && s.len() == src.len();
    let slot = {
        let mut recent = RECENT_COMPRESSED.lock().unwrap_or_else(|e| e.into_inner());
        match recent.iter().find(|(s, _)| same(s)) {
            Some((_, slot)) => slot.clone(),
            None => {
                if recent.len() == RECENT {
                    recent.pop_back();
                }
                let slot = Arc::new(OnceLock::new());
                recent.push_front((src.clone(), slot.clone()));
                slot
            }
        }
    };
    slot.get_or_init(|| Bytes::from(compress(src))).clone()
}

/// Compresses one message as the payload of a frame with RSV1 set.
pub(crate) fn compress(data: &[u8]) -> Vec<u8> {
    COMPRESS.with_borrow_mut(|c| {
        c.reset();
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(64));
            }
            let before = c.total_in();
            // Cannot fail: a raw deflate stream, enough room, input in order.
            let _ = c.compress_vec(&data[pos..], &mut out, FlushCompress::Sync);
            pos += (c.total_in() - before) as usize;
            // The flush is complete when the input is consumed and room
            // was left over.
            if pos == data.len() && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if out.is_empty() {
            // An empty message still needs one empty block (§7.2.3.6).
            out.push(0x00);
        }
        out
    })
}

/// Inflates one compressed message, refusing to produce more than `max`
/// bytes: a small frame may claim gigabytes (a deflate bomb).
pub(crate) fn inflate(data: &[u8], max: usize) -> Result<Vec<u8>, InflateError> {
    INFLATE.with_borrow_mut(|d| {
        d.reset(false);
        let limit = max.saturating_add(1);
        let mut out = Vec::with_capacity(data.len().saturating_mul(4).max(64).min(limit));
        for input in [data, &TAIL[..]] {
            let mut pos = 0;
            loop {
                if out.len() == out.capacity() {
                    if out.len() >= limit {
                        return Err(InflateError::TooLarge);
                    }
                    let room = out.capacity().min(limit - out.len());
                    out.reserve_exact(room);
                }
                let (in_before, out_before) = (d.total_in(), out.len());
                let status = d
                    .decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync)
                    .map_err(|_| InflateError::Invalid)?;
                pos += (d.total_in() - in_before) as usize;
                if out.len() > max {
                    return Err(InflateError::TooLarge);
                }
                if status == Status::StreamEnd {
                    // A final block: whatever follows is not read.
                    return Ok(out);
                }
                let full = out.len() == out.capacity();
                if pos == input.len() && !full {
                    break;
                }
                if !full && d.total_in() == in_before && out.len() == out_before {
                    return Err(InflateError::Invalid);
                }
            }
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn offer(v: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(SEC_WEBSOCKET_EXTENSIONS, HeaderValue::from_str(v).unwrap());
        accepts_offer(&h)
    }

    #[test]
    fn offers() {
        assert!(offer("permessage-deflate"));
        // Node ws and browsers.
        assert!(offer("permessage-deflate; client_max_window_bits"));
        assert!(offer(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        ));
        assert!(offer("permessage-deflate; client_max_window_bits=10"));
        assert!(offer("permessage-deflate; server_max_window_bits=\"15\""));
        // The second offer is acceptable.
        assert!(offer(
            "permessage-deflate; server_max_window_bits=10, permessage-deflate"
        ));
        assert!(!offer("permessage-deflate; server_max_window_bits=10"));
        assert!(!offer("permessage-deflate; client_max_window_bits=16"));
        assert!(!offer("permessage-deflate; x_unknown"));
        assert!(!offer(
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover"
        ));
        assert!(!offer("x-webkit-deflate-frame"));
        assert!(!accepts_offer(&HeaderMap::new()));
    }

    #[test]
    fn the_rfc_example_inflates() {
        // RFC 7692 §7.2.3.1: "Hello", compressed.
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(inflate(&hello, 100).unwrap(), b"Hello");
        // An empty block with BFINAL set (§7.2.3.4 style): "Hello" too.
        let final_block = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(inflate(&final_block, 100).unwrap(), b"Hello");
    }

    #[test]
    fn round_trips() {
        for data in [
            &b""[..],
            b"4hello",
            "42[\"ev\",{\"text\":\"é✓\"}]".as_bytes(),
            &vec![b'x'; 100_000],
        ] {
            let c = compress(data);
            assert!(!c.ends_with(&TAIL));
            assert_eq!(inflate(&c, data.len()).unwrap(), data);
        }
        let noise: Vec<u8> = (0..50_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert_eq!(inflate(&compress(&noise), noise.len()).unwrap(), noise);
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let bomb = compress(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 64 << 10);
        assert_eq!(inflate(&bomb, 1000), Err(InflateError::TooLarge));
        assert_eq!(
            inflate(&compress(&[7; 1001]), 1000),
            Err(InflateError::TooLarge)
        );
        assert_eq!(inflate(&compress(&[7; 1000]), 1000).unwrap().len(), 1000);
        assert_eq!(inflate(&compress(b"ab"), 1), Err(InflateError::TooLarge));
    }

    #[test]
    fn a_shared_message_is_compressed_once_in_all() {
        let src = Bytes::from("4".to_owned() + &"broadcast ".repeat(300));
        let first = compress_shared(&src);
        assert_eq!(inflate(&first, src.len()).unwrap(), src);
        // Other recipients' clones of the same message, on other threads:
        // the same bytes.
        let others: Vec<Bytes> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let clone = src.clone();
                    s.spawn(move || compress_shared(&clone))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for other in others {
            assert_eq!(other.as_ptr(), first.as_ptr());
        }
        // Equal text elsewhere, or a part of it: compressed on its own.
        let copy = Bytes::from(src.to_vec());
        assert_ne!(compress_shared(&copy).as_ptr(), first.as_ptr());
        let part = src.slice(..100);
        let c = compress_shared(&part);
        assert_ne!(c.as_ptr(), first.as_ptr());
        assert_eq!(inflate(&c, 100).unwrap(), part);
    }

    #[test]
    fn writers_that_come_together_compress_once() {
        // Threads that reach a fresh message at the same moment: one
        // compresses, the others wait for its result.
        let src = Bytes::from("4".to_owned() + &"together ".repeat(5000));
        let barrier = std::sync::Barrier::new(4);
        let got: Vec<Bytes> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let (clone, barrier) = (src.clone(), &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        compress_shared(&clone)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(got.iter().all(|g| g.as_ptr() == got[0].as_ptr()));
        assert_eq!(inflate(&got[0], src.len()).unwrap(), src);
    }

    #[test]
    fn garbage_is_invalid() {
        // A block type of 3 is reserved.
        assert_eq!(
            inflate(&[0xff, 0xff, 0xff], 1000),
            Err(InflateError::Invalid)
        );
    }
}
