//! MessagePack as `notepack.io` 3 (the parser of the Node Redis adapter and
//! emitter) writes and reads it.
//!
//! The dialect, from notepack.io 3.0.1's `lib/encode.js` and `decode.js`:
//! - integers in the smallest format (non-negative ones unsigned), other
//!   numbers, `NaN` and `±Infinity` as float 64; `-0` as `0`;
//! - JS `undefined` as nil (and left out of objects);
//! - a `Date` as a msgpack timestamp (extension type -1: 32, 64 or 96 bits);
//! - `Buffer`, `ArrayBuffer` and typed arrays as bin;
//! - read but no longer written (notepack.io 2): `undefined` as fixext 1 of
//!   type 0, a `Date` as fixext 8 of type 0 (milliseconds, big-endian i64),
//!   an `ArrayBuffer` as ext 8/16/32 of type 0. Other extensions decode to
//!   `[type, Buffer]`.
//!
//! Written here rather than taken from `rmpv`: recent `rmpv` does bound depth
//! and preallocation, but it is not a dependency (and not ours to add here),
//! it copies every bin out of the input where we slice the input's `Bytes`,
//! and notepack's extensions (undefined, legacy dates, ArrayBuffer) would need
//! a second pass over its `Ext` values anyway.
//!
//! Decoding is bounded ([`Limits`]): input size, nesting depth, and the
//! number of values; no allocation is sized by a length read from the input
//! beyond what the rest of the input can hold. A Redis message is whole, so
//! input that ends inside a value is an error, not "need more".

use bytes::{BufMut, Bytes, BytesMut};

/// A decoded msgpack value.
///
/// Integers are normalised so that equal numbers compare equal whatever
/// format carried them: non-negative ones are [`Value::UInt`], negative ones
/// [`Value::Int`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Nil,
    /// JS `undefined`, as notepack.io 2 wrote it (fixext 1 of type 0).
    Undefined,
    Bool(bool),
    /// A non-negative integer.
    UInt(u64),
    /// A negative integer.
    Int(i64),
    F32(f32),
    F64(f64),
    /// A string; invalid UTF-8 is replaced by U+FFFD, as Node's
    /// `buffer.toString("utf8")` does.
    Str(String),
    Bin(Bytes),
    Array(Vec<Value>),
    /// A map, its entries in wire order (keys of any type, duplicates kept).
    Map(Vec<(Value, Value)>),
    /// A msgpack timestamp (extension -1), or a notepack.io 2 date.
    Timestamp(Timestamp),
    /// Any other extension: its type and data. Never type -1 with 4, 8 or
    /// 12 bytes, nor type 0 (those decode to the values above).
    Ext(i8, Bytes),
}

/// A point in time as the msgpack timestamp extension carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub(crate) secs: i64,
    /// Nanoseconds within the second, below 1 000 000 000.
    pub(crate) nanos: u32,
}

impl Timestamp {
    /// The instant `ms` milliseconds after the epoch (a JS date's value).
    pub(crate) fn from_millis(ms: i64) -> Self {
        Timestamp {
            secs: ms.div_euclid(1000),
            // rem_euclid(1000) is in 0..1000, so this fits.
            nanos: ms.rem_euclid(1000) as u32 * 1_000_000,
        }
    }

    /// The value `new Date(…)` gets in Node for this timestamp: whole
    /// milliseconds, truncated toward zero.
    pub(crate) fn millis(&self) -> i128 {
        let nanos = i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos);
        nanos / 1_000_000
    }
}

impl Value {
    /// The value under the string key `key` of a map (the last one, as in a
    /// JS object when a key repeats).
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a non-negative integer, also from a float holding one
    /// (JS has only numbers: `2.0` is `2`).
    pub(crate) fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::UInt(n) => Some(n),
            Value::F64(f) if f >= 0.0 && f.fract() == 0.0 && f < 18_446_744_073_709_551_616.0 => {
                Some(f as u64)
            }
            Value::F32(f) => Value::F64(f64::from(f)).as_u64(),
            _ => None,
        }
    }

    /// `nil` or JS `undefined`.
    pub(crate) fn is_nullish(&self) -> bool {
        matches!(self, Value::Nil | Value::Undefined)
    }
}

/// Bounds on what [`decode_with`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Largest input in bytes; default 16 MiB. Redis would carry 512 MB,
    /// but a Node server's clients send at most 1 MB per message by default
    /// (`maxHttpBufferSize`), and so do ours; this leaves room for what
    /// servers emit themselves.
    pub(crate) max_input: usize,
    /// Deepest nesting of arrays and maps; default 127, what serde_json
    /// accepts (its recursion limit), so that a message reads the same in
    /// either encoding and what socketgate re-encodes as JSON (a request, a
    /// response) parses again. An event on the bus sits 3 levels down
    /// (message, packet, data): arguments nested deeper than about 124
    /// levels are refused, where Node has no bound at all.
    pub(crate) max_depth: usize,
    /// Most values in one input (a map entry counts two); default 1 048 576.
    /// A value takes 40 bytes decoded, so this bounds a message's decoded
    /// size at about 40 MiB even for input of one-byte values.
    pub(crate) max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input: 16 << 20,
            max_depth: 127,
            max_items: 1 << 20,
        }
    }
}

/// Why input did not decode. Small and `Copy`: decode errors are counted
/// and logged, never built into messages on a hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("msgpack: the input ends inside a value")]
    Truncated,
    #[error("msgpack: {0} bytes after the value")]
    TrailingBytes(usize),
    #[error("msgpack: the reserved byte 0xc1")]
    Reserved,
    #[error("msgpack: an invalid timestamp")]
    InvalidTimestamp,
    #[error("msgpack: {0} bytes of input, over the limit")]
    TooLarge(usize),
    #[error("msgpack: nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("msgpack: more than {0} values")]
    TooManyItems(usize),
}

/// Decodes one value that must fill `input`, with the default [`Limits`].
/// Bins and extension data are slices of `input` (no copy).
pub(crate) fn decode(input: &Bytes) -> Result<Value, DecodeError> {
    decode_with(input, &Limits::default())
}

/// [`decode`] with other limits.
pub(crate) fn decode_with(input: &Bytes, limits: &Limits) -> Result<Value, DecodeError> {
    if input.len() > limits.max_input {
        return Err(DecodeError::TooLarge(input.len()));
    }
    let mut decoder = Decoder {
        input,
        pos: 0,
        items: 0,
        limits,
    };
    let value = decoder.value(0)?;
    match input.len() - decoder.pos {
        0 => Ok(value),
        rest => Err(DecodeError::TrailingBytes(rest)),
    }
}

struct Decoder<'a> {
    input: &'a Bytes,
    pos: usize,
    /// Values decoded so far.
    items: usize,
    limits: &'a Limits,
}

impl Decoder<'_> {
    fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        let bytes = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        let bytes = self.input.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<usize, DecodeError> {
        Ok(usize::from(u16::from_be_bytes(self.array()?)))
    }

    fn u32(&mut self) -> Result<usize, DecodeError> {
        // usize is at least 32 bits on every target this crate builds for;
        // saturating keeps a 16-bit target honest (it reads as truncated).
        Ok(usize::try_from(u32::from_be_bytes(self.array()?)).unwrap_or(usize::MAX))
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        self.items += 1;
        if self.items > self.limits.max_items {
            return Err(DecodeError::TooManyItems(self.limits.max_items));
        }
        let marker = self.u8()?;
        Ok(match marker {
            0x00..=0x7f => Value::UInt(u64::from(marker)),
            0x80..=0x8f => self.map(usize::from(marker & 0x0f), depth)?,
            0x90..=0x9f => self.seq(usize::from(marker & 0x0f), depth)?,
            0xa0..=0xbf => self.str(usize::from(marker & 0x1f))?,
            0xc0 => Value::Nil,
            0xc1 => return Err(DecodeError::Reserved),
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4 => {
                let n = usize::from(self.u8()?);
                Value::Bin(self.bytes(n)?)
            }
            0xc5 => {
                let n = self.u16()?;
                Value::Bin(self.bytes(n)?)
            }
            0xc6 => {
                let n = self.u32()?;
                Value::Bin(self.bytes(n)?)
            }
            0xc7 => {
                let n = usize::from(self.u8()?);
                self.ext(n, true)?
            }
            0xc8 => {
                let n = self.u16()?;
                self.ext(n, false)?
            }
            0xc9 => {
                let n = self.u32()?;
                self.ext(n, false)?
            }
            0xca => Value::F32(f32::from_be_bytes(self.array()?)),
            0xcb => Value::F64(f64::from_be_bytes(self.array()?)),
            0xcc => Value::UInt(u64::from(self.u8()?)),
            0xcd => Value::UInt(u64::from(u16::from_be_bytes(self.array()?))),
            0xce => Value::UInt(u64::from(u32::from_be_bytes(self.array()?))),
            0xcf => Value::UInt(u64::from_be_bytes(self.array()?)),
            0xd0 => int(i64::from(i8::from_be_bytes(self.array()?))),
            0xd1 => int(i64::from(i16::from_be_bytes(self.array()?))),
            0xd2 => int(i64::from(i32::from_be_bytes(self.array()?))),
            0xd3 => int(i64::from_be_bytes(self.array()?)),
            0xd4 => self.fixext(1)?,
            0xd5 => self.fixext(2)?,
            0xd6 => self.fixext(4)?,
            0xd7 => self.fixext(8)?,
            0xd8 => self.fixext(16)?,
            0xd9 => {
                let n = usize::from(self.u8()?);
                self.str(n)?
            }
            0xda => {
                let n = self.u16()?;
                self.str(n)?
            }
            0xdb => {
                let n = self.u32()?;
                self.str(n)?
            }
            0xdc => {
                let n = self.u16()?;
                self.seq(n, depth)?
            }
            0xdd => {
                let n = self.u32()?;
                self.seq(n, depth)?
            }
            0xde => {
                let n = self.u16()?;
                self.map(n, depth)?
            }
            0xdf => {
                let n = self.u32()?;
                self.map(n, depth)?
            }
            0xe0..=0xff => Value::Int(i64::from(marker as i8)),
        })
    }

    fn str(&mut self, n: usize) -> Result<Value, DecodeError> {
        let bytes = self.take(n)?;
        Ok(Value::Str(String::from_utf8_lossy(bytes).into_owned()))
    }

    fn seq(&mut self, n: usize, depth: usize) -> Result<Value, DecodeError> {
        let depth = self.deeper(depth)?;
        // Every element takes at least one byte: no more room is reserved
        // than the rest of the input could fill.
        let mut items = Vec::with_capacity(n.min(self.remaining()));
        for _ in 0..n {
            items.push(self.value(depth)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Value, DecodeError> {
        let depth = self.deeper(depth)?;
        // An entry takes at least two bytes.
        let mut entries = Vec::with_capacity(n.min(self.remaining() / 2));
        for _ in 0..n {
            let key = self.value(depth)?;
            let value = self.value(depth)?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }

    fn deeper(&self, depth: usize) -> Result<usize, DecodeError> {
        if depth >= self.limits.max_depth {
            return Err(DecodeError::TooDeep(self.limits.max_depth));
        }
        Ok(depth + 1)
    }

    /// fixext 1, 2, 4, 8 or 16, after the marker.
    fn fixext(&mut self, n: usize) -> Result<Value, DecodeError> {
        let ty = i8::from_be_bytes(self.array()?);
        let data = self.bytes(n)?;
        Ok(match (ty, n) {
            // notepack.io 2's undefined: one ignored byte.
            (0, 1) => Value::Undefined,
            // notepack.io 2's Date: milliseconds as a big-endian i64.
            (0, 8) => {
                Value::Timestamp(Timestamp::from_millis(i64::from_be_bytes(be_array(&data)?)))
            }
            (-1, 4) => Value::Timestamp(Timestamp {
                secs: i64::from(u32::from_be_bytes(be_array(&data)?)),
                nanos: 0,
            }),
            (-1, 8) => {
                let word = u64::from_be_bytes(be_array(&data)?);
                timestamp((word & 0x3_ffff_ffff) as i64, (word >> 34) as u32)?
            }
            _ => Value::Ext(ty, data),
        })
    }

    /// ext 8, 16 or 32 of `n` bytes, after the length.
    fn ext(&mut self, n: usize, ext8: bool) -> Result<Value, DecodeError> {
        let ty = i8::from_be_bytes(self.array()?);
        let data = self.bytes(n)?;
        Ok(match ty {
            // notepack.io 2's ArrayBuffer, in any of the three formats.
            0 => Value::Bin(data),
            // notepack.io reads ext 8 of type -1 as a 96-bit timestamp
            // whatever its length says; only the right length is accepted.
            -1 if ext8 => {
                let [n0, n1, n2, n3, s @ ..] = be_array::<12>(&data)?;
                timestamp(i64::from_be_bytes(s), u32::from_be_bytes([n0, n1, n2, n3]))?
            }
            _ => Value::Ext(ty, data),
        })
    }
}

fn be_array<const N: usize>(data: &[u8]) -> Result<[u8; N], DecodeError> {
    data.try_into().map_err(|_| DecodeError::InvalidTimestamp)
}

fn timestamp(secs: i64, nanos: u32) -> Result<Value, DecodeError> {
    if nanos >= 1_000_000_000 {
        return Err(DecodeError::InvalidTimestamp);
    }
    Ok(Value::Timestamp(Timestamp { secs, nanos }))
}

/// A signed integer in its normalised form.
fn int(n: i64) -> Value {
    match u64::try_from(n) {
        Ok(n) => Value::UInt(n),
        Err(_) => Value::Int(n),
    }
}

/// Appends `value` in the smallest format, as notepack.io does; what
/// [`decode`] returns encodes to bytes that decode to an equal value.
///
/// An [`Value::Ext`] that notepack.io would read as something else (type 0,
/// type -1 of 4, 8 or 12 bytes) is written in a format it reads as an
/// extension where one exists (ext 16 for type -1); [`decode`] never
/// returns those.
pub(crate) fn encode(value: &Value, out: &mut BytesMut) {
    match value {
        Value::Nil => write_nil(out),
        Value::Undefined => out.put_slice(&[0xd4, 0x00, 0x00]),
        Value::Bool(b) => write_bool(out, *b),
        Value::UInt(n) => write_uint(out, *n),
        Value::Int(n) => write_int(out, *n),
        Value::F32(f) => {
            out.put_u8(0xca);
            out.put_f32(*f);
        }
        Value::F64(f) => write_f64(out, *f),
        Value::Str(s) => write_str(out, s),
        Value::Bin(b) => write_bin(out, b),
        Value::Array(items) => {
            write_array_len(out, items.len());
            for item in items {
                encode(item, out);
            }
        }
        Value::Map(entries) => {
            write_map_len(out, entries.len());
            for (k, v) in entries {
                encode(k, out);
                encode(v, out);
            }
        }
        Value::Timestamp(t) => write_timestamp(out, *t),
        Value::Ext(ty, data) => write_ext(out, *ty, data),
    }
}

/// `value` encoded into a new buffer.
pub(crate) fn to_bytes(value: &Value) -> Bytes {
    let mut out = BytesMut::new();
    encode(value, &mut out);
    out.freeze()
}

pub(crate) fn write_nil(out: &mut BytesMut) {
    out.put_u8(0xc0);
}

pub(crate) fn write_bool(out: &mut BytesMut, b: bool) {
    out.put_u8(if b { 0xc3 } else { 0xc2 });
}

pub(crate) fn write_uint(out: &mut BytesMut, n: u64) {
    if n < 0x80 {
        out.put_u8(n as u8);
    } else if n < 0x100 {
        out.put_slice(&[0xcc, n as u8]);
    } else if n < 0x1_0000 {
        out.put_u8(0xcd);
        out.put_u16(n as u16);
    } else if n < 0x1_0000_0000 {
        out.put_u8(0xce);
        out.put_u32(n as u32);
    } else {
        out.put_u8(0xcf);
        out.put_u64(n);
    }
}

/// A signed integer; non-negative ones take the unsigned formats, as in
/// notepack.io.
pub(crate) fn write_int(out: &mut BytesMut, n: i64) {
    if let Ok(n) = u64::try_from(n) {
        write_uint(out, n);
    } else if n >= -0x20 {
        out.put_u8(n as u8);
    } else if n >= -0x80 {
        out.put_u8(0xd0);
        out.put_i8(n as i8);
    } else if n >= -0x8000 {
        out.put_u8(0xd1);
        out.put_i16(n as i16);
    } else if n >= -0x8000_0000 {
        out.put_u8(0xd2);
        out.put_i32(n as i32);
    } else {
        out.put_u8(0xd3);
        out.put_i64(n);
    }
}

/// A JS number: integral values in [-2^63, 2^64) as integers, everything
/// else (fractions, `NaN`, `±Infinity`) as float 64, as notepack.io writes
/// them (it keeps the integer formats sane in that range).
pub(crate) fn write_number(out: &mut BytesMut, f: f64) {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    if f.fract() == 0.0 && (0.0..TWO_64).contains(&f) {
        // `-0.0` lands here too and is written as 0, as in notepack.io.
        write_uint(out, f as u64);
    } else if f.fract() == 0.0 && (-TWO_63..0.0).contains(&f) {
        write_int(out, f as i64);
    } else {
        write_f64(out, f);
    }
}

pub(crate) fn write_f64(out: &mut BytesMut, f: f64) {
    out.put_u8(0xcb);
    out.put_f64(f);
}

pub(crate) fn write_str(out: &mut BytesMut, s: &str) {
    let n = s.len();
    if n < 0x20 {
        out.put_u8(0xa0 | n as u8);
    } else if n < 0x100 {
        out.put_slice(&[0xd9, n as u8]);
    } else if n < 0x1_0000 {
        out.put_u8(0xda);
        out.put_u16(n as u16);
    } else {
        out.put_u8(0xdb);
        out.put_u32(len32(n));
    }
    out.put_slice(s.as_bytes());
}

pub(crate) fn write_bin(out: &mut BytesMut, b: &[u8]) {
    let n = b.len();
    if n < 0x100 {
        out.put_slice(&[0xc4, n as u8]);
    } else if n < 0x1_0000 {
        out.put_u8(0xc5);
        out.put_u16(n as u16);
    } else {
        out.put_u8(0xc6);
        out.put_u32(len32(n));
    }
    out.put_slice(b);
}

pub(crate) fn write_array_len(out: &mut BytesMut, n: usize) {
    if n < 0x10 {
        out.put_u8(0x90 | n as u8);
    } else if n < 0x1_0000 {
        out.put_u8(0xdc);
        out.put_u16(n as u16);
    } else {
        out.put_u8(0xdd);
        out.put_u32(len32(n));
    }
}

pub(crate) fn write_map_len(out: &mut BytesMut, n: usize) {
    if n < 0x10 {
        out.put_u8(0x80 | n as u8);
    } else if n < 0x1_0000 {
        out.put_u8(0xde);
        out.put_u16(n as u16);
    } else {
        out.put_u8(0xdf);
        out.put_u32(len32(n));
    }
}

/// A msgpack timestamp in the smallest of its three formats.
pub(crate) fn write_timestamp(out: &mut BytesMut, t: Timestamp) {
    match u64::try_from(t.secs) {
        Ok(secs) if t.nanos == 0 && secs <= u64::from(u32::MAX) => {
            out.put_slice(&[0xd6, 0xff]);
            out.put_u32(secs as u32);
        }
        Ok(secs) if secs < 1 << 34 => {
            out.put_slice(&[0xd7, 0xff]);
            out.put_u64(u64::from(t.nanos) << 34 | secs);
        }
        _ => {
            out.put_slice(&[0xc7, 12, 0xff]);
            out.put_u32(t.nanos);
            out.put_i64(t.secs);
        }
    }
}

fn write_ext(out: &mut BytesMut, ty: i8, data: &[u8]) {
    let n = data.len();
    let fixext = match n {
        1 => Some(0xd4),
        2 => Some(0xd5),
        4 => Some(0xd6),
        8 => Some(0xd7),
        16 => Some(0xd8),
        _ => None,
    };
    // Keep clear of the formats notepack.io reads as something else:
    // type -1 in fixext 4/8 or ext 8 is a timestamp, type 0 in fixext 1/8 is
    // undefined or a date.
    let special = match ty {
        -1 => matches!(n, 4 | 8) || fixext.is_none(),
        0 => matches!(n, 1 | 8),
        _ => false,
    };
    match fixext {
        Some(marker) if !special => out.put_u8(marker),
        _ if n < 0x100 && !special => out.put_slice(&[0xc7, n as u8]),
        _ if n < 0x1_0000 => {
            out.put_u8(0xc8);
            out.put_u16(n as u16);
        }
        _ => {
            out.put_u8(0xc9);
            out.put_u32(len32(n));
        }
    }
    out.put_i8(ty);
    out.put_slice(data);
}

/// A length for a 32-bit length field. msgpack cannot say more; our own
/// messages stay far below (a Redis message is at most 512 MB).
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Bytes from hex text (whitespace ignored); the wire tests use it too.
    pub(crate) fn hex(s: &str) -> Bytes {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
            .into()
    }

    fn dec(s: &str) -> Result<Value, DecodeError> {
        decode(&hex(s))
    }

    fn enc(v: &Value) -> Bytes {
        to_bytes(v)
    }

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn decodes_scalars() {
        assert_eq!(dec("c0"), Ok(Value::Nil));
        assert_eq!(dec("c2"), Ok(Value::Bool(false)));
        assert_eq!(dec("c3"), Ok(Value::Bool(true)));
        assert_eq!(dec("7f"), Ok(Value::UInt(127)));
        assert_eq!(dec("e0"), Ok(Value::Int(-32)));
        assert_eq!(dec("ff"), Ok(Value::Int(-1)));
        assert_eq!(dec("cc ff"), Ok(Value::UInt(255)));
        assert_eq!(dec("cd 01 00"), Ok(Value::UInt(256)));
        assert_eq!(dec("ce 00 01 00 00"), Ok(Value::UInt(65536)));
        assert_eq!(dec("cf ff ff ff ff ff ff ff ff"), Ok(Value::UInt(u64::MAX)));
        assert_eq!(dec("d0 80"), Ok(Value::Int(-128)));
        // A positive number in a signed format is the same number.
        assert_eq!(dec("d0 05"), Ok(Value::UInt(5)));
        assert_eq!(dec("d1 ff 7f"), Ok(Value::Int(-129)));
        assert_eq!(dec("d2 80 00 00 00"), Ok(Value::Int(i64::from(i32::MIN))));
        assert_eq!(dec("d3 80 00 00 00 00 00 00 00"), Ok(Value::Int(i64::MIN)));
        assert_eq!(dec("ca 3f c0 00 00"), Ok(Value::F32(1.5)));
        assert_eq!(dec("cb 3f b9 99 99 99 99 99 9a"), Ok(Value::F64(0.1)));
        assert_eq!(dec("a3 61 62 63"), Ok(s("abc")));
        assert_eq!(dec("d9 02 c3 a9"), Ok(s("é")));
        assert_eq!(dec("da 00 01 78"), Ok(s("x")));
        assert_eq!(dec("db 00 00 00 00"), Ok(s("")));
        // Invalid UTF-8 is replaced, as Node does.
        assert_eq!(dec("a2 ff 41"), Ok(s("\u{fffd}A")));
        assert_eq!(dec("c4 02 01 02"), Ok(Value::Bin(hex("0102"))));
        assert_eq!(dec("c5 00 01 09"), Ok(Value::Bin(hex("09"))));
        assert_eq!(dec("c6 00 00 00 00"), Ok(Value::Bin(Bytes::new())));
    }

    #[test]
    fn decodes_containers() {
        assert_eq!(
            dec("93 01 a1 61 c0"),
            Ok(Value::Array(vec![Value::UInt(1), s("a"), Value::Nil]))
        );
        assert_eq!(dec("dc 00 00"), Ok(Value::Array(vec![])));
        assert_eq!(
            dec("dd 00 00 00 01 c3"),
            Ok(Value::Array(vec![Value::Bool(true)]))
        );
        let map = dec("82 a1 61 01 01 a1 62").unwrap();
        assert_eq!(
            map,
            Value::Map(vec![(s("a"), Value::UInt(1)), (Value::UInt(1), s("b"))])
        );
        assert_eq!(map.get("a"), Some(&Value::UInt(1)));
        assert_eq!(map.get("b"), None);
        // A repeated key: the last one counts, as in a JS object.
        assert_eq!(
            dec("82 a1 61 01 a1 61 02").unwrap().get("a"),
            Some(&Value::UInt(2))
        );
        assert_eq!(dec("de 00 00"), Ok(Value::Map(vec![])));
        assert_eq!(dec("df 00 00 00 00"), Ok(Value::Map(vec![])));
    }

    #[test]
    fn decodes_notepack_extensions() {
        // notepack.io 2's undefined, Date and ArrayBuffer.
        assert_eq!(dec("d4 00 00"), Ok(Value::Undefined));
        let t = Value::Timestamp(Timestamp {
            secs: 1_704_164_645,
            nanos: 678_000_000,
        });
        assert_eq!(dec("d7 00 00 00 01 8c c8 20 db 2e"), Ok(t.clone()));
        assert_eq!(dec("c7 03 00 01 02 03"), Ok(Value::Bin(hex("010203"))));
        assert_eq!(dec("c8 00 01 00 09"), Ok(Value::Bin(hex("09"))));
        assert_eq!(dec("c9 00 00 00 00 00"), Ok(Value::Bin(Bytes::new())));
        // Timestamps 32, 64 and 96, as notepack.io 3 writes Dates.
        assert_eq!(
            dec("d6 ff 65 53 f1 00"),
            Ok(Value::Timestamp(Timestamp::from_millis(1_700_000_000_000)))
        );
        assert_eq!(dec("d7 ff a1 a5 d6 00 65 93 7d 25"), Ok(t));
        assert_eq!(
            dec("c7 0c ff 3b 8b 87 c0 ff ff ff ff ff ff ff ff"),
            Ok(Value::Timestamp(Timestamp::from_millis(-1)))
        );
        // Other extensions are kept as they are.
        assert_eq!(dec("d4 05 aa"), Ok(Value::Ext(5, hex("aa"))));
        assert_eq!(dec("d5 00 01 02"), Ok(Value::Ext(0, hex("0102"))));
        assert_eq!(dec("c7 01 7f 01"), Ok(Value::Ext(127, hex("01"))));
        assert_eq!(dec("c8 00 01 ff 01"), Ok(Value::Ext(-1, hex("01"))));
    }

    #[test]
    fn refuses_malformed_input() {
        use DecodeError::*;
        assert_eq!(dec(""), Err(Truncated));
        assert_eq!(dec("c1"), Err(Reserved));
        assert_eq!(dec("01 02"), Err(TrailingBytes(1)));
        assert_eq!(dec("cd 01"), Err(Truncated));
        assert_eq!(dec("a3 61 62"), Err(Truncated));
        assert_eq!(dec("c4 05 01"), Err(Truncated));
        assert_eq!(dec("92 01"), Err(Truncated));
        assert_eq!(dec("81 01"), Err(Truncated));
        assert_eq!(dec("d7 ff"), Err(Truncated));
        // ext 8 of type -1 must be a 96-bit timestamp.
        assert_eq!(dec("c7 04 ff 00 00 00 00"), Err(InvalidTimestamp));
        // Nanoseconds past the second.
        assert_eq!(
            dec("c7 0c ff 3b 9a ca 00 00 00 00 00 00 00 00 00"),
            Err(InvalidTimestamp)
        );
        assert_eq!(dec("d7 ff ee 6b 28 00 00 00 00 00"), Err(InvalidTimestamp));
    }

    #[test]
    fn hostile_lengths_allocate_nothing_up_front() {
        // 4 billion elements announced, none there: refused as truncated
        // after reserving nothing.
        assert_eq!(dec("dd ff ff ff ff"), Err(DecodeError::Truncated));
        assert_eq!(dec("df ff ff ff ff"), Err(DecodeError::Truncated));
        assert_eq!(dec("c6 ff ff ff ff"), Err(DecodeError::Truncated));
        assert_eq!(dec("db ff ff ff ff"), Err(DecodeError::Truncated));
        assert_eq!(dec("c9 ff ff ff ff 05"), Err(DecodeError::Truncated));
    }

    #[test]
    fn limits_hold() {
        let limits = Limits {
            max_input: 8,
            max_depth: 2,
            max_items: 4,
        };
        let d = |s: &str| decode_with(&hex(s), &limits);
        assert_eq!(
            d("91 91 01"),
            Ok(Value::Array(vec![Value::Array(vec![Value::UInt(1)])]))
        );
        assert_eq!(d("91 91 91 01"), Err(DecodeError::TooDeep(2)));
        assert_eq!(d("94 01 02 03 04"), Err(DecodeError::TooManyItems(4)));
        assert_eq!(
            d("00 00 00 00 00 00 00 00 00"),
            Err(DecodeError::TooLarge(9))
        );
        // The default depth: 127 levels decode, 128 do not, and nothing
        // overflows the stack on the way.
        let mut deep = vec![0x91u8; 127];
        deep.push(0xc0);
        assert!(decode(&Bytes::from(deep.clone())).is_ok());
        deep.insert(0, 0x91);
        assert_eq!(decode(&Bytes::from(deep)), Err(DecodeError::TooDeep(127)));
        let deeper = Bytes::from(vec![0x91u8; 100_000]);
        assert_eq!(decode(&deeper), Err(DecodeError::TooDeep(127)));
    }

    #[test]
    fn encodes_as_notepack_does() {
        let cases: &[(Value, &str)] = &[
            (Value::Nil, "c0"),
            (Value::Undefined, "d4 00 00"),
            (Value::Bool(true), "c3"),
            (Value::UInt(0), "00"),
            (Value::UInt(127), "7f"),
            (Value::UInt(128), "cc 80"),
            (Value::UInt(255), "cc ff"),
            (Value::UInt(256), "cd 01 00"),
            (Value::UInt(65536), "ce 00 01 00 00"),
            (Value::UInt(1 << 40), "cf 00 00 01 00 00 00 00 00"),
            (Value::Int(-1), "ff"),
            (Value::Int(-32), "e0"),
            (Value::Int(-33), "d0 df"),
            (Value::Int(-129), "d1 ff 7f"),
            (Value::Int(-32769), "d2 ff ff 7f ff"),
            (Value::Int(-(1 << 40)), "d3 ff ff ff 00 00 00 00 00"),
            (Value::F64(0.1), "cb 3f b9 99 99 99 99 99 9a"),
            (Value::F32(1.5), "ca 3f c0 00 00"),
            (s("abc"), "a3 61 62 63"),
            (Value::Bin(hex("0102")), "c4 02 01 02"),
            (Value::Array(vec![Value::UInt(1), Value::Nil]), "92 01 c0"),
            (Value::Map(vec![(s("a"), Value::UInt(1))]), "81 a1 61 01"),
            (
                Value::Timestamp(Timestamp::from_millis(1_700_000_000_000)),
                "d6 ff 65 53 f1 00",
            ),
            (
                Value::Timestamp(Timestamp::from_millis(1_704_164_645_678)),
                "d7 ff a1 a5 d6 00 65 93 7d 25",
            ),
            (
                Value::Timestamp(Timestamp::from_millis(-1)),
                "c7 0c ff 3b 8b 87 c0 ff ff ff ff ff ff ff ff",
            ),
            (Value::Ext(5, hex("aa")), "d4 05 aa"),
            (Value::Ext(5, hex("aabbcc")), "c7 03 05 aa bb cc"),
            // Formats notepack.io would read as something else are avoided.
            (Value::Ext(-1, hex("01")), "d4 ff 01"),
            (Value::Ext(-1, hex("010203")), "c8 00 03 ff 01 02 03"),
            (Value::Ext(-1, hex("01020304")), "c8 00 04 ff 01 02 03 04"),
            (Value::Ext(0, hex("0102")), "d5 00 01 02"),
        ];
        for (value, wire) in cases {
            assert_eq!(enc(value), hex(wire), "{value:?}");
            assert_eq!(decode(&hex(wire)).as_ref(), Ok(value), "{wire}");
        }
        let long = "x".repeat(40);
        assert_eq!(&enc(&s(&long))[..2], &[0xd9, 40]);
        assert_eq!(&enc(&s(&"y".repeat(300)))[..3], &[0xda, 0x01, 0x2c]);
        assert_eq!(
            &enc(&Value::Bin(vec![0u8; 300].into()))[..3],
            &[0xc5, 0x01, 0x2c]
        );
        assert_eq!(
            &enc(&Value::Array(vec![Value::Nil; 16]))[..3],
            &[0xdc, 0x00, 0x10]
        );
    }

    #[test]
    fn numbers_as_js_numbers() {
        let num = |f: f64| {
            let mut out = BytesMut::new();
            write_number(&mut out, f);
            out.freeze()
        };
        assert_eq!(num(1.0), hex("01"));
        assert_eq!(num(-0.0), hex("00"));
        assert_eq!(num(-3.0), hex("fd"));
        assert_eq!(num(2.5), hex("cb 40 04 00 00 00 00 00 00"));
        assert_eq!(num(f64::NAN), hex("cb 7f f8 00 00 00 00 00 00"));
        assert_eq!(num(f64::INFINITY), hex("cb 7f f0 00 00 00 00 00 00"));
        assert_eq!(num(1e19), hex("cf 8a c7 23 04 89 e8 00 00"));
        assert_eq!(num(-(2f64.powi(62))), hex("d3 c0 00 00 00 00 00 00 00"));
        // From 2^64 on notepack.io writes wrapped garbage into uint 64; the
        // number itself is kept here.
        assert_eq!(num(1e20), hex("cb 44 15 af 1d 78 b5 8c 40"));
    }
}
