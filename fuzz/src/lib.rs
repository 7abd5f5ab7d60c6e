//! The harness shared by the fuzz targets in `fuzz_targets/` (STYLE.md rule 14).
//!
//! A target hands this crate a byte stream and a chunking seed. The stream goes to a
//! decoder in pieces of pseudo-random size, the way bytes arrive from a socket, until it is
//! used up or the decoder reports an error. An error is a fine outcome. A panic, or a
//! broken invariant checked here, is a crash:
//! - `Ok(None)` leaves the read buffer untouched ([`feed`]);
//! - `Ok(Some(_))` consumes exactly one frame, the fixed header's length ([`feed`]);
//! - with [`Check::RoundTrip`], a decoded packet re-encodes to `encoded_len` bytes and
//!   those bytes decode to the same packet ([`round_trip`]).
//!
//! The targets:
//! - `decode_v311` / `decode_v5`: raw bytes; the first byte picks the decoders' setup,
//!   the second seeds the chunking ([`decode_target`]). They check only the decoding
//!   invariants, which keeps them fast.
//! - `roundtrip`: a structured [`RoundTripInput`] built with `arbitrary` (version, decoder
//!   side, chunking, stream), checked with [`Check::RoundTrip`].

use arbitrary::Arbitrary;
use bytes::BytesMut;
use midge_codec::{Connect, Decoder, Packet, ProtocolVersion};

/// What to check for every decoded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Only that decoding neither panics nor breaks the buffer invariants.
    Decode,
    /// Also that the packet survives encode → decode unchanged.
    RoundTrip,
}

/// Where the decoder sits and what it has seen before the fuzzed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum Side {
    /// A server that has not seen CONNECT yet: the stream must start with one.
    FreshServer,
    /// A server that has decoded a CONNECT of the input's version.
    ConnectedServer,
    /// A client that asked for the input's version.
    Client,
}

/// The input of the `roundtrip` target.
#[derive(Debug, Clone, PartialEq, Eq, Arbitrary)]
pub struct RoundTripInput<'a> {
    /// The protocol version of the connection.
    pub version: ProtocolVersion,
    /// Which decoder reads the stream.
    pub side: Side,
    /// Seed of the chunk sizes; 0 hands over the whole stream at once.
    pub chunking: u8,
    /// The bytes received: the rest of the fuzzer's input, as it is.
    pub stream: &'a [u8],
}

/// Runs the `roundtrip` target on one input.
pub fn round_trip_target(input: &RoundTripInput<'_>) {
    let decoder = decoder(input.side, input.version);
    feed(decoder, input.stream, input.chunking, Check::RoundTrip);
}

/// Runs a raw-bytes target: `data[0]` picks the version from `versions` (bit 0) and
/// whether the server decoder starts fresh or after a CONNECT (bit 1); `data[1]` seeds
/// the chunking; the rest goes to a server decoder and to a client decoder.
pub fn decode_target(versions: &[ProtocolVersion], data: &[u8]) {
    let [setup, chunking, stream @ ..] = data else {
        return;
    };
    let version = versions[usize::from(setup & 1) % versions.len()];
    let server = if setup & 2 == 0 {
        Side::ConnectedServer
    } else {
        Side::FreshServer
    };
    for side in [server, Side::Client] {
        feed(decoder(side, version), stream, *chunking, Check::Decode);
    }
}

/// A decoder in the state `side` describes.
pub fn decoder(side: Side, version: ProtocolVersion) -> Decoder {
    match side {
        Side::FreshServer => Decoder::server(),
        Side::ConnectedServer => {
            let mut decoder = Decoder::server();
            let connect = Packet::Connect(Box::new(Connect::new(version, "fuzz")));
            let mut buf = encode(&connect, version);
            let decoded = decoder.decode(&mut buf).expect("a valid CONNECT decodes");
            assert_eq!(decoded, Some(connect));
            decoder
        }
        Side::Client => Decoder::client(version),
    }
}

/// Pseudo-random chunk sizes from 1 to 64 (xorshift32), or everything at once for seed 0.
#[derive(Debug)]
struct Chunks(u32);

impl Chunks {
    fn next_len(&mut self, left: usize) -> usize {
        if self.0 == 0 {
            return left;
        }
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        (self.0 % 64 + 1) as usize
    }
}

/// Feeds `stream` to `decoder` in chunks, decoding after each, until the stream is used
/// up or the decoder reports an error; panics when an invariant breaks.
pub fn feed(mut decoder: Decoder, stream: &[u8], chunking: u8, check: Check) {
    let mut chunks = Chunks(u32::from(chunking).wrapping_mul(0x9e37_79b9));
    let mut buf = BytesMut::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let len = chunks.next_len(rest.len()).min(rest.len());
        buf.extend_from_slice(&rest[..len]);
        rest = &rest[len..];
        loop {
            let before = decoder.clone();
            let unread = buf.clone();
            match decoder.decode(&mut buf) {
                Ok(None) => {
                    assert_eq!(buf, unread, "Ok(None) consumed input");
                    break;
                }
                Ok(Some(packet)) => {
                    let consumed = unread.len() - buf.len();
                    assert_eq!(Some(consumed), frame_len(&unread), "{packet:?}");
                    assert_eq!(buf, unread[consumed..], "bytes after the frame changed");
                    if check == Check::RoundTrip {
                        round_trip(&before, &packet);
                    }
                }
                Err(_) => return,
            }
        }
    }
}

/// The length of the frame at the front of `buf` according to its fixed header.
fn frame_len(buf: &[u8]) -> Option<usize> {
    let mut len = 0usize;
    for (i, byte) in buf.get(1..)?.iter().take(4).enumerate() {
        len |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(1 + i + 1 + len);
        }
    }
    None
}

/// Checks that `packet`, decoded by a decoder in the state `before`, re-encodes to
/// `encoded_len` bytes that `before` decodes to the same packet.
pub fn round_trip(before: &Decoder, packet: &Packet) {
    let version = match packet {
        Packet::Connect(connect) => connect.protocol,
        _ => before
            .version()
            .expect("only CONNECT decodes before the version is known"),
    };
    let wire = encode(packet, version);
    assert_eq!(packet.encoded_len(version), Ok(wire.len()), "{packet:?}");
    let mut decoder = before.clone();
    let mut buf = wire.clone();
    let again = decoder.decode(&mut buf);
    assert_eq!(again.as_ref(), Ok(&Some(packet.clone())), "{wire:02x?}");
    assert!(buf.is_empty(), "re-encoded {packet:?} left {buf:02x?}");
}

/// Encodes a packet that a decoder produced; that must always succeed.
fn encode(packet: &Packet, version: ProtocolVersion) -> BytesMut {
    let mut wire = BytesMut::new();
    if let Err(e) = packet.encode(version, &mut wire) {
        panic!("decoded {packet:?} does not encode for {version}: {e}");
    }
    wire
}
