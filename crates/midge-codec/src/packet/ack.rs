//! PUBACK, PUBREC, PUBREL and PUBCOMP (§3.4–3.7): the four QoS acknowledgements share
//! one layout, so they share one struct; the [`super::Packet`] variant says which it is.

use bytes::{BufMut, BytesMut};

use super::{PacketType, ProtocolVersion, read_packet_id};
use crate::error::{DecodeError, EncodeError};
use crate::properties::AckProperties;
use crate::reason::ReasonCode;
use crate::topic::PacketId;
use crate::wire::Reader;

/// A PUBACK, PUBREC, PUBREL or PUBCOMP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The identifier of the PUBLISH being acknowledged.
    pub packet_id: PacketId,
    /// Outcome (5.0); always Success in 3.1.1.
    pub reason_code: ReasonCode,
    /// Properties (5.0).
    pub properties: AckProperties,
}

impl Ack {
    /// A successful acknowledgement of `packet_id`.
    pub fn new(packet_id: PacketId) -> Self {
        Ack {
            packet_id,
            reason_code: ReasonCode::Success,
            properties: AckProperties::default(),
        }
    }

    pub(crate) fn decode(
        r: &mut Reader,
        kind: PacketType,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, kind)?;
        let mut ack = Ack::new(packet_id);
        // 5.0: the reason code and the properties may be omitted (§3.4.2.1).
        if version.is_v5() && !r.is_empty() {
            let code = r.u8()?;
            ack.reason_code = ReasonCode::from_u8(code)
                .filter(|c| c.is_valid_for(kind))
                .ok_or(DecodeError::InvalidReasonCode { packet: kind, code })?;
            if !r.is_empty() {
                ack.properties = AckProperties::decode_for(r, kind)?;
            }
        }
        Ok(ack)
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if !version.is_v5() {
            return Ok(2);
        }
        self.properties.check()?;
        Ok(match (self.reason_code, self.properties.is_empty()) {
            (ReasonCode::Success, true) => 2,
            (_, true) => 3,
            (_, false) => 3 + self.properties.block_len(),
        })
    }

    pub(crate) fn write_body(&self, version: ProtocolVersion, dst: &mut BytesMut) {
        dst.put_u16(self.packet_id.get());
        if !version.is_v5() {
            return;
        }
        let empty = self.properties.is_empty();
        if self.reason_code != ReasonCode::Success || !empty {
            dst.put_u8(self.reason_code as u8);
        }
        if !empty {
            self.properties.write(dst);
        }
    }
}
