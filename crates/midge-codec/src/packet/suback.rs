//! SUBACK (§3.9): one reason code per filter of the SUBSCRIBE, in order.

use bytes::{BufMut, BytesMut};

use super::{PacketType, ProtocolVersion, read_packet_id};
use crate::error::{DecodeError, EncodeError};
use crate::properties::AckProperties;
use crate::reason::ReasonCode;
use crate::topic::PacketId;
use crate::wire::Reader;

/// A SUBACK packet. In 3.1/3.1.1 the return codes 0, 1, 2 and 0x80 map to
/// Success (granted QoS 0), GrantedQoS1, GrantedQoS2 and UnspecifiedError.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// The SUBSCRIBE's packet identifier ([MQTT-3.8.4-2]).
    pub packet_id: PacketId,
    /// One code per requested filter ([MQTT-3.9.3-1]).
    pub reason_codes: Vec<ReasonCode>,
    /// Properties (5.0).
    pub properties: AckProperties,
}

impl SubAck {
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, PacketType::SubAck)?;
        let properties = if version.is_v5() {
            AckProperties::decode_for(r, PacketType::SubAck)?
        } else {
            AckProperties::default()
        };
        let mut reason_codes = Vec::with_capacity(r.remaining());
        while !r.is_empty() {
            let code = r.u8()?;
            let reason = if version.is_v5() {
                ReasonCode::from_u8(code)
                    .filter(|c| c.is_valid_for(PacketType::SubAck))
                    .ok_or(DecodeError::InvalidReasonCode {
                        packet: PacketType::SubAck,
                        code,
                    })?
            } else {
                match code {
                    0 => ReasonCode::Success,
                    1 => ReasonCode::GrantedQoS1,
                    2 => ReasonCode::GrantedQoS2,
                    0x80 => ReasonCode::UnspecifiedError,
                    _ => {
                        return Err(DecodeError::InvalidReturnCode {
                            packet: PacketType::SubAck,
                            code,
                        });
                    }
                }
            };
            reason_codes.push(reason);
        }
        Ok(SubAck {
            packet_id,
            reason_codes,
            properties,
        })
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let mut len = 2 + self.reason_codes.len();
        if version.is_v5() {
            self.properties.check()?;
            len += self.properties.block_len();
        }
        Ok(len)
    }

    pub(crate) fn write_body(&self, version: ProtocolVersion, dst: &mut BytesMut) {
        dst.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.write(dst);
            for code in &self.reason_codes {
                dst.put_u8(*code as u8);
            }
        } else {
            for code in &self.reason_codes {
                dst.put_u8(code.to_suback_return_code());
            }
        }
    }
}
