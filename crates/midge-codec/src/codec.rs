//! The incremental decoder: turns a growing read buffer into packets, one whole frame at
//! a time, and never consumes a partial one (STYLE.md rule 1).

use bytes::{Buf, BytesMut};

use crate::error::DecodeError;
use crate::packet::{Packet, PacketType, ProtocolVersion, parse_first_byte};
use crate::wire::{Reader, peek_var_int};
use crate::{Ack, PacketId};

/// Which end of the connection the decoder sits at. A server decodes what clients send
/// and rejects packets that only servers send, and the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The broker side.
    Server,
    /// The client side.
    Client,
}

impl Role {
    fn peer(self) -> Role {
        match self {
            Role::Server => Role::Client,
            Role::Client => Role::Server,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Server => "server",
            Role::Client => "client",
        })
    }
}

/// Largest packet MQTT can express: a one-byte type, a four-byte remaining length and
/// 268,435,455 bytes of body.
pub const MAX_PACKET_SIZE: usize = 1 + 4 + crate::wire::MAX_VAR_INT as usize;

/// Most bytes [`Decoder::decode`] reserves ahead for a packet that has not fully arrived.
const RESERVE_CAP: usize = 64 * 1024;

/// An incremental MQTT decoder for one connection.
///
/// Call [`Decoder::decode`] each time bytes arrive. A server-side decoder learns the
/// protocol version from the CONNECT packet (and accepts nothing before it); a client-side
/// decoder is told the version it asked for.
#[derive(Debug, Clone)]
pub struct Decoder {
    /// Which side we are; decides which packets the peer may send.
    role: Role,
    /// The protocol version in use; `None` on a server until CONNECT arrives.
    version: Option<ProtocolVersion>,
    /// Largest whole packet (fixed header included) accepted; checked from the fixed
    /// header, before the body is buffered. (A `u32`, as on the wire: every parked
    /// connection keeps a decoder.)
    max_packet_size: u32,
}

impl Decoder {
    /// A decoder for the broker side of a new connection.
    pub fn server() -> Self {
        Decoder {
            role: Role::Server,
            version: None,
            max_packet_size: MAX_PACKET_SIZE as u32,
        }
    }

    /// A decoder for a client that sent a CONNECT of `version`.
    pub fn client(version: ProtocolVersion) -> Self {
        Decoder {
            role: Role::Client,
            version: Some(version),
            max_packet_size: MAX_PACKET_SIZE as u32,
        }
    }

    /// Sets the largest packet accepted, fixed header included.
    pub fn with_max_packet_size(mut self, max: usize) -> Self {
        self.set_max_packet_size(max);
        self
    }

    /// Changes the largest packet accepted (no packet is larger than
    /// [`MAX_PACKET_SIZE`], which fits a `u32`).
    pub fn set_max_packet_size(&mut self, max: usize) {
        self.max_packet_size = u32::try_from(max.min(MAX_PACKET_SIZE)).unwrap_or(u32::MAX);
    }

    /// The protocol version in use, once known.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// Sets the protocol version (a client that reconnects with another version).
    pub fn set_version(&mut self, version: ProtocolVersion) {
        self.version = Some(version);
    }

    /// Decodes the next packet from the front of `src`.
    ///
    /// Returns `Ok(None)` until a whole packet is buffered, leaving `src` untouched (it
    /// reserves room for the rest of the packet). On success the packet's bytes are
    /// removed from `src`; payloads and strings share them without copying. An error
    /// means the connection must be closed; how much of the offending packet was
    /// consumed is unspecified (an error found in the fixed header is reported before
    /// the rest of the packet arrives).
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let Some(&first) = src.first() else {
            return Ok(None);
        };
        let (kind, flags) = parse_first_byte(first, self.version)?;
        self.check_direction(kind)?;
        let Some((body_len, len_len)) = peek_var_int(&src[1..])? else {
            return Ok(None);
        };
        let total = 1 + len_len + body_len as usize;
        let max = self.max_packet_size as usize;
        if total > max {
            return Err(DecodeError::PacketTooLarge { size: total, max });
        }
        if src.len() < total {
            // Room for the rest, but never more than RESERVE_CAP at once: a peer that
            // announces a huge packet must send its bytes before it costs memory.
            src.reserve((total - src.len()).min(RESERVE_CAP));
            return Ok(None);
        }
        let version = match (kind, self.version) {
            (PacketType::Connect, _) => ProtocolVersion::V311, // CONNECT names its own.
            (_, Some(version)) => version,
            (_, None) => return Err(DecodeError::ExpectedConnect(kind)),
        };
        if let Some((kind, id)) = decode_small(kind, &src[1 + len_len..total])? {
            src.advance(total);
            return Ok(Some(small_packet(kind, id)));
        }
        src.advance(1 + len_len);
        let body = src.split_to(body_len as usize).freeze();
        let packet = Packet::decode_body(kind, flags, version, Reader::new(body))?;
        if let (Packet::Connect(connect), None) = (&packet, self.version) {
            self.version = Some(connect.protocol);
        }
        Ok(Some(packet))
    }

    fn check_direction(&self, kind: PacketType) -> Result<(), DecodeError> {
        let sender = self.role.peer();
        let allowed = match kind {
            // A 3.1.1 server never sends DISCONNECT.
            PacketType::Disconnect if sender == Role::Server => {
                self.version.is_none_or(ProtocolVersion::is_v5)
            }
            _ => kind.sent_by(sender),
        };
        if allowed {
            Ok(())
        } else {
            Err(DecodeError::UnexpectedPacket {
                packet: kind,
                sender,
            })
        }
    }
}

/// The commonest small packets, decoded straight from the read buffer: the QoS 1 and 2
/// acknowledgements with nothing but a packet id (as 3.1 and 3.1.1 send them, and 5.0
/// on success), PINGREQ and PINGRESP. Nothing is cut from the buffer for them (cutting
/// shares the buffer: a reference count up and down per packet). `None`: anything
/// else, decoded by [`Packet::decode_body`], which decodes these alike.
///
/// Returns the packet's kind and id, not the packet: a 128-byte packet built here and
/// moved to the caller would be copied with wide loads from the narrow stores that
/// built it, which wait for those stores (a stall per packet).
#[inline]
fn decode_small(
    kind: PacketType,
    body: &[u8],
) -> Result<Option<(PacketType, Option<PacketId>)>, DecodeError> {
    match (kind, body) {
        (PacketType::PingReq | PacketType::PingResp, []) => Ok(Some((kind, None))),
        (
            PacketType::PubAck | PacketType::PubRec | PacketType::PubRel | PacketType::PubComp,
            &[high, low],
        ) => match PacketId::new(u16::from_be_bytes([high, low])) {
            Some(id) => Ok(Some((kind, Some(id)))),
            None => Err(DecodeError::ZeroPacketId(kind)),
        },
        _ => Ok(None),
    }
}

/// The packet [`decode_small`] found.
fn small_packet(kind: PacketType, id: Option<PacketId>) -> Packet {
    match (kind, id) {
        (PacketType::PubAck, Some(id)) => Packet::PubAck(Ack::new(id)),
        (PacketType::PubRec, Some(id)) => Packet::PubRec(Ack::new(id)),
        (PacketType::PubRel, Some(id)) => Packet::PubRel(Ack::new(id)),
        (PacketType::PubComp, Some(id)) => Packet::PubComp(Ack::new(id)),
        (PacketType::PingResp, _) => Packet::PingResp,
        _ => Packet::PingReq,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    /// The small packets decoded in place come out as the general decoder makes them,
    /// with the packet id they carry (a zero id refused alike), and leave the next
    /// packet in the buffer untouched.
    ///
    /// conformance: v3.1.1 MQTT-2.3.1-6
    /// conformance: v5 MQTT-2.2.1-5
    #[test]
    fn small_packets_decode_as_the_general_decoder_does() {
        let kinds = [
            (0x40, PacketType::PubAck, Role::Server),
            (0x50, PacketType::PubRec, Role::Server),
            (0x62, PacketType::PubRel, Role::Server),
            (0x70, PacketType::PubComp, Role::Server),
            (0xc0, PacketType::PingReq, Role::Server),
            (0xd0, PacketType::PingResp, Role::Client),
        ];
        let versions = [
            ProtocolVersion::V31,
            ProtocolVersion::V311,
            ProtocolVersion::V5,
        ];
        for (first, kind, role) in kinds {
            for version in versions {
                let bodies: &[&[u8]] = match kind {
                    PacketType::PingReq | PacketType::PingResp => &[&[]],
                    _ => &[&[0, 1], &[0x12, 0x34], &[0xff, 0xff], &[0, 0]],
                };
                for body in bodies {
                    let mut decoder = match role {
                        Role::Server => Decoder::server(),
                        Role::Client => Decoder::client(version),
                    };
                    decoder.set_version(version);
                    let mut src = BytesMut::from(&[first, body.len() as u8][..]);
                    src.extend_from_slice(body);
                    src.extend_from_slice(&[0xc0, 0x00]);
                    let general = Packet::decode_body(
                        kind,
                        first & 0x0f,
                        version,
                        Reader::new(Bytes::copy_from_slice(body)),
                    );
                    let got = decoder.decode(&mut src);
                    assert_eq!(got, general.map(Some), "{kind:?} {version:?} {body:?}");
                    if got.is_ok() {
                        assert_eq!(&src[..], [0xc0, 0x00], "{kind:?} {version:?}");
                    }
                }
            }
        }
    }
}
