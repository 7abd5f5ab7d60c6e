//! AUTH (§3.15): the extended authentication exchange of 5.0.

use bytes::{BufMut, BytesMut};

use super::PacketType;
use crate::error::{DecodeError, EncodeError};
use crate::properties::AuthProperties;
use crate::reason::ReasonCode;
use crate::wire::Reader;

/// An AUTH packet (5.0 only).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    /// Success, Continue authentication or Re-authenticate.
    pub reason_code: ReasonCode,
    /// Properties: the method and data of the exchange.
    pub properties: AuthProperties,
}

impl Auth {
    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut auth = Auth::default();
        // An empty body means Success with no properties (§3.15.2.1).
        if !r.is_empty() {
            let code = r.u8()?;
            auth.reason_code = ReasonCode::from_u8(code)
                .filter(|c| c.is_valid_for(PacketType::Auth))
                .ok_or(DecodeError::InvalidReasonCode {
                    packet: PacketType::Auth,
                    code,
                })?;
            // Unlike the acks and DISCONNECT, AUTH has no "less than 2" rule: the Property
            // Length is omitted only together with the reason code.
            auth.properties = AuthProperties::decode(r)?;
        }
        Ok(auth)
    }

    pub(crate) fn body_len(&self) -> Result<usize, EncodeError> {
        self.properties.check()?;
        Ok(match (self.reason_code, self.properties.is_empty()) {
            (ReasonCode::Success, true) => 0,
            // The Property Length may be omitted only together with the reason code.
            _ => 1 + self.properties.block_len(),
        })
    }

    pub(crate) fn write_body(&self, dst: &mut BytesMut) {
        if self.reason_code != ReasonCode::Success || !self.properties.is_empty() {
            dst.put_u8(self.reason_code as u8);
            self.properties.write(dst);
        }
    }
}
