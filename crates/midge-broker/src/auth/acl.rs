//! Mosquitto's `acl_file`: parsing, and the pure access decision [`Acl::check`].
//!
//! # The file
//! ```text
//! # Lines before the first `user` line: the general section, for anonymous clients.
//! topic read public/#
//!
//! user alice
//! topic readwrite alice/#
//! topic deny alice/secret
//! topic $SYS/#
//!
//! # Patterns apply to every client, wherever they stand in the file.
//! pattern write clients/%c/status
//! pattern read users/%u/#
//!
//! # Midge extension: rules for the clients connecting from these addresses.
//! address 10.0.0.0/8 2001:db8::/32
//! topic write plant/commands/#
//! ```
//! - `topic [read|write|readwrite|deny] FILTER` grants (or, with `deny`, refuses) access to
//!   the topics FILTER matches, for the clients of the section it is in. Without an access
//!   word it is `readwrite`. The filter is the rest of the line, so it may contain spaces
//!   when an access word is given (Mosquitto reads it the same way).
//! - `user NAME` starts the section of the client that connected with username NAME (the
//!   rest of the line, spaces included). Sections of the same name add up.
//! - `pattern [read|write|readwrite|deny] FILTER` applies to every client, with `%c`
//!   replaced by its client id and `%u` by its username; a pattern with `%u` does not
//!   apply to clients without a username.
//! - `address CIDR [CIDR...]` (**a Midge extension**, not in Mosquitto) starts a section
//!   whose `topic` lines apply to every client connecting from one of the ranges
//!   (`10.0.0.0/8`, `2001:db8::/32`, or a single address), in addition to the rules of
//!   its own section. The address is the client's as the broker sees it: the PROXY
//!   protocol header's on a listener with `proxy_protocol`, else the socket's. Unix socket
//!   clients have no address and match no `address` section. IPv4-mapped IPv6 addresses
//!   count as IPv4 ([`super::cidr`]). A range with bits set past its prefix
//!   (`10.1.2.3/8`) is an error, like any malformed range. Mosquitto refuses a file with
//!   an `address` line, so every file Mosquitto accepts means the same in Midge.
//! - Empty lines and lines starting with `#` are comments. Anything else is an error that
//!   names the file and line, so that a reload keeps the previous ACL.
//!
//! # The decision (Mosquitto 2.0's `mosquitto_acl_check_default`)
//! 1. Before any rule: nobody may write a `$SYS/…` topic, and `$share/…` is never a
//!    topic to read or write ([`check_dollar`], which the broker also applies when no ACL
//!    file is configured, as Mosquitto does).
//! 2. Subscribing is always allowed: Mosquitto 2.0's ACL file does not restrict
//!    subscriptions ("FIXME - implement ACL subscription strings"). A client may subscribe
//!    to `#`; what protects a topic is that **every delivery is checked** for `Read`
//!    access on the message's topic (retained messages sent on subscription included),
//!    and a denied message is silently not delivered.
//! 3. The rules of the client's own section are tried first: the section of its username,
//!    or the general section when it has none, together with the `address` sections its
//!    address is in. Clients whose username has no section get none of the user rules.
//!    Within these rules, `deny` rules come first: a matching `deny` (of any of these
//!    sections) refuses at once; otherwise a matching rule whose access includes the one
//!    asked for allows.
//! 4. If nothing decided and there are patterns: a client whose username or client id
//!    contains `+` or `#` is refused (it could otherwise widen a pattern); then the
//!    patterns are tried the same way (`deny` first, then grants) with `%c`/`%u`
//!    substituted.
//! 5. Otherwise access is refused. An ACL file without rules refuses everything.
//!
//! Matching is MQTT's (§4.7): `+` one level, `#` the rest (and the parent level), and a
//! filter starting with a wildcard never matches a topic starting with `$`. So `topic
//! read #` does not give access to `$SYS`, and `pattern read users/%u/#` gives alice
//! `users/alice/…` only: her subscription to `users/#` receives nothing of bob's.
//! Note that a `deny` in the client's section wins over its grants, but a `pattern deny`
//! cannot take back what the section granted (Mosquitto's order). Likewise an
//! `address` section's `deny` wins over the user's grants (and the user's `deny` over
//! the address section's grants), and both win over patterns.
//!
//! There is no `%a` (client address) substitution in patterns: in Mosquitto `%a` is
//! literal text, so giving it a meaning would change what a Mosquitto file means, and an
//! address is a poor topic level (its text form varies; many clients share one behind
//! NAT). Use `address` sections instead.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use midge_codec::topic_matches;

use super::cidr::{Cidr, CidrError};

/// What a client wants to do with a topic or filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Receive a message published to this topic: checked on every delivery.
    Read,
    /// Publish to this topic (PUBLISH, and a will message).
    Write,
    /// Subscribe to this filter: always allowed by an ACL file (see the module docs).
    Subscribe,
}

/// Who is asking: the identity the ACL rules are written against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIdentity<'a> {
    /// The client identifier (assigned by the broker when the client sent none).
    pub client_id: &'a str,
    /// The username of CONNECT; `None` for anonymous clients.
    pub username: Option<&'a str>,
    /// The client's IP address (the PROXY protocol header's, on a listener that takes
    /// one), for `address` sections; `None` for a Unix socket client.
    pub address: Option<IpAddr>,
}

/// The access a rule grants; `deny` grants nothing and refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleAccess {
    Read,
    Write,
    ReadWrite,
    Deny,
}

impl RuleAccess {
    fn parse(word: &str) -> Option<Self> {
        match word {
            "read" => Some(RuleAccess::Read),
            "write" => Some(RuleAccess::Write),
            "readwrite" => Some(RuleAccess::ReadWrite),
            "deny" => Some(RuleAccess::Deny),
            _ => None,
        }
    }

    fn grants(self, access: Access) -> bool {
        matches!(
            (self, access),
            (RuleAccess::Read | RuleAccess::ReadWrite, Access::Read)
                | (RuleAccess::Write | RuleAccess::ReadWrite, Access::Write)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    access: RuleAccess,
    filter: String,
}

/// Rules in decision order: every `deny` first (Mosquitto inserts them at the head),
/// then the grants in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RuleList {
    denies: Vec<Rule>,
    grants: Vec<Rule>,
}

impl RuleList {
    fn push(&mut self, rule: Rule) {
        if rule.access == RuleAccess::Deny {
            self.denies.push(rule);
        } else {
            self.grants.push(rule);
        }
    }

    fn is_empty(&self) -> bool {
        self.denies.is_empty() && self.grants.is_empty()
    }
}

/// `Some(allowed)` when a rule of `lists` decides, `None` when none matches. The
/// `deny` rules of every list come before the grants of any.
fn decide<'r, I>(
    lists: impl Fn() -> I,
    access: Access,
    matches: impl Fn(&Rule) -> bool,
) -> Option<bool>
where
    I: Iterator<Item = &'r RuleList>,
{
    if lists().any(|rules| rules.denies.iter().any(&matches)) {
        return Some(false);
    }
    lists()
        .any(|rules| {
            rules
                .grants
                .iter()
                .any(|rule| rule.access.grants(access) && matches(rule))
        })
        .then_some(true)
}

/// A parsed ACL file. Build it with [`Acl::load`] or [`Acl::parse`]; ask it with
/// [`Acl::check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    /// The general section: rules for clients without a username.
    anonymous: RuleList,
    /// `user` sections by username.
    users: HashMap<String, RuleList>,
    /// `pattern` rules, for every client.
    patterns: RuleList,
    /// `address` sections (a Midge extension), in file order.
    addresses: Vec<AddressSection>,
}

/// The rules of one `address` line, for the clients from any of its ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AddressSection {
    ranges: Vec<Cidr>,
    rules: RuleList,
}

impl AddressSection {
    fn contains(&self, address: Option<IpAddr>) -> bool {
        address.is_some_and(|a| self.ranges.iter().any(|range| range.contains(a)))
    }
}

/// Which section the `topic` lines being read belong to.
enum Section {
    General,
    User(String),
    /// Index into `Acl::addresses`.
    Address(usize),
}

/// Why an ACL file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AclError {
    /// The file could not be read.
    #[error("{}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A line is not a valid rule.
    #[error("{}:{line}: {reason}", file.display())]
    Line {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: AclLineError,
    },
}

/// What is wrong with one line of an ACL file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AclLineError {
    /// `topic` or `pattern` with nothing after it.
    #[error("empty topic")]
    EmptyTopic,
    /// An access word other than read, write, readwrite, deny.
    #[error("invalid topic access type \"{0}\" (expected read, write, readwrite or deny)")]
    InvalidAccess(String),
    /// A filter with `+` or `#` in the wrong place.
    #[error("invalid topic filter \"{0}\"")]
    InvalidFilter(String),
    /// `user` with no name.
    #[error("missing username")]
    MissingUsername,
    /// `address` with no range.
    #[error("missing address range (expected e.g. address 10.0.0.0/8 2001:db8::/32)")]
    MissingAddress,
    /// An `address` range that is not `ADDRESS` or `ADDRESS/PREFIX`.
    #[error("invalid address range \"{range}\": {reason}")]
    InvalidRange {
        /// The range as written.
        range: String,
        /// What is wrong with it.
        reason: CidrError,
    },
    /// Not `topic`, `pattern`, `user`, `address` or a comment.
    #[error("unknown directive \"{0}\" (expected topic, pattern, user or address)")]
    UnknownDirective(String),
}

impl Acl {
    /// Reads and parses `path`. The only function here that touches the file system.
    pub fn load(path: &Path) -> Result<Self, AclError> {
        let text = std::fs::read_to_string(path).map_err(|source| AclError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses the text of an ACL file; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<Self, AclError> {
        let mut acl = Acl::default();
        let mut section = Section::General;
        for (index, raw) in text.lines().enumerate() {
            let error = |reason| AclError::Line {
                file: file.to_path_buf(),
                line: index + 1,
                reason,
            };
            match parse_line(raw).map_err(error)? {
                Line::Blank => {}
                Line::User(name) => section = Section::User(name.to_owned()),
                Line::Address(ranges) => {
                    section = Section::Address(acl.addresses.len());
                    acl.addresses.push(AddressSection {
                        ranges,
                        rules: RuleList::default(),
                    });
                }
                Line::Topic(rule) => match &section {
                    Section::General => acl.anonymous.push(rule),
                    Section::User(name) => acl.users.entry(name.clone()).or_default().push(rule),
                    Section::Address(index) => acl.addresses[*index].rules.push(rule),
                },
                Line::Pattern(rule) => acl.patterns.push(rule),
            }
        }
        Ok(acl)
    }

    /// Whether `client` may have `access` to `topic` (a topic name for `Read` and
    /// `Write`, a filter for `Subscribe`). Pure; see the module docs for the rules.
    pub fn check(&self, client: &ClientIdentity<'_>, access: Access, topic: &str) -> bool {
        if !check_dollar(access, topic) {
            return false;
        }
        if access == Access::Subscribe {
            return true;
        }
        let own = match client.username {
            Some(name) => self.users.get(name),
            None => Some(&self.anonymous),
        };
        let sections = || {
            own.into_iter().chain(
                self.addresses
                    .iter()
                    .filter(|section| section.contains(client.address))
                    .map(|section| &section.rules),
            )
        };
        if let Some(decision) = decide(sections, access, |rule| topic_matches(&rule.filter, topic))
        {
            return decision;
        }
        if self.patterns.is_empty() || is_dangerous(client) {
            return false;
        }
        decide(
            || std::iter::once(&self.patterns),
            access,
            |rule| expand(&rule.filter, client).is_some_and(|filter| topic_matches(&filter, topic)),
        )
        .unwrap_or(false)
    }

    /// True when the file has no rules at all (it then refuses every read and write).
    pub fn is_empty(&self) -> bool {
        self.anonymous.is_empty()
            && self.patterns.is_empty()
            && self.users.values().all(RuleList::is_empty)
            && self
                .addresses
                .iter()
                .all(|section| section.rules.is_empty())
    }
}

/// [`Acl::check`] as a free function.
pub fn check(acl: &Acl, client: &ClientIdentity<'_>, access: Access, topic: &str) -> bool {
    acl.check(client, access, topic)
}

/// Reads and parses an ACL file: [`Acl::load`].
pub fn load(path: &Path) -> Result<Acl, AclError> {
    Acl::load(path)
}

/// The `$`-topic rules that hold with or without an ACL file (Mosquitto's
/// `acl__check_dollar`): no client writes `$SYS/…`, and `$share/…` is for subscribing
/// only. Mosquitto lets bridges write `$SYS/broker/connection/+/state`; Midge has no
/// bridges and makes no exception.
#[inline]
pub fn check_dollar(access: Access, topic: &str) -> bool {
    // Checked for every delivery: most topics are told apart by their first byte.
    if !topic.starts_with('$') {
        true
    } else if topic == "$SYS" || topic.starts_with("$SYS/") {
        access != Access::Write
    } else if topic == "$share" || topic.starts_with("$share/") {
        access == Access::Subscribe
    } else {
        true
    }
}

/// Usernames and client ids with wildcards could widen a pattern: Mosquitto refuses them
/// pattern access.
fn is_dangerous(client: &ClientIdentity<'_>) -> bool {
    let wild = |s: &str| s.contains(['+', '#']);
    wild(client.client_id) || client.username.is_some_and(wild)
}

/// The pattern with `%c` and `%u` replaced; `None` when it needs a username the client
/// does not have.
fn expand(pattern: &str, client: &ClientIdentity<'_>) -> Option<String> {
    if !pattern.contains('%') {
        return Some(pattern.to_owned());
    }
    let mut out = String::with_capacity(pattern.len() + client.client_id.len());
    let mut rest = pattern;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match after.as_bytes().first() {
            Some(b'c') => out.push_str(client.client_id),
            Some(b'u') => out.push_str(client.username?),
            _ => {
                out.push('%');
                rest = after;
                continue;
            }
        }
        rest = &after[1..];
    }
    out.push_str(rest);
    Some(out)
}

/// A filter as `mosquitto_sub_topic_check` accepts it: `+` and `#` alone in their level,
/// `#` last.
fn valid_filter(filter: &str) -> bool {
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(i, level)| match *level {
        "+" => true,
        "#" => i == levels.len() - 1,
        other => !other.contains(['+', '#']),
    }) && filter.len() <= 65535
}

enum Line<'a> {
    Blank,
    User(&'a str),
    Address(Vec<Cidr>),
    Topic(Rule),
    Pattern(Rule),
}

fn parse_line(raw: &str) -> Result<Line<'_>, AclLineError> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(Line::Blank);
    }
    let (word, rest) = split_word(line);
    match word {
        "user" if rest.is_empty() => Err(AclLineError::MissingUsername),
        "user" => Ok(Line::User(rest)),
        "address" if rest.is_empty() => Err(AclLineError::MissingAddress),
        "address" => parse_ranges(rest).map(Line::Address),
        "topic" => parse_rule(rest).map(Line::Topic),
        "pattern" => parse_rule(rest).map(Line::Pattern),
        other => Err(AclLineError::UnknownDirective(other.to_owned())),
    }
}

/// `[ACCESS] FILTER`: one word alone is the filter (readwrite), as Mosquitto reads it.
fn parse_rule(rest: &str) -> Result<Rule, AclLineError> {
    let (first, filter) = split_word(rest);
    if first.is_empty() {
        return Err(AclLineError::EmptyTopic);
    }
    let (access, filter) = if filter.is_empty() {
        (RuleAccess::ReadWrite, first)
    } else {
        let access = RuleAccess::parse(first)
            .ok_or_else(|| AclLineError::InvalidAccess(first.to_owned()))?;
        (access, filter)
    };
    if !valid_filter(filter) {
        return Err(AclLineError::InvalidFilter(filter.to_owned()));
    }
    Ok(Rule {
        access,
        filter: filter.to_owned(),
    })
}

/// `CIDR [CIDR...]`, blank-separated.
fn parse_ranges(rest: &str) -> Result<Vec<Cidr>, AclLineError> {
    rest.split([' ', '\t'])
        .filter(|word| !word.is_empty())
        .map(|word| {
            word.parse().map_err(|reason| AclLineError::InvalidRange {
                range: word.to_owned(),
                reason,
            })
        })
        .collect()
}

/// The first blank-separated word and the trimmed rest of `s`.
fn split_word(s: &str) -> (&str, &str) {
    match s.split_once([' ', '\t']) {
        Some((word, rest)) => (word, rest.trim()),
        None => (s, ""),
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Subscribe => "subscribe",
        })
    }
}

#[cfg(test)]
#[path = "acl_tests.rs"]
mod tests;
