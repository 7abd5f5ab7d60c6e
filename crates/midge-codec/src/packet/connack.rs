//! CONNACK (§3.2): the server's answer to CONNECT.

use bytes::{BufMut, BytesMut};

use super::{PacketType, ProtocolVersion};
use crate::error::{DecodeError, EncodeError};
use crate::properties::ConnAckProperties;
use crate::reason::ReasonCode;
use crate::wire::Reader;

/// A CONNACK packet. In 3.1/3.1.1 the reason code travels as the matching return code
/// (see [`ReasonCode::to_connack_return_code`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnAck {
    /// Whether the server resumed an existing session.
    pub session_present: bool,
    /// Success, or why the connection is refused.
    pub reason_code: ReasonCode,
    /// CONNACK properties (5.0).
    pub properties: ConnAckProperties,
}

impl ConnAck {
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let flags = r.u8()?;
        if flags & 0xfe != 0 {
            return Err(DecodeError::ConnAckReservedFlags(flags));
        }
        let code = r.u8()?;
        let reason_code = if version.is_v5() {
            ReasonCode::from_u8(code)
                .filter(|c| c.is_valid_for(PacketType::ConnAck))
                .ok_or(DecodeError::InvalidReasonCode {
                    packet: PacketType::ConnAck,
                    code,
                })?
        } else {
            ReasonCode::from_connack_return_code(code).ok_or(DecodeError::InvalidReturnCode {
                packet: PacketType::ConnAck,
                code,
            })?
        };
        let properties = if version.is_v5() {
            ConnAckProperties::decode(r)?
        } else {
            ConnAckProperties::default()
        };
        Ok(ConnAck {
            session_present: flags & 0x01 != 0,
            reason_code,
            properties,
        })
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if version.is_v5() {
            self.properties.check()?;
            Ok(2 + self.properties.block_len())
        } else {
            Ok(2)
        }
    }

    pub(crate) fn write_body(&self, version: ProtocolVersion, dst: &mut BytesMut) {
        dst.put_u8(u8::from(self.session_present));
        if version.is_v5() {
            dst.put_u8(self.reason_code as u8);
            self.properties.write(dst);
        } else {
            dst.put_u8(self.reason_code.to_connack_return_code());
        }
    }
}
