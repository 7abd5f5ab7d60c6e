//! Property tests for the codec as a whole.
//!
//! 1. Every valid packet of every type, in every version that has it, comes back unchanged
//!    from `decode(encode(p))`. That holds when the bytes arrive whole, split in two at
//!    a random point, or one byte at a time, and `encoded_len` is the number of bytes
//!    written. Packets that a client
//!    sends are decoded by a server-side decoder after a CONNECT of the same version.
//!    Packets that a server sends are decoded by `Decoder::client(version)`. PUBLISH, the
//!    four acks, DISCONNECT (5.0) and AUTH (5.0) are tested in both directions.
//! 2. The decoders never panic. Random bytes and mutated valid packets go to server and
//!    client decoders of every version, in random chunks. `Ok(None)` never consumes input.
//!    Whatever decodes re-encodes and decodes to the same packet.
//!
//! The generators (in `roundtrip/strategies.rs`) follow each version's rules, so only valid packets are built. In
//! 3.1/3.1.1 there are no properties and no reason codes: those fields stay at their
//! defaults, SUBACK uses only the four return codes and CONNACK only the six. In 3.x
//! there is no password without a user name. A PUBLISH has a packet id exactly when its
//! QoS is above 0 and never DUP at QoS 0. Topic names and filters are valid, including
//! wildcards and `$share/` filters. Property values lie in their allowed ranges. Strings
//! hold any Unicode except U+0000.

#[path = "roundtrip/strategies.rs"]
mod strategies;

use bytes::BytesMut;
use midge_codec::{Connect, Decoder, Packet, ProtocolVersion};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use strategies::{VERSIONS, binary, client_packet, connect, server_packet, version};

fn encode(packet: &Packet, version: ProtocolVersion) -> BytesMut {
    let mut wire = BytesMut::new();
    packet
        .encode(version, &mut wire)
        .unwrap_or_else(|e| panic!("cannot encode {packet:?} for {version}: {e}"));
    wire
}

/// Encodes `packet` and checks that a copy of `decoder` gives it back when the bytes
/// arrive whole (followed by another copy), split in two at `split`, and one byte at a
/// time. Returns `decoder` as it is after the packet.
fn round_trip(
    decoder: &Decoder,
    version: ProtocolVersion,
    packet: &Packet,
    split: Index,
) -> Result<Decoder, TestCaseError> {
    let wire = encode(packet, version);
    prop_assert_eq!(packet.encoded_len(version), Ok(wire.len()));

    // Whole, with the next packet right behind it.
    let mut d = decoder.clone();
    let mut buf = BytesMut::from(&wire[..]);
    buf.extend_from_slice(&wire);
    let decoded = d.decode(&mut buf).map_err(|e| {
        TestCaseError::fail(format!("{packet:?} as {wire:02x?} does not decode: {e}"))
    })?;
    prop_assert_eq!(decoded.as_ref(), Some(packet));
    prop_assert_eq!(&buf[..], &wire[..], "consumed more or less than one packet");

    // In two pieces.
    let split = split.index(wire.len() + 1);
    let mut d = decoder.clone();
    let mut buf = BytesMut::from(&wire[..split]);
    if split < wire.len() {
        prop_assert_eq!(d.decode(&mut buf), Ok(None));
        prop_assert_eq!(&buf[..], &wire[..split], "a partial packet was consumed");
    }
    buf.extend_from_slice(&wire[split..]);
    prop_assert_eq!(d.decode(&mut buf), Ok(Some(packet.clone())));
    prop_assert!(buf.is_empty());

    // One byte at a time.
    let mut d = decoder.clone();
    let mut buf = BytesMut::new();
    for (i, byte) in wire.iter().enumerate() {
        buf.extend_from_slice(&[*byte]);
        let result = d.decode(&mut buf);
        if i + 1 < wire.len() {
            prop_assert_eq!(result, Ok(None), "after {} of {} bytes", i + 1, wire.len());
        } else {
            prop_assert_eq!(result, Ok(Some(packet.clone())));
        }
    }
    prop_assert!(buf.is_empty());
    Ok(d)
}

/// A server-side decoder that has decoded a CONNECT of `version`.
fn connected_server(version: ProtocolVersion) -> Decoder {
    let mut decoder = Decoder::server();
    let connect = Packet::Connect(Box::new(Connect::new(version, "fuzz")));
    let mut buf = encode(&connect, version);
    assert_eq!(decoder.decode(&mut buf), Ok(Some(connect)));
    decoder
}

/// Feeds `input` to `decoder` in chunks of the given sizes (cycled), decoding as it goes,
/// until the input is used up or the decoder reports an error. Checks that `Ok(None)`
/// leaves the buffer untouched and that every decoded packet survives a round trip
/// through a decoder in the state this one had before it.
fn feed_in_chunks(
    mut decoder: Decoder,
    input: &[u8],
    chunks: &[usize],
) -> Result<(), TestCaseError> {
    let mut buf = BytesMut::new();
    let mut rest = input;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let size = (*sizes.next().expect("chunks is not empty")).min(rest.len());
        buf.extend_from_slice(&rest[..size]);
        rest = &rest[size..];
        loop {
            let before_decoder = decoder.clone();
            let before_bytes = buf.clone();
            match decoder.decode(&mut buf) {
                Ok(None) => {
                    prop_assert_eq!(&buf[..], &before_bytes[..], "Ok(None) consumed input");
                    break;
                }
                Ok(Some(packet)) => {
                    let version = match &packet {
                        Packet::Connect(connect) => connect.protocol,
                        _ => before_decoder.version().expect("decoded after CONNECT"),
                    };
                    let wire = encode(&packet, version);
                    prop_assert_eq!(packet.encoded_len(version), Ok(wire.len()));
                    let mut again = before_decoder.clone();
                    let mut wire_buf = wire.clone();
                    prop_assert_eq!(again.decode(&mut wire_buf), Ok(Some(packet)));
                    prop_assert!(wire_buf.is_empty());
                }
                Err(_) => return Ok(()),
            }
        }
    }
    Ok(())
}

/// Every decoder that the never-panic tests try: a fresh server, a server after a CONNECT
/// of each version, and a client of each version.
fn all_decoders() -> Vec<Decoder> {
    let mut decoders = vec![Decoder::server()];
    for version in VERSIONS {
        decoders.push(connected_server(version));
        decoders.push(Decoder::client(version));
    }
    decoders
}

/// A valid packet of some version and direction, encoded, then damaged: some bytes
/// overwritten, and sometimes cut short or extended with random bytes.
fn mutated_packet() -> impl Strategy<Value = Vec<u8>> {
    let packet = (version(), any::<bool>()).prop_flat_map(|(version, from_server)| {
        let packet = if from_server {
            server_packet(version).boxed()
        } else {
            client_packet(version).boxed()
        };
        (Just(version), packet)
    });
    (
        packet,
        vec((any::<Index>(), any::<u8>()), 0..4),
        proptest::option::of(any::<Index>()),
        binary(8),
    )
        .prop_map(|((version, packet), flips, cut, tail)| {
            let mut wire = encode(&packet, version).to_vec();
            for (at, byte) in flips {
                let at = at.index(wire.len());
                wire[at] = byte;
            }
            if let Some(cut) = cut {
                wire.truncate(cut.index(wire.len() + 1));
            }
            wire.extend_from_slice(&tail);
            wire
        })
}

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases(4096))]

    /// Every packet a client sends, CONNECT first, survives encode → decode on a server.
    #[test]
    fn client_packets_round_trip_through_a_server_decoder(
        (version, connect, packet) in version().prop_flat_map(|v| (Just(v), connect(v), client_packet(v))),
        split_connect in any::<Index>(),
        split in any::<Index>(),
    ) {
        let connect = Packet::Connect(Box::new(connect));
        let decoder = round_trip(&Decoder::server(), version, &connect, split_connect)?;
        prop_assert_eq!(decoder.version(), Some(version));
        round_trip(&decoder, version, &packet, split)?;
    }

    /// Every packet a server sends survives encode → decode on a client of that version.
    #[test]
    fn server_packets_round_trip_through_a_client_decoder(
        (version, packet) in version().prop_flat_map(|v| (Just(v), server_packet(v))),
        split in any::<Index>(),
    ) {
        round_trip(&Decoder::client(version), version, &packet, split)?;
    }
}

proptest! {
    #![proptest_config(cases(2048))]

    /// Random bytes never make a decoder panic, however they are chunked.
    #[test]
    fn random_bytes_never_panic(
        input in vec(any::<u8>(), 0..256),
        chunks in vec(1usize..48, 1..6),
    ) {
        for decoder in all_decoders() {
            feed_in_chunks(decoder, &input, &chunks)?;
        }
    }

    /// Damaged valid packets never make a decoder panic, and whatever still decodes
    /// round-trips.
    #[test]
    fn mutated_packets_never_panic(
        input in mutated_packet(),
        chunks in vec(1usize..48, 1..6),
    ) {
        for decoder in all_decoders() {
            feed_in_chunks(decoder, &input, &chunks)?;
        }
    }
}
