//! The on-disk record format: keys and versioned, checksummed values.
//!
//! Every value is `[format version: u8][record bytes…][CRC-32 of the two before: u32 LE]`,
//! so a flipped bit is caught on read, whatever the engine below checks itself, and a
//! record written by a newer Midge is recognised as such. Integers are big-endian,
//! strings and byte strings are `u32` length + bytes, options are a `0`/`1` byte then the
//! value. A message body ([`StoredMessage`]) is kept once, under its [`MsgId`], as the
//! MQTT 5.0 encoding of its PUBLISH (topic, QoS, RETAIN, payload and every property
//! that travels with it), and referenced by id from outgoing entries and the retained
//! index. Keys order each session's outgoing entries by sequence number.
//!
//! Pure functions, no I/O: used by both backends, `midge store check` and `dump`.

use bytes::BytesMut;
use midge_codec::{Decoder, Packet, PacketId, ProtocolVersion, Publish, QoS, TopicName};

use super::{
    MsgId, OutgoingRecord, OutgoingState, RetainedRecord, SessionRecord, StoredMessage,
    SubscriptionRecord, WillRecord,
};

/// The record format this Midge writes and reads. A store whose meta record names a
/// newer version is refused at open.
pub const FORMAT_VERSION: u8 = 1;

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Shorter than version + checksum.
    #[error("record truncated ({0} bytes)")]
    Truncated(usize),
    /// The checksum does not match: the bytes were damaged.
    #[error("checksum mismatch (stored {stored:08x}, computed {computed:08x})")]
    Checksum {
        /// Checksum in the record.
        stored: u32,
        /// Checksum of the bytes read.
        computed: u32,
    },
    /// Written by a newer format.
    #[error("record format {0} is newer than this Midge reads ({FORMAT_VERSION})")]
    Version(u8),
    /// The checksum matched but the contents do not parse.
    #[error("malformed record: {0}")]
    Malformed(&'static str),
}

/// Wraps `body` with the version and the checksum.
pub fn seal(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(body);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks version and checksum; returns the record bytes.
pub fn open(value: &[u8]) -> Result<&[u8], RecordError> {
    if value.len() < 5 {
        return Err(RecordError::Truncated(value.len()));
    }
    let (data, crc) = value.split_at(value.len() - 4);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let computed = crc32fast::hash(data);
    if stored != computed {
        return Err(RecordError::Checksum { stored, computed });
    }
    if data[0] != FORMAT_VERSION {
        return Err(RecordError::Version(data[0]));
    }
    Ok(&data[1..])
}

/// Appends fields.
#[derive(Debug, Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
        self
    }
    fn opt_u64(&mut self, v: Option<u64>) -> &mut Self {
        match v {
            Some(v) => self.u8(1).u64(v),
            None => self.u8(0),
        }
    }
    fn opt_u32(&mut self, v: Option<u32>) -> &mut Self {
        match v {
            Some(v) => self.u8(1).u32(v),
            None => self.u8(0),
        }
    }
    fn opt_bytes(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            Some(v) => self.u8(1).bytes(v),
            None => self.u8(0),
        }
    }
}

/// Reads fields; every read checks the length left.
#[derive(Debug)]
struct Reader<'a>(&'a [u8]);

const SHORT: RecordError = RecordError::Malformed("field runs past the end");

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.0.len() < n {
            return Err(SHORT);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, RecordError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, RecordError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, RecordError> {
        let b = self.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn bytes(&mut self) -> Result<&'a [u8], RecordError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String, RecordError> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| RecordError::Malformed("string is not UTF-8"))
    }
    fn flag(&mut self) -> Result<bool, RecordError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(RecordError::Malformed("option flag is neither 0 nor 1")),
        }
    }
    fn opt_u64(&mut self) -> Result<Option<u64>, RecordError> {
        Ok(if self.flag()? {
            Some(self.u64()?)
        } else {
            None
        })
    }
    fn opt_u32(&mut self) -> Result<Option<u32>, RecordError> {
        Ok(if self.flag()? {
            Some(self.u32()?)
        } else {
            None
        })
    }
    fn opt_string(&mut self) -> Result<Option<String>, RecordError> {
        Ok(if self.flag()? {
            Some(self.string()?)
        } else {
            None
        })
    }
    fn end(&self) -> Result<(), RecordError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(RecordError::Malformed("bytes left after the last field"))
        }
    }
}

fn qos(v: u8) -> Result<QoS, RecordError> {
    QoS::from_u8(v).map_err(|_| RecordError::Malformed("QoS is not 0, 1 or 2"))
}

// ---- keys ----

/// Key of a message body.
pub fn message_key(id: MsgId) -> Vec<u8> {
    id.0.to_be_bytes().to_vec()
}

/// The id in a message key.
pub fn parse_message_key(key: &[u8]) -> Result<MsgId, RecordError> {
    let b: [u8; 8] = key
        .try_into()
        .map_err(|_| RecordError::Malformed("message key is not 8 bytes"))?;
    Ok(MsgId(u64::from_be_bytes(b)))
}

/// Key of a session: its client id.
pub fn session_key(client_id: &str) -> Vec<u8> {
    client_id.as_bytes().to_vec()
}

/// Prefix of every key of one session in the outgoing and incoming tables.
pub fn client_prefix(client_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(client_id.len() + 2);
    k.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
    k.extend_from_slice(client_id.as_bytes());
    k
}

/// Key of an outgoing entry: the client, then the sequence number (its order).
pub fn outgoing_key(client_id: &str, seq: u64) -> Vec<u8> {
    let mut k = client_prefix(client_id);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Key of an incoming QoS 2 packet id awaiting PUBREL.
pub fn incoming_key(client_id: &str, packet_id: u16) -> Vec<u8> {
    let mut k = client_prefix(client_id);
    k.extend_from_slice(&packet_id.to_be_bytes());
    k
}

/// Splits a client-prefixed key into the client id and the rest.
pub fn parse_client_key(key: &[u8]) -> Result<(String, &[u8]), RecordError> {
    let mut r = Reader(key);
    let n = r.u16()? as usize;
    let client = String::from_utf8(r.take(n)?.to_vec())
        .map_err(|_| RecordError::Malformed("client id is not UTF-8"))?;
    Ok((client, r.0))
}

/// The sequence number of an outgoing key.
pub fn parse_outgoing_key(key: &[u8]) -> Result<(String, u64), RecordError> {
    let (client, rest) = parse_client_key(key)?;
    let mut r = Reader(rest);
    let seq = r.u64()?;
    r.end()?;
    Ok((client, seq))
}

/// The packet id of an incoming key.
pub fn parse_incoming_key(key: &[u8]) -> Result<(String, u16), RecordError> {
    let (client, rest) = parse_client_key(key)?;
    let mut r = Reader(rest);
    let id = r.u16()?;
    r.end()?;
    Ok((client, id))
}

// ---- values ----

/// A message body: its PUBLISH as MQTT 5.0 encodes it, expiry and origin.
pub fn encode_message(m: &StoredMessage) -> Vec<u8> {
    let mut w = Writer::default();
    w.bytes(&m.publish)
        .opt_u64(m.expires_at)
        .opt_bytes(m.origin.as_deref().map(str::as_bytes));
    seal(&w.0)
}

/// Reads a message body; the PUBLISH is decoded to check it.
pub fn decode_message(value: &[u8]) -> Result<StoredMessage, RecordError> {
    let (publish, expires_at, origin) = read_message(value)?;
    Ok(StoredMessage {
        publish: publish.to_vec(),
        expires_at,
        origin,
    })
}

/// Checks a message body as [`decode_message`] does, keeping nothing of it but its
/// expiry time (restore reads every body this way: none stays in memory).
pub fn check_message(value: &[u8]) -> Result<Option<super::UnixMillis>, RecordError> {
    read_message(value).map(|(_, expires_at, _)| expires_at)
}

/// A message body's parts: the PUBLISH (decoded to check it), expiry and origin.
type MessageParts<'a> = (&'a [u8], Option<super::UnixMillis>, Option<String>);

/// Reads a message body's parts.
fn read_message(value: &[u8]) -> Result<MessageParts<'_>, RecordError> {
    let mut r = Reader(open(value)?);
    let publish = r.bytes()?;
    let expires_at = r.opt_u64()?;
    let origin = r.opt_string()?;
    r.end()?;
    decode_publish(publish)?;
    Ok((publish, expires_at, origin))
}

/// Encodes a PUBLISH for [`StoredMessage::publish`]. A QoS 1/2 PUBLISH needs a packet id
/// on the wire: 1 stands in for it (it is never sent from here).
pub fn encode_publish(publish: &Publish) -> Vec<u8> {
    let mut p = publish.clone();
    p.dup = false;
    p.packet_id = (p.qos != QoS::AtMostOnce).then(|| PacketId::new(1).expect("1 is non-zero"));
    let mut buf = BytesMut::new();
    match Packet::Publish(p).encode(ProtocolVersion::V5, &mut buf) {
        Ok(()) => buf.to_vec(),
        // A message the broker accepted always encodes; keep an empty body rather than
        // panic, which decodes as malformed and is reported at restore.
        Err(_) => Vec::new(),
    }
}

/// Decodes the bytes of [`StoredMessage::publish`].
pub fn decode_publish(bytes: &[u8]) -> Result<Publish, RecordError> {
    let mut buf = BytesMut::from(bytes);
    let mut decoder = Decoder::client(ProtocolVersion::V5);
    match decoder.decode(&mut buf) {
        Ok(Some(Packet::Publish(p))) if buf.is_empty() => Ok(p),
        _ => Err(RecordError::Malformed("stored PUBLISH does not decode")),
    }
}

fn write_subscription(w: &mut Writer, s: &SubscriptionRecord) {
    w.bytes(s.filter.as_bytes()).u8(s.options).opt_u32(s.id);
}

fn read_subscription(r: &mut Reader<'_>) -> Result<SubscriptionRecord, RecordError> {
    Ok(SubscriptionRecord {
        filter: r.string()?,
        options: r.u8()?,
        id: r.opt_u32()?,
    })
}

/// A session's own record: its settings, subscriptions and pending will.
pub fn encode_session(s: &SessionRecord) -> Vec<u8> {
    let mut w = Writer::default();
    w.bytes(s.client_id.as_bytes())
        .u8(s.protocol)
        .u32(s.session_expiry)
        .opt_u64(s.expires_at)
        .u16(s.last_packet_id)
        .u32(s.subscriptions.len() as u32);
    for sub in &s.subscriptions {
        write_subscription(&mut w, sub);
    }
    match &s.will {
        Some(will) => {
            w.u8(1).u64(will.publish_at);
            let body = encode_message(&will.message);
            w.bytes(&body);
        }
        None => {
            w.u8(0);
        }
    }
    seal(&w.0)
}

/// Reads a session record.
pub fn decode_session(value: &[u8]) -> Result<SessionRecord, RecordError> {
    let mut r = Reader(open(value)?);
    let client_id = r.string()?;
    let protocol = r.u8()?;
    let session_expiry = r.u32()?;
    let expires_at = r.opt_u64()?;
    let last_packet_id = r.u16()?;
    let n = r.u32()? as usize;
    let mut subscriptions = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        subscriptions.push(read_subscription(&mut r)?);
    }
    let will = if r.flag()? {
        let publish_at = r.u64()?;
        let message = decode_message(r.bytes()?)?;
        Some(WillRecord {
            message,
            publish_at,
        })
    } else {
        None
    };
    r.end()?;
    Ok(SessionRecord {
        client_id,
        protocol,
        session_expiry,
        expires_at,
        last_packet_id,
        subscriptions,
        will,
    })
}

/// An outgoing entry: a reference to a message body and the flow's state.
pub fn encode_outgoing(o: &OutgoingRecord) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(o.message.0).u8(o.qos as u8).u8(u8::from(o.retain));
    match o.state {
        OutgoingState::Queued => w.u8(0).u16(0),
        OutgoingState::Sent(id) => w.u8(1).u16(id),
        OutgoingState::Released(id) => w.u8(2).u16(id),
    };
    w.u32(o.subscription_ids.len() as u32);
    for id in &o.subscription_ids {
        w.u32(*id);
    }
    w.opt_bytes(o.shared_group.as_deref().map(str::as_bytes));
    seal(&w.0)
}

/// Reads an outgoing entry.
pub fn decode_outgoing(value: &[u8]) -> Result<OutgoingRecord, RecordError> {
    let mut r = Reader(open(value)?);
    let message = MsgId(r.u64()?);
    let qos = qos(r.u8()?)?;
    let retain = r.flag()?;
    let kind = r.u8()?;
    let id = r.u16()?;
    let state = match (kind, id) {
        (0, _) => OutgoingState::Queued,
        (1, id) if id != 0 => OutgoingState::Sent(id),
        (2, id) if id != 0 => OutgoingState::Released(id),
        _ => return Err(RecordError::Malformed("bad outgoing state")),
    };
    let n = r.u32()? as usize;
    let mut subscription_ids = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        subscription_ids.push(r.u32()?);
    }
    let shared_group = r.opt_string()?;
    r.end()?;
    Ok(OutgoingRecord {
        message,
        qos,
        retain,
        subscription_ids,
        shared_group,
        state,
    })
}

/// The (empty) value of an incoming QoS 2 entry: the key says it all.
pub fn encode_incoming() -> Vec<u8> {
    seal(&[])
}

/// Checks an incoming entry's value.
pub fn decode_incoming(value: &[u8]) -> Result<(), RecordError> {
    Reader(open(value)?).end()
}

/// A retained index entry (key: the topic).
pub fn encode_retained(r: &RetainedRecord) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(r.message.0).opt_u64(r.expires_at).u32(r.size);
    seal(&w.0)
}

/// Reads a retained index entry.
pub fn decode_retained(value: &[u8]) -> Result<RetainedRecord, RecordError> {
    let mut r = Reader(open(value)?);
    let rec = RetainedRecord {
        message: MsgId(r.u64()?),
        expires_at: r.opt_u64()?,
        size: r.u32()?,
    };
    r.end()?;
    Ok(rec)
}

/// The value of the meta table's `format` key.
pub fn encode_format() -> Vec<u8> {
    seal(&[])
}

/// Checks the topic of a retained key.
pub fn parse_retained_key(key: &[u8]) -> Result<String, RecordError> {
    let topic = std::str::from_utf8(key)
        .map_err(|_| RecordError::Malformed("retained topic is not UTF-8"))?;
    TopicName::new(topic.to_string())
        .map_err(|_| RecordError::Malformed("retained topic is not a valid topic name"))?;
    Ok(topic.to_string())
}

/// Encodes subscription options in the 5.0 SUBSCRIBE byte layout.
pub fn options_byte(o: &midge_codec::SubscriptionOptions) -> u8 {
    o.qos as u8
        | u8::from(o.no_local) << 2
        | u8::from(o.retain_as_published) << 3
        | (o.retain_handling as u8) << 4
}

/// Decodes [`options_byte`].
pub fn options_from_byte(b: u8) -> Result<midge_codec::SubscriptionOptions, RecordError> {
    use midge_codec::RetainHandling;
    let retain_handling = match (b >> 4) & 3 {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendAtSubscribeIfNew,
        2 => RetainHandling::DoNotSend,
        _ => return Err(RecordError::Malformed("bad retain handling")),
    };
    if b & 0xc0 != 0 {
        return Err(RecordError::Malformed(
            "reserved subscription option bits set",
        ));
    }
    Ok(midge_codec::SubscriptionOptions {
        qos: qos(b & 3)?,
        no_local: b & 4 != 0,
        retain_as_published: b & 8 != 0,
        retain_handling,
    })
}
