//! Incremental decoding: partial frames, several frames, the size limit (STYLE.md rule 1).

use super::*;

// ---------------------------------------------------------------------------------------
// Incremental decoding (STYLE.md rule 1)
// ---------------------------------------------------------------------------------------

/// Feeds `bytes` one byte at a time: `Ok(None)` and nothing consumed until the last byte,
/// then the whole packet and an empty buffer.
#[track_caller]
fn feed_byte_by_byte(decoder: &mut Decoder, bytes: &[u8]) -> Packet {
    let mut buf = BytesMut::new();
    for (i, &byte) in bytes.iter().enumerate() {
        buf.extend_from_slice(&[byte]);
        if i + 1 < bytes.len() {
            assert_eq!(decoder.decode(&mut buf), Ok(None), "after {} bytes", i + 1);
            assert_eq!(&buf[..], &bytes[..=i], "consumed part of a partial packet");
        }
    }
    let packet = decoder.decode(&mut buf).unwrap().expect("whole packet");
    assert!(buf.is_empty());
    packet
}

#[test]
fn packets_arriving_one_byte_at_a_time_decode_only_when_whole() {
    // A CONNECT with a two-byte remaining length, on a new server connection.
    let mut server = Decoder::server();
    let connect = wire! {
        [0x10, 0x80, 0x01],     // CONNECT, remaining length 128 (two-byte varint)
        [0x00, 0x04], b"MQTT",  // protocol name
        [0x05],                 // protocol level 5
        [0x02],                 // flags: clean start
        [0x00, 0x3c],           // keep alive 60
        [0x00],                 // property length 0
        [0x00, 0x73], [b'c'; 115], // client identifier: 115 bytes
    };
    let expected = Connect::new(V5, "c".repeat(115));
    assert_eq!(
        feed_byte_by_byte(&mut server, &connect),
        Packet::Connect(Box::new(expected))
    );
    assert_eq!(server.version(), Some(V5));
    // Then a PUBLISH from the client and, on the client side, the broker's answer.
    let publish = wire! {
        [0x32, 0x0a],         // PUBLISH QoS 1, remaining length 10
        [0x00, 0x03], b"a/b", // topic name
        [0x00, 0x01],         // packet identifier 1
        [0x00],               // property length 0
        b"hi",                // payload
    };
    let expected = Publish {
        qos: QoS::AtLeastOnce,
        packet_id: Some(pid(1)),
        ..Publish::new(topic("a/b"), "hi")
    };
    assert_eq!(
        feed_byte_by_byte(&mut server, &publish),
        Packet::Publish(expected.clone())
    );
    assert_eq!(
        feed_byte_by_byte(&mut Decoder::client(V5), &publish),
        Packet::Publish(expected)
    );
    // A packet whose whole wire form is its two-byte fixed header.
    assert_eq!(
        feed_byte_by_byte(&mut Decoder::client(V311), &[0xd0, 0x00]),
        Packet::PingResp
    );
}

#[test]
fn several_packets_in_one_buffer_decode_in_order() {
    let mut decoder = Decoder::client(V311);
    let mut buf = BytesMut::from(
        &wire! {
            [0x20, 0x02, 0x00, 0x00],                   // CONNACK accepted
            [0x30, 0x04, 0x00, 0x01], b"t", b"x",       // PUBLISH QoS 0 t: "x"
            [0x90, 0x03, 0x00, 0x01, 0x01],             // SUBACK id 1: granted QoS 1
            [0xd0, 0x00],                               // PINGRESP
            [0x40, 0x02, 0x00],                         // first three bytes of a PUBACK
        }[..],
    );
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        Some(Packet::ConnAck(Box::default()))
    );
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        Some(Packet::Publish(Publish::new(topic("t"), "x")))
    );
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        Some(Packet::SubAck(SubAck {
            packet_id: pid(1),
            reason_codes: vec![ReasonCode::GrantedQoS1],
            properties: AckProperties::default(),
        }))
    );
    assert_eq!(decoder.decode(&mut buf).unwrap(), Some(Packet::PingResp));
    // The partial PUBACK stays in the buffer, untouched, until its last byte comes.
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    assert_eq!(&buf[..], &[0x40, 0x02, 0x00]);
    buf.extend_from_slice(&[0x05]);
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        Some(Packet::PubAck(Ack::new(pid(5))))
    );
    assert!(buf.is_empty());
    assert_eq!(decoder.decode(&mut buf), Ok(None));
}

/// The size check needs only the fixed header: a packet announced as too large is
/// refused before its body arrives, however little of it has been read.
#[test]
fn too_large_packet_is_rejected_from_the_fixed_header_alone() {
    let mut decoder = Decoder::client(V5).with_max_packet_size(100);
    // The first byte and half of the remaining length: not known yet.
    let mut buf = BytesMut::from(&[0x30, 0xe8][..]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    // Remaining length 1000 (0xe8 0x07): 1003 bytes in all, refused at once.
    buf.extend_from_slice(&[0x07]);
    let err = decoder.decode(&mut buf).unwrap_err();
    assert_eq!(
        err,
        DecodeError::PacketTooLarge {
            size: 1003,
            max: 100
        }
    );
    assert_eq!(err.reason_code(), ReasonCode::PacketTooLarge);

    // The limit counts the fixed header: 100 bytes in all is accepted, 101 is not.
    let publish = |payload_len: usize| {
        wire! {
            [0x30, (payload_len + 4) as u8], // PUBLISH QoS 0, remaining length
            [0x00, 0x01], b"t",              // topic name
            [0x00],                          // property length 0
            vec![b'x'; payload_len],         // payload
        }
    };
    let exactly = publish(94);
    assert_eq!(exactly.len(), 100);
    let packet = decode_one(&mut decoder, &exactly);
    assert!(matches!(packet, Packet::Publish(p) if p.payload.len() == 94));
    let over = publish(95);
    let mut buf = BytesMut::from(&over[..2]);
    assert_eq!(
        decoder.decode(&mut buf),
        Err(DecodeError::PacketTooLarge {
            size: 101,
            max: 100
        })
    );

    // A server refuses a too-large CONNECT the same way, before it knows the version.
    let mut server = Decoder::server().with_max_packet_size(64);
    let mut buf = BytesMut::from(&[0x10, 0xff, 0xff, 0x03][..]);
    assert_eq!(
        server.decode(&mut buf),
        Err(DecodeError::PacketTooLarge {
            size: 65_539,
            max: 64
        })
    );
}
