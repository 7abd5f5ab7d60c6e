//! DISCONNECT (§3.14): in 3.1.1 an empty packet from the client; in 5.0 either side
//! may send it, with a reason code.

use bytes::{BufMut, BytesMut};

use super::{PacketType, ProtocolVersion};
use crate::error::{DecodeError, EncodeError};
use crate::properties::DisconnectProperties;
use crate::reason::ReasonCode;
use crate::wire::Reader;

/// A DISCONNECT packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disconnect {
    /// Why the connection ends (5.0); Success is a normal disconnection.
    pub reason_code: ReasonCode,
    /// Properties (5.0).
    pub properties: DisconnectProperties,
}

impl Disconnect {
    /// A DISCONNECT with this reason and no properties.
    pub fn new(reason_code: ReasonCode) -> Self {
        Disconnect {
            reason_code,
            properties: DisconnectProperties::default(),
        }
    }

    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let mut disconnect = Disconnect::default();
        // 5.0: an empty body means Normal disconnection (§3.14.2.1).
        if version.is_v5() && !r.is_empty() {
            let code = r.u8()?;
            disconnect.reason_code = ReasonCode::from_u8(code)
                .filter(|c| c.is_valid_for(PacketType::Disconnect))
                .ok_or(DecodeError::InvalidReasonCode {
                    packet: PacketType::Disconnect,
                    code,
                })?;
            if !r.is_empty() {
                disconnect.properties = DisconnectProperties::decode(r)?;
            }
        }
        Ok(disconnect)
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if !version.is_v5() {
            return Ok(0);
        }
        self.properties.check()?;
        Ok(match (self.reason_code, self.properties.is_empty()) {
            (ReasonCode::Success, true) => 0,
            (_, true) => 1,
            (_, false) => 1 + self.properties.block_len(),
        })
    }

    pub(crate) fn write_body(&self, version: ProtocolVersion, dst: &mut BytesMut) {
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
