//! UNSUBSCRIBE (§3.10): topic filters to remove.

use bytes::{BufMut, BytesMut};

use super::{PacketType, ProtocolVersion, check_field, read_packet_id};
use crate::error::{DecodeError, EncodeError};
use crate::properties::UnsubscribeProperties;
use crate::topic::{PacketId, TopicFilter};
use crate::wire::{Reader, put_bytes};

/// An UNSUBSCRIBE packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet identifier, echoed in the UNSUBACK.
    pub packet_id: PacketId,
    /// At least one filter ([MQTT-3.10.3-2]).
    pub filters: Vec<TopicFilter>,
    /// Properties (5.0).
    pub properties: UnsubscribeProperties,
}

impl Unsubscribe {
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, PacketType::Unsubscribe)?;
        let properties = if version.is_v5() {
            UnsubscribeProperties::decode(r)?
        } else {
            UnsubscribeProperties::default()
        };
        let mut filters = Vec::new();
        while !r.is_empty() {
            filters.push(TopicFilter::new(r.string()?)?);
        }
        if filters.is_empty() {
            return Err(DecodeError::NoTopicFilters(PacketType::Unsubscribe));
        }
        Ok(Unsubscribe {
            packet_id,
            filters,
            properties,
        })
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::NoTopicFilters(PacketType::Unsubscribe));
        }
        let mut len = 2;
        if version.is_v5() {
            self.properties.check()?;
            len += self.properties.block_len();
        }
        for filter in &self.filters {
            check_field("topic filter", filter.len())?;
            len += 2 + filter.len();
        }
        Ok(len)
    }

    pub(crate) fn write_body(&self, version: ProtocolVersion, dst: &mut BytesMut) {
        dst.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.write(dst);
        }
        for filter in &self.filters {
            put_bytes(dst, filter.as_bytes());
        }
    }
}
