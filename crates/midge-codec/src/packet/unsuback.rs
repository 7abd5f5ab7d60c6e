//! UNSUBACK (§3.11): in 5.0 one reason code per filter; in 3.1.1 just the packet id.

use bytes::{BufMut, BytesMut};

use super::{PacketType, ProtocolVersion, read_packet_id};
use crate::error::{DecodeError, EncodeError};
use crate::properties::AckProperties;
use crate::reason::ReasonCode;
use crate::topic::PacketId;
use crate::wire::Reader;

/// An UNSUBACK packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// The UNSUBSCRIBE's packet identifier ([MQTT-3.10.4-5]).
    pub packet_id: PacketId,
    /// One code per filter, in order (5.0; empty in 3.1.1).
    pub reason_codes: Vec<ReasonCode>,
    /// Properties (5.0).
    pub properties: AckProperties,
}

impl UnsubAck {
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, PacketType::UnsubAck)?;
        let mut ack = UnsubAck {
            packet_id,
            reason_codes: Vec::new(),
            properties: AckProperties::default(),
        };
        if version.is_v5() {
            ack.properties = AckProperties::decode_for(r, PacketType::UnsubAck)?;
            while !r.is_empty() {
                let code = r.u8()?;
                ack.reason_codes.push(
                    ReasonCode::from_u8(code)
                        .filter(|c| c.is_valid_for(PacketType::UnsubAck))
                        .ok_or(DecodeError::InvalidReasonCode {
                            packet: PacketType::UnsubAck,
                            code,
                        })?,
                );
            }
        }
        Ok(ack)
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if !version.is_v5() {
            return Ok(2);
        }
        self.properties.check()?;
        Ok(2 + self.properties.block_len() + self.reason_codes.len())
    }

    pub(crate) fn write_body(&self, version: ProtocolVersion, dst: &mut BytesMut) {
        dst.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.write(dst);
            for code in &self.reason_codes {
                dst.put_u8(*code as u8);
            }
        }
    }
}
