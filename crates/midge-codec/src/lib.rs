//! MQTT 3.1, 3.1.1 and 5.0 packets: types, incremental decoding and encoding.
//!
//! `midge-codec` knows nothing of sockets, tasks or clocks. It turns bytes into
//! [`Packet`]s with a [`Decoder`], and packets into bytes with [`Packet::encode`]. One
//! packet model serves every protocol version: fields that only MQTT 5.0 has (properties,
//! reason codes on acknowledgements) are left at their defaults for older versions.
//!
//! Decoding is strict: every malformed-packet rule of both specifications is checked, and
//! each [`DecodeError`] names the rule (with its `[MQTT-x.y.z-n]` id) and the
//! [`ReasonCode`] a broker closes the connection with.
//!
//! # Layout
//! - [`packet`]: the [`Packet`] enum and one module per packet type.
//! - `properties`: MQTT 5.0 properties, one typed struct per packet kind.
//! - `reason`: [`ReasonCode`], shared by all versions.
//! - `topic`: [`QoS`], [`PacketId`], [`TopicName`], [`TopicFilter`].
//! - `wire`: variable byte integers, strings, the fixed header.
//! - `codec`: the incremental [`Decoder`].
//! - `error`: [`DecodeError`], [`EncodeError`].
//!
//! # Example
//! ```
//! use bytes::BytesMut;
//! use midge_codec::{Decoder, Packet, ProtocolVersion, Publish, QoS, PacketId, TopicName};
//!
//! let mut publish = Publish::new(TopicName::new("sensors/1/temp").unwrap(), "21.5");
//! publish.qos = QoS::AtLeastOnce;
//! publish.packet_id = PacketId::new(7);
//!
//! let mut wire = BytesMut::new();
//! Packet::Publish(publish.clone()).encode(ProtocolVersion::V5, &mut wire).unwrap();
//!
//! // A client-side decoder; it gets the bytes in two pieces.
//! let mut decoder = Decoder::client(ProtocolVersion::V5);
//! let mut buf = BytesMut::from(&wire[..5]);
//! assert_eq!(decoder.decode(&mut buf).unwrap(), None); // not whole yet
//! buf.extend_from_slice(&wire[5..]);
//! assert_eq!(decoder.decode(&mut buf).unwrap(), Some(Packet::Publish(publish)));
//! assert!(buf.is_empty());
//! ```
#![warn(missing_docs)]

mod codec;
mod error;
pub mod packet;
mod properties;
mod reason;
mod topic;
mod wire;

pub use bytestring::ByteString;
pub use codec::{Decoder, MAX_PACKET_SIZE, Role};
pub use error::{DecodeError, EncodeError};
pub use packet::{
    Ack, Auth, ConnAck, Connect, Disconnect, LastWill, Packet, PacketType, PlainPublish,
    ProtocolVersion, Publish, RetainHandling, SubAck, Subscribe, SubscriptionOptions, UnsubAck,
    Unsubscribe,
};
pub use properties::{
    AckProperties, AuthProperties, ConnAckProperties, ConnectProperties, DisconnectProperties,
    EmptySet, PropertyId, PublishProperties, Rare, SubscribeProperties, UnsubscribeProperties,
    UserProperty, WillProperties,
};
pub use reason::ReasonCode;
pub use topic::{PacketId, QoS, TopicFilter, TopicName, topic_matches};
pub use wire::{MAX_VAR_INT, peek_var_int};
