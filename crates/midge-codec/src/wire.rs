//! Wire primitives shared by every packet: the fixed header, Variable Byte Integers,
//! two-byte-length strings and binary data.
//!
//! Reading goes through [`Reader`], a cursor over one whole, already-framed packet body
//! held as [`Bytes`], so that strings and payloads are zero-copy slices of the read buffer.
//! Writing appends to a [`BytesMut`]. Packet modules build on these; nothing here knows
//! about packet types.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use crate::error::DecodeError;

/// Largest value a Variable Byte Integer can carry (four bytes of seven bits).
pub const MAX_VAR_INT: u32 = 268_435_455;

/// Decodes a Variable Byte Integer from the front of `src` without consuming it.
///
/// Returns `Ok(None)` when `src` ends before the integer does, and otherwise the value and
/// the number of bytes it took. Rejects integers longer than four bytes and encodings that
/// use more bytes than needed ([MQTT-1.5.5-1]).
pub fn peek_var_int(src: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for (i, &byte) in src.iter().enumerate() {
        if i == 4 {
            return Err(DecodeError::VarIntTooLong);
        }
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return Err(DecodeError::VarIntOverlong);
            }
            return Ok(Some((value, i + 1)));
        }
    }
    if src.len() >= 4 {
        return Err(DecodeError::VarIntTooLong);
    }
    Ok(None)
}

/// Number of bytes the Variable Byte Integer encoding of `value` takes.
pub(crate) fn var_int_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Appends `value` as a Variable Byte Integer. The caller guarantees `value <= MAX_VAR_INT`.
pub(crate) fn put_var_int(dst: &mut BytesMut, value: usize) {
    debug_assert!(value <= MAX_VAR_INT as usize);
    let mut value = value;
    loop {
        let mut byte = (value % 128) as u8;
        value /= 128;
        if value > 0 {
            byte |= 0x80;
        }
        dst.put_u8(byte);
        if value == 0 {
            break;
        }
    }
}

/// Appends a two-byte-length-prefixed string or binary field. The caller has checked the
/// length fits in 16 bits (see [`crate::EncodeError::FieldTooLong`]).
pub(crate) fn put_bytes(dst: &mut BytesMut, data: &[u8]) {
    dst.put_u16(data.len() as u16);
    dst.put_slice(data);
}

/// Validates the content of an MQTT UTF-8 Encoded String: well-formed UTF-8 (which also
/// excludes the surrogates U+D800..U+DFFF) and no U+0000 ([MQTT-1.5.4-1], [MQTT-1.5.4-2]).
pub(crate) fn validate_utf8(data: Bytes) -> Result<ByteString, DecodeError> {
    if std::str::from_utf8(&data).is_err() {
        return Err(DecodeError::InvalidUtf8);
    }
    if data.contains(&0) {
        return Err(DecodeError::NullCharacter);
    }
    // Cannot fail: checked just above.
    ByteString::try_from(data).map_err(|_| DecodeError::InvalidUtf8)
}

/// A cursor over one packet's bytes (after the fixed header). Every read checks that
/// the bytes are there: a field that runs past the end of the packet is a malformed
/// packet ("remaining length disagrees with the content"), never a panic.
#[derive(Debug)]
pub(crate) struct Reader {
    buf: Bytes,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Self {
        Self { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        if self.buf.is_empty() {
            return Err(DecodeError::Truncated);
        }
        Ok(self.buf.get_u8())
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        if self.buf.len() < 2 {
            return Err(DecodeError::Truncated);
        }
        Ok(self.buf.get_u16())
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        if self.buf.len() < 4 {
            return Err(DecodeError::Truncated);
        }
        Ok(self.buf.get_u32())
    }

    pub(crate) fn var_int(&mut self) -> Result<u32, DecodeError> {
        match peek_var_int(&self.buf)? {
            Some((value, len)) => {
                self.buf.advance(len);
                Ok(value)
            }
            None => Err(DecodeError::Truncated),
        }
    }

    /// Takes `len` bytes as a zero-copy slice.
    pub(crate) fn take(&mut self, len: usize) -> Result<Bytes, DecodeError> {
        if self.buf.len() < len {
            return Err(DecodeError::Truncated);
        }
        Ok(self.buf.split_to(len))
    }

    /// Takes everything left (a PUBLISH payload).
    pub(crate) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    /// Binary Data: a two-byte length and that many bytes.
    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u16()? as usize;
        self.take(len)
    }

    /// UTF-8 Encoded String: a two-byte length and that many bytes of valid MQTT UTF-8.
    pub(crate) fn string(&mut self) -> Result<ByteString, DecodeError> {
        let data = self.binary()?;
        validate_utf8(data)
    }

    /// Fails unless the packet has been read to its last byte.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.buf.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// conformance: v5 MQTT-1.5.5-1
    #[test]
    fn var_int_round_trip_at_boundaries() {
        for value in [
            0usize,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            268_435_455,
        ] {
            let mut buf = BytesMut::new();
            put_var_int(&mut buf, value);
            assert_eq!(buf.len(), var_int_len(value));
            assert_eq!(
                peek_var_int(&buf).unwrap(),
                Some((value as u32, var_int_len(value)))
            );
        }
    }

    /// conformance: v5 MQTT-1.5.5-1
    #[test]
    fn var_int_rejects_overlong_and_too_long() {
        assert_eq!(
            peek_var_int(&[0x80, 0x00]),
            Err(DecodeError::VarIntOverlong)
        );
        assert_eq!(
            peek_var_int(&[0xff, 0x80, 0x00]),
            Err(DecodeError::VarIntOverlong)
        );
        assert_eq!(
            peek_var_int(&[0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(DecodeError::VarIntTooLong)
        );
        assert_eq!(
            peek_var_int(&[0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::VarIntTooLong)
        );
        assert_eq!(peek_var_int(&[0xff, 0xff]), Ok(None));
        assert_eq!(peek_var_int(&[]), Ok(None));
    }

    /// conformance: v5 MQTT-1.5.4-1
    /// conformance: v5 MQTT-1.5.4-2
    /// conformance: v5 MQTT-1.5.4-3
    /// conformance: v3.1.1 MQTT-1.5.3-1
    /// conformance: v3.1.1 MQTT-1.5.3-2
    /// conformance: v3.1.1 MQTT-1.5.3-3
    #[test]
    fn strings_reject_bad_utf8_surrogates_and_null_but_keep_bom() {
        // CESU-style encoded surrogate U+D800.
        assert_eq!(
            validate_utf8(Bytes::from_static(&[0xed, 0xa0, 0x80])),
            Err(DecodeError::InvalidUtf8)
        );
        assert_eq!(
            validate_utf8(Bytes::from_static(&[0xc0, 0x80])),
            Err(DecodeError::InvalidUtf8)
        );
        assert_eq!(
            validate_utf8(Bytes::from_static(b"a\0b")),
            Err(DecodeError::NullCharacter)
        );
        let bom = validate_utf8(Bytes::from_static(&[0xef, 0xbb, 0xbf, b'a'])).unwrap();
        assert_eq!(&*bom, "\u{feff}a");
    }
}
