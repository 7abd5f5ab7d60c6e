//! Validated newtypes for the small values every packet carries: [`QoS`], [`PacketId`],
//! [`TopicName`] and [`TopicFilter`]. They are checked once, when decoded or built, so that
//! the broker and client never see a wildcard in a topic name, a `#` in the middle of a
//! filter or a packet identifier of 0 (STYLE.md rule 4).

use std::fmt;
use std::num::NonZeroU16;

use bytestring::ByteString;

use crate::error::DecodeError;

/// Quality of service of a message or a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[repr(u8)]
pub enum QoS {
    /// At most once.
    #[default]
    AtMostOnce = 0,
    /// At least once.
    AtLeastOnce = 1,
    /// Exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS with this number; 3 and above are not QoS values ([MQTT-3.3.1-4]).
    pub fn from_u8(value: u8) -> Result<Self, DecodeError> {
        match value {
            0 => Ok(QoS::AtMostOnce),
            1 => Ok(QoS::AtLeastOnce),
            2 => Ok(QoS::ExactlyOnce),
            _ => Err(DecodeError::InvalidQoS),
        }
    }
}

/// A packet identifier: never 0 ([MQTT-2.2.1-3], [MQTT-2.3.1-1] in 3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacketId(pub NonZeroU16);

impl PacketId {
    /// The identifier `id`, or `None` for 0.
    pub fn new(id: u16) -> Option<Self> {
        NonZeroU16::new(id).map(PacketId)
    }

    /// The identifier as a number.
    pub fn get(self) -> u16 {
        self.0.get()
    }
}

impl fmt::Display for PacketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for PacketId {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(PacketId(NonZeroU16::arbitrary(u)?))
    }
}

/// The topic of a PUBLISH: UTF-8 without `+` or `#` ([MQTT-3.3.2-2], [MQTT-4.7.0-1]).
///
/// May be empty only in an MQTT 5.0 PUBLISH that carries a Topic Alias; the decoder
/// enforces that, and the broker resolves the alias before routing.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TopicName(ByteString);

impl TopicName {
    /// Validates `name` as a topic name. An empty name is accepted here (see the type docs).
    pub fn new(name: impl Into<ByteString>) -> Result<Self, DecodeError> {
        let name = name.into();
        // One pass over the bytes (every published topic goes through here): in UTF-8
        // these ASCII bytes only ever stand for themselves.
        match name.bytes().find(|b| matches!(b, b'+' | b'#' | 0)) {
            None => Ok(TopicName(name)),
            Some(0) if !name.contains(['+', '#']) => Err(DecodeError::NullCharacter),
            Some(_) => Err(DecodeError::WildcardInTopicName(name.to_string())),
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a cheaply clonable shared string.
    pub fn as_byte_string(&self) -> &ByteString {
        &self.0
    }

    /// True for topics starting with `$` (such as `$SYS/...`), which a filter starting
    /// with a wildcard never matches ([MQTT-4.7.2-1]).
    pub fn is_dollar(&self) -> bool {
        self.0.starts_with('$')
    }
}

impl std::ops::Deref for TopicName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for TopicName {
    type Error = DecodeError;
    fn try_from(value: &str) -> Result<Self, DecodeError> {
        TopicName::new(value)
    }
}

impl TryFrom<String> for TopicName {
    type Error = DecodeError;
    fn try_from(value: String) -> Result<Self, DecodeError> {
        TopicName::new(value)
    }
}

/// A subscription's topic filter, validated: not empty ([MQTT-4.7.3-1]); `#` alone in the
/// last level ([MQTT-4.7.1-1]); `+` alone in its level ([MQTT-4.7.1-2]); and for shared
/// subscriptions `$share/NAME/FILTER` with a non-empty NAME free of `/`, `+` and `#`
/// followed by a valid filter ([MQTT-4.8.2-1], [MQTT-4.8.2-2]).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicFilter(ByteString);

const SHARE_PREFIX: &str = "$share/";

impl TopicFilter {
    /// Validates `filter`.
    pub fn new(filter: impl Into<ByteString>) -> Result<Self, DecodeError> {
        let filter = filter.into();
        if let Some(rest) = filter.strip_prefix(SHARE_PREFIX) {
            let invalid = || DecodeError::InvalidSharedSubscription(filter.to_string());
            let (name, inner) = rest.split_once('/').ok_or_else(invalid)?;
            if name.is_empty() || name.contains(['+', '#']) || inner.is_empty() {
                return Err(invalid());
            }
            validate_filter(inner)?;
        } else {
            validate_filter(&filter)?;
        }
        Ok(TopicFilter(filter))
    }

    /// The filter as written, `$share/NAME/` prefix included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The same filter in storage of its own. A decoded filter shares the buffer of the
    /// packet it came in; one kept for long should not hold that whole buffer.
    pub fn detached(&self) -> TopicFilter {
        TopicFilter(ByteString::from(self.as_str().to_owned()))
    }

    /// For `$share/NAME/FILTER`, the share name NAME.
    pub fn share_name(&self) -> Option<&str> {
        let rest = self.0.strip_prefix(SHARE_PREFIX)?;
        rest.split_once('/').map(|(name, _)| name)
    }

    /// The filter that topics are matched against: FILTER for `$share/NAME/FILTER`,
    /// otherwise the whole filter.
    pub fn matching_filter(&self) -> &str {
        match self.0.strip_prefix(SHARE_PREFIX) {
            Some(rest) => rest.split_once('/').map_or(rest, |(_, inner)| inner),
            None => &self.0,
        }
    }

    /// True for `$share/...` filters.
    pub fn is_shared(&self) -> bool {
        self.0.starts_with(SHARE_PREFIX)
    }

    /// True when the filter contains `+` or `#`.
    pub fn has_wildcards(&self) -> bool {
        self.matching_filter().contains(['+', '#'])
    }
}

/// Whether topic name `topic` matches topic filter `filter` (§4.7): `+` matches one
/// level, `#` the rest (the parent level included), and a filter starting with a
/// wildcard never matches a topic starting with `$` ([MQTT-4.7.2-1]). This is
/// `mosquitto_topic_matches_sub`'s rule; the broker's trie applies the same rule in bulk.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

fn validate_filter(filter: &str) -> Result<(), DecodeError> {
    let invalid = |why| DecodeError::InvalidTopicFilter {
        filter: filter.to_string(),
        why,
    };
    if filter.is_empty() {
        return Err(invalid(
            "a topic filter must be at least one character long",
        ));
    }
    if filter.contains('\0') {
        return Err(DecodeError::NullCharacter);
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err(invalid("'#' must be alone in the last level"));
        }
        if level.contains('+') && level != "+" {
            return Err(invalid("'+' must occupy a whole level"));
        }
    }
    Ok(())
}

impl std::ops::Deref for TopicFilter {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for TopicFilter {
    type Error = DecodeError;
    fn try_from(value: &str) -> Result<Self, DecodeError> {
        TopicFilter::new(value)
    }
}

impl TryFrom<String> for TopicFilter {
    type Error = DecodeError;
    fn try_from(value: String) -> Result<Self, DecodeError> {
        TopicFilter::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detached_filter_is_the_same_filter_in_its_own_storage() {
        let packet = bytes::Bytes::from_static(b"xx$share/g/a/+/#yy");
        let shared = ByteString::try_from(packet.slice(2..16)).expect("utf-8");
        let filter = TopicFilter::new(shared).expect("valid");
        let own = filter.detached();
        assert_eq!(own, filter);
        assert_eq!(own.share_name(), Some("g"));
        assert_ne!(own.as_str().as_ptr(), filter.as_str().as_ptr());
    }

    /// conformance: v5 MQTT-4.7.1-1
    /// conformance: v5 MQTT-4.7.1-2
    /// conformance: v5 MQTT-4.7.3-1
    /// conformance: v3.1.1 MQTT-4.7.1-2
    /// conformance: v3.1.1 MQTT-4.7.1-3
    /// conformance: v3.1.1 MQTT-4.7.3-1
    #[test]
    fn filters_follow_the_wildcard_rules() {
        for ok in [
            "#",
            "+",
            "a/#",
            "a/+/b",
            "+/+",
            "/",
            "a//b",
            "$SYS/#",
            "+/#",
            "sport/tennis/+",
        ] {
            TopicFilter::new(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["", "a#", "a/#/b", "#/a", "a+", "a/b+/c", "++", "##", "a/#b"] {
            assert!(TopicFilter::new(bad).is_err(), "{bad} accepted");
        }
    }

    /// conformance: v5 MQTT-4.8.2-1
    /// conformance: v5 MQTT-4.8.2-2
    #[test]
    fn shared_subscriptions_need_a_name_and_a_filter() {
        let f = TopicFilter::new("$share/group/a/+/c").unwrap();
        assert!(f.is_shared());
        assert_eq!(f.share_name(), Some("group"));
        assert_eq!(f.matching_filter(), "a/+/c");
        assert!(f.has_wildcards());
        for bad in [
            "$share/",
            "$share//a",
            "$share/g",
            "$share/g/",
            "$share/g+/a",
            "$share/#/a",
            "$share/g/a#",
        ] {
            assert!(TopicFilter::new(bad).is_err(), "{bad} accepted");
        }
        // "$shared/..." and "$sharex" are ordinary filters.
        assert!(!TopicFilter::new("$sharex/a").unwrap().is_shared());
    }

    #[test]
    fn matching_follows_section_4_7() {
        assert!(topic_matches("a/#", "a"));
        assert!(topic_matches("a/#", "a/b/c"));
        assert!(topic_matches("a/+", "a/b"));
        assert!(topic_matches("a/+/c", "a/b/c"));
        assert!(!topic_matches("a/+", "a/b/c"));
        assert!(!topic_matches("a/+", "a"));
        assert!(topic_matches("+/+", "/x"));
        assert!(!topic_matches("#", "$SYS/x"));
        assert!(topic_matches("$SYS/#", "$SYS/x"));
        assert!(!topic_matches("a/b", "a/b/c"));
    }

    /// conformance: v5 MQTT-3.3.2-2
    /// conformance: v5 MQTT-4.7.0-1
    /// conformance: v3.1.1 MQTT-4.7.1-1
    #[test]
    fn topic_names_have_no_wildcards() {
        assert!(TopicName::new("a/b").is_ok());
        assert!(TopicName::new("a/+").is_err());
        assert!(TopicName::new("#").is_err());
        assert!(TopicName::new("$SYS/x").unwrap().is_dollar());
    }
}
