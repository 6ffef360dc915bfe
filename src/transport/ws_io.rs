//! The byte stream under tungstenite. Without permessage-deflate it is the
//! upgraded connection as it is. With it, client frames are read here
//! first: a compressed message (RSV1 on its first frame, then its
//! continuations) is inflated and handed to tungstenite as one plain,
//! final frame; every other frame passes unchanged, so tungstenite still
//! applies its own checks (reserved bits, opcodes, masking, sizes, UTF-8)
//! and the close codes stay those of `read_failure`. tungstenite refuses
//! any frame with RSV1 set, which is why this sits below it.
//!
//! Writing passes through: compressed frames are built above tungstenite
//! (`Message::Frame` with RSV1), see `websocket::to_ws`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::deflate::{self, InflateError};

/// Bytes read from the connection at a time (as tungstenite's reads).
const READ_CHUNK: usize = 2 * 1024;

/// The upgraded connection, inflating client messages when negotiated.
#[derive(Debug)]
pub(crate) struct WsIo<S> {
    inner: S,
    /// Boxed: a connection without compression pays one pointer.
    inflating: Option<Box<Inflating>>,
}

impl<S> WsIo<S> {
    /// `max_payload` bounds a compressed message before and after inflating.
    pub(crate) fn new(inner: S, deflate: bool, max_payload: usize) -> Self {
        let inflating = deflate.then(|| {
            Box::new(Inflating {
                max: max_payload,
                raw: BytesMut::new(),
                ready: BytesMut::new(),
                message: Message::None,
                passthrough: false,
            })
        });
        WsIo { inner, inflating }
    }

    /// The connection itself, bypassing any inflating (for draining).
    pub(crate) fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

/// The message whose frames are arriving.
#[derive(Debug)]
enum Message {
    None,
    /// Uncompressed and fragmented: tungstenite reassembles it.
    Plain,
    /// Compressed: its payload so far (unmasked).
    Compressed {
        opcode: u8,
        data: Vec<u8>,
    },
}

#[derive(Debug)]
struct Inflating {
    max: usize,
    /// Read from the connection, not yet looked at.
    raw: BytesMut,
    /// For tungstenite.
    ready: BytesMut,
    message: Message,
    /// After a frame over max_payload: tungstenite refuses it on its header
    /// and reads no further, so bytes are no longer parsed (nor buffered).
    passthrough: bool,
}

/// A client frame's header.
struct Header {
    fin: bool,
    rsv1: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    header_len: usize,
    payload_len: u64,
}

/// Parses a frame header; `None` until it is complete.
fn parse_header(buf: &[u8]) -> Option<Header> {
    let (&b0, rest) = buf.split_first()?;
    let (&b1, rest) = rest.split_first()?;
    let (payload_len, ext) = match b1 & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
            2,
        ),
        127 => (u64::from_be_bytes(rest.get(..8)?.try_into().ok()?), 8),
        n => (u64::from(n), 0),
    };
    let masked = b1 & 0x80 != 0;
    let mask = if masked {
        Some(rest.get(ext..ext + 4)?.try_into().ok()?)
    } else {
        None
    };
    Some(Header {
        fin: b0 & 0x80 != 0,
        rsv1: b0 & 0x40 != 0,
        opcode: b0 & 0x0f,
        mask,
        header_len: 2 + ext + if masked { 4 } else { 0 },
        payload_len,
    })
}

fn invalid(e: InflateError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl Inflating {
    /// Moves what can be moved from `raw` to `ready`; `false` when more
    /// bytes are needed.
    fn step(&mut self) -> io::Result<bool> {
        if self.passthrough {
            let moved = !self.raw.is_empty();
            self.ready.unsplit(self.raw.split());
            return Ok(moved);
        }
        let Some(h) = parse_header(&self.raw) else {
            return Ok(false);
        };
        if h.payload_len > self.max as u64 {
            // tungstenite refuses it on its header (1009).
            self.passthrough = true;
            return Ok(true);
        }
        let total = h.header_len + h.payload_len as usize;
        if self.raw.len() < total {
            self.raw.reserve(total - self.raw.len());
            return Ok(false);
        }
        let data_frame = matches!(h.opcode, 0..=2);
        let in_compressed = matches!(self.message, Message::Compressed { .. });
        let starts = h.rsv1 && matches!(h.opcode, 1 | 2) && matches!(self.message, Message::None);
        let continues = h.opcode == 0 && in_compressed && !h.rsv1;
        if !(starts || continues) {
            if data_frame && in_compressed {
                // A new message, or RSV1 on a continuation, in the middle
                // of a compressed one.
                return Err(invalid(InflateError::Invalid));
            }
            // Tracked so that a continuation goes to the right message;
            // tungstenite judges whether the sequence is valid.
            if data_frame && !h.rsv1 {
                self.message = if h.fin { Message::None } else { Message::Plain };
            }
            let frame = self.raw.split_to(total);
            self.ready.unsplit(frame);
            return Ok(true);
        }
        let Some(mask) = h.mask else {
            // Client frames are masked (RFC 6455 §5.1).
            return Err(invalid(InflateError::Invalid));
        };
        let mut frame = self.raw.split_to(total);
        let payload = &mut frame[h.header_len..];
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i & 3];
        }
        if starts {
            self.message = Message::Compressed {
                opcode: h.opcode,
                data: Vec::new(),
            };
        }
        let Message::Compressed { opcode, data } = &mut self.message else {
            return Ok(true);
        };
        if data.len() + payload.len() > self.max {
            return Err(invalid(InflateError::TooLarge));
        }
        data.extend_from_slice(payload);
        if h.fin {
            let opcode = *opcode;
            let plain = deflate::inflate(data, self.max).map_err(invalid)?;
            self.message = Message::None;
            self.ready.reserve(plain.len() + 14);
            self.ready.put_u8(0x80 | opcode);
            // Masked with a zero key: tungstenite (as a server) wants masked
            // frames, and unmasking with zeros leaves the payload as it is.
            match plain.len() {
                n if n < 126 => self.ready.put_u8(0x80 | n as u8),
                n if n <= 0xffff => {
                    self.ready.put_u8(0x80 | 126);
                    self.ready.put_u16(n as u16);
                }
                n => {
                    self.ready.put_u8(0x80 | 127);
                    self.ready.put_u64(n as u64);
                }
            }
            self.ready.put_slice(&[0; 4]);
            self.ready.put_slice(&plain);
        }
        Ok(true)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WsIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(st) = this.inflating.as_deref_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        loop {
            if !st.ready.is_empty() {
                let n = buf.remaining().min(st.ready.len());
                buf.put_slice(&st.ready[..n]);
                st.ready.advance(n);
                if st.ready.is_empty() {
                    // Drained buffers are let go (a new one allocates
                    // nothing): one that grew for a large message would
                    // otherwise stay with an idle connection. (An emptied
                    // BytesMut still holds its whole allocation, however
                    // small its capacity() has become.)
                    st.ready = BytesMut::new();
                }
                return Poll::Ready(Ok(()));
            }
            if st.passthrough && st.raw.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            if st.step()? {
                continue;
            }
            if st.raw.is_empty() {
                st.raw = BytesMut::new();
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                // The end: what is left is an incomplete frame, for
                // tungstenite to find incomplete.
                st.passthrough = true;
                if st.raw.is_empty() {
                    return Poll::Ready(Ok(()));
                }
            }
            st.raw.extend_from_slice(read.filled());
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WsIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A masked client frame.
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut f = vec![first];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        f
    }

    async fn read_all(input: Vec<u8>, max: usize) -> io::Result<Vec<u8>> {
        let mut io = WsIo::new(&input[..], true, max);
        let mut out = Vec::new();
        io.read_to_end(&mut out).await?;
        Ok(out)
    }

    #[tokio::test]
    async fn a_compressed_message_becomes_one_plain_frame() {
        let text = "4".to_owned() + &"hello ".repeat(500);
        let c = deflate::compress(text.as_bytes());
        let (a, b) = c.split_at(c.len() / 2);
        let mut input = frame(0x40 | 0x01, a); // RSV1, text, not final
        input.extend(frame(0x89, b"")); // a ping in between
        input.extend(frame(0x80, b)); // the final continuation
        input.extend(frame(0x82, b"plain")); // binary, uncompressed
        let out = read_all(input, 10_000).await.unwrap();
        let ping = frame(0x89, b"");
        assert_eq!(&out[..ping.len()], &ping[..]);
        let rest = &out[ping.len()..];
        assert_eq!(rest[0], 0x81);
        assert_eq!(rest[1], 0x80 | 126);
        assert_eq!(u16::from_be_bytes([rest[2], rest[3]]) as usize, text.len());
        assert_eq!(&rest[4..8], &[0; 4]);
        assert_eq!(&rest[8..8 + text.len()], text.as_bytes());
        assert_eq!(&rest[8 + text.len()..], &frame(0x82, b"plain")[..]);
    }

    #[tokio::test]
    async fn buffers_are_released_after_a_large_message() {
        // Noise: the compressed frame is as large as the message.
        let big: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let input = frame(0xc2, &deflate::compress(&big));
        let mut io = WsIo::new(&input[..], true, 300_000);
        let mut out = vec![0; 300_000];
        let mut got = 0;
        while got < big.len() + 14 {
            got += io.read(&mut out[got..]).await.unwrap();
        }
        assert_eq!(&out[14..got], &big[..]);
        // The buffer the 200 KB message was handed on in holds no
        // allocation it could reuse for the next 100 KB: it was let go,
        // not just emptied. (The raw buffer is let go the same way, but
        // bytes' try_reclaim does not tell the two apart for it.)
        let st = io.inflating.as_deref_mut().unwrap();
        assert!(!st.ready.try_reclaim(100_000));
    }

    #[tokio::test]
    async fn a_bomb_is_too_large() {
        let bomb = deflate::compress(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 20_000, "{}", bomb.len());
        let e = read_all(frame(0xc2, &bomb), 20_000).await.unwrap_err();
        let inner = e.get_ref().and_then(|e| e.downcast_ref::<InflateError>());
        assert_eq!(inner, Some(&InflateError::TooLarge));
    }

    #[tokio::test]
    async fn a_new_message_inside_a_compressed_one_is_invalid() {
        let mut input = frame(0x41, &deflate::compress(b"4a"));
        input.extend(frame(0x81, b"4b"));
        let e = read_all(input, 1000).await.unwrap_err();
        let inner = e.get_ref().and_then(|e| e.downcast_ref::<InflateError>());
        assert_eq!(inner, Some(&InflateError::Invalid));
    }

    #[tokio::test]
    async fn without_deflate_bytes_pass_unchanged() {
        let input = frame(0xc1, b"whatever");
        let mut io = WsIo::new(&input[..], false, 10);
        let mut out = Vec::new();
        io.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, input);
    }
}
