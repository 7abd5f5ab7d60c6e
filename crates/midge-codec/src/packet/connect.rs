//! CONNECT (§3.1): the first packet of every connection, and the one that fixes the
//! protocol version for the rest of it.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use super::{ProtocolVersion, check_field};
use crate::error::{DecodeError, EncodeError};
use crate::properties::{ConnectProperties, WillProperties};
use crate::topic::{QoS, TopicName};
use crate::wire::{Reader, put_bytes};

/// A CONNECT packet.
#[derive(Clone, PartialEq, Eq)]
pub struct Connect {
    /// The protocol version the client speaks (protocol name and level).
    pub protocol: ProtocolVersion,
    /// Clean Start (5.0) / Clean Session (3.1.1): discard any existing session.
    pub clean_start: bool,
    /// Keep alive in seconds; 0 turns it off.
    pub keep_alive: u16,
    /// The client identifier; may be empty (the server assigns one or refuses).
    pub client_id: ByteString,
    /// The will message, if the Will Flag is set.
    pub will: Option<LastWill>,
    /// User name, if the User Name Flag is set.
    pub username: Option<ByteString>,
    /// Password (binary data), if the Password Flag is set.
    pub password: Option<Bytes>,
    /// CONNECT properties (5.0).
    pub properties: ConnectProperties,
}

/// The will message carried in CONNECT.
#[derive(Clone, PartialEq, Eq)]
pub struct LastWill {
    /// Topic the will is published to.
    pub topic: TopicName,
    /// The will's payload.
    pub payload: Bytes,
    /// QoS of the will publication.
    pub qos: QoS,
    /// Whether the will is published retained.
    pub retain: bool,
    /// Will properties (5.0).
    pub properties: WillProperties,
}

impl Connect {
    /// A CONNECT for `protocol` with `client_id`, clean start, keep alive 60 and nothing else.
    pub fn new(protocol: ProtocolVersion, client_id: impl Into<ByteString>) -> Self {
        Connect {
            protocol,
            clean_start: true,
            keep_alive: 60,
            client_id: client_id.into(),
            will: None,
            username: None,
            password: None,
            properties: ConnectProperties::default(),
        }
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let name = r.string()?;
        let level = r.u8()?;
        let protocol = match (&*name, level) {
            ("MQIsdp", 3) => ProtocolVersion::V31,
            ("MQTT", 4) => ProtocolVersion::V311,
            ("MQTT", 5) => ProtocolVersion::V5,
            ("MQTT" | "MQIsdp", _) => return Err(DecodeError::UnsupportedProtocolLevel(level)),
            _ => return Err(DecodeError::InvalidProtocolName(name.to_string())),
        };
        let flags = r.u8()?;
        if flags & 0x01 != 0 {
            return Err(DecodeError::ConnectReservedFlag);
        }
        let will_flag = flags & 0x04 != 0;
        let will_qos = (flags >> 3) & 0x03;
        let will_retain = flags & 0x20 != 0;
        let has_password = flags & 0x40 != 0;
        let has_username = flags & 0x80 != 0;
        if !will_flag && (will_qos != 0 || will_retain) {
            return Err(DecodeError::WillFlagsWithoutWill);
        }
        let will_qos = QoS::from_u8(will_qos)?;
        if has_password && !has_username && !protocol.is_v5() {
            return Err(DecodeError::PasswordWithoutUsername);
        }
        let keep_alive = r.u16()?;
        let properties = if protocol.is_v5() {
            ConnectProperties::decode(r)?
        } else {
            ConnectProperties::default()
        };
        let client_id = r.string()?;
        let will = if will_flag {
            let properties = if protocol.is_v5() {
                WillProperties::decode(r)?
            } else {
                WillProperties::default()
            };
            let topic = TopicName::new(r.string()?)?;
            if topic.is_empty() {
                return Err(DecodeError::EmptyTopicName);
            }
            Some(LastWill {
                topic,
                payload: r.binary()?,
                qos: will_qos,
                retain: will_retain,
                properties,
            })
        } else {
            None
        };
        let username = if has_username {
            Some(r.string()?)
        } else {
            None
        };
        let password = if has_password {
            Some(r.binary()?)
        } else {
            None
        };
        Ok(Connect {
            protocol,
            clean_start: flags & 0x02 != 0,
            keep_alive,
            client_id,
            will,
            username,
            password,
            properties,
        })
    }

    fn protocol_name(&self) -> &'static [u8] {
        match self.protocol {
            ProtocolVersion::V31 => b"MQIsdp",
            _ => b"MQTT",
        }
    }

    pub(crate) fn body_len(&self) -> Result<usize, EncodeError> {
        let v5 = self.protocol.is_v5();
        if !v5 && self.password.is_some() && self.username.is_none() {
            return Err(EncodeError::PasswordWithoutUsername);
        }
        check_field("client identifier", self.client_id.len())?;
        let mut len = 2 + self.protocol_name().len() + 1 + 1 + 2 + 2 + self.client_id.len();
        if v5 {
            self.properties.check()?;
            len += self.properties.block_len();
        }
        if let Some(will) = &self.will {
            check_field("will topic", will.topic.len())?;
            check_field("will payload", will.payload.len())?;
            len += 4 + will.topic.len() + will.payload.len();
            if v5 {
                will.properties.check()?;
                len += will.properties.block_len();
            }
        }
        if let Some(username) = &self.username {
            check_field("user name", username.len())?;
            len += 2 + username.len();
        }
        if let Some(password) = &self.password {
            check_field("password", password.len())?;
            len += 2 + password.len();
        }
        Ok(len)
    }

    pub(crate) fn write_body(&self, dst: &mut BytesMut) {
        let v5 = self.protocol.is_v5();
        put_bytes(dst, self.protocol_name());
        dst.put_u8(self.protocol as u8);
        let mut flags = 0u8;
        if self.clean_start {
            flags |= 0x02;
        }
        if let Some(will) = &self.will {
            flags |= 0x04 | (will.qos as u8) << 3;
            if will.retain {
                flags |= 0x20;
            }
        }
        if self.password.is_some() {
            flags |= 0x40;
        }
        if self.username.is_some() {
            flags |= 0x80;
        }
        dst.put_u8(flags);
        dst.put_u16(self.keep_alive);
        if v5 {
            self.properties.write(dst);
        }
        put_bytes(dst, self.client_id.as_bytes());
        if let Some(will) = &self.will {
            if v5 {
                will.properties.write(dst);
            }
            put_bytes(dst, will.topic.as_bytes());
            put_bytes(dst, &will.payload);
        }
        if let Some(username) = &self.username {
            put_bytes(dst, username.as_bytes());
        }
        if let Some(password) = &self.password {
            put_bytes(dst, password);
        }
    }
}

/// Passwords are never printed (STYLE.md rule 15).
impl fmt::Debug for Connect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connect")
            .field("protocol", &self.protocol)
            .field("clean_start", &self.clean_start)
            .field("keep_alive", &self.keep_alive)
            .field("client_id", &self.client_id)
            .field("will", &self.will)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<REDACTED>"))
            .field("properties", &self.properties)
            .finish()
    }
}

/// Payloads are shown by length only (STYLE.md rule 15).
impl fmt::Debug for LastWill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LastWill")
            .field("topic", &self.topic)
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("properties", &self.properties)
            .finish()
    }
}
