//! Address ranges (`10.0.0.0/8`, `2001:db8::/32`, or a single address) for the ACL's
//! `address` sections, a Midge extension of Mosquitto's format (see [`super::acl`]).
//!
//! Pure and small: parsing with an error that says what is wrong, and [`Cidr::contains`].
//! An IPv4 client seen through a dual-stack socket or a PROXY v2 header as an
//! IPv4-mapped IPv6 address (`::ffff:10.1.2.3`) is taken as the IPv4 address it is, and
//! a range written in that form (`::ffff:10.0.0.0/104`) as the IPv4 range it is, so
//! that `10.0.0.0/8` means the same whichever way the client arrived. Otherwise IPv4
//! ranges match IPv4 clients only and IPv6 ranges IPv6 clients only: `::/0` is not
//! every client, `0.0.0.0/0 ::/0` is.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A network: an address whose bits past `prefix` are zero, and the prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// Always canonical: IPv4 for the IPv4-mapped range (see the module docs).
    network: IpAddr,
    /// Leading bits that must match: up to 32 for IPv4, 128 for IPv6.
    prefix: u8,
}

/// What is wrong with an address range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CidrError {
    /// The part before `/` is not an IPv4 or IPv6 address.
    #[error("not an IPv4 or IPv6 address")]
    Address,
    /// The part after `/` is not a number within the address's length.
    #[error("prefix length must be a number from 0 to {max}")]
    Prefix {
        /// 32 or 128.
        max: u8,
    },
    /// Bits are set past the prefix: almost always a typo, so it is refused rather than
    /// silently widened.
    #[error("bits are set past the prefix length (the network is {network})")]
    HostBits {
        /// The range with those bits cleared, as a hint.
        network: Cidr,
    },
}

impl Cidr {
    /// Whether `addr` is in this range (IPv4-mapped IPv6 addresses as IPv4).
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, addr.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(addr)) => {
                let mask = mask32(self.prefix);
                u32::from(addr) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(addr)) => {
                let mask = mask128(self.prefix);
                u128::from(addr) & mask == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// `ADDRESS` (one host) or `ADDRESS/PREFIX`.
    fn from_str(text: &str) -> Result<Self, CidrError> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| CidrError::Address)?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(digits) => digits
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| digits.parse::<u8>().ok())
                .flatten()
                .filter(|&p| p <= max)
                .ok_or(CidrError::Prefix { max })?,
        };
        let (network, prefix) = canonical(address, prefix);
        let cidr = Cidr { network, prefix };
        let cleared = cidr.cleared();
        if cleared != cidr {
            return Err(CidrError::HostBits { network: cleared });
        }
        Ok(cidr)
    }
}

impl Cidr {
    /// The same prefix with the bits past it zeroed.
    fn cleared(self) -> Cidr {
        let network = match self.network {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(self.prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(self.prefix))),
        };
        Cidr { network, ..self }
    }
}

/// An IPv4-mapped IPv6 range (`::ffff:0:0/96` or narrower) as the IPv4 range it is.
fn canonical(address: IpAddr, prefix: u8) -> (IpAddr, u8) {
    match address {
        IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
            Some(v4) => (IpAddr::V4(v4), prefix - 96),
            None => (address, prefix),
        },
        _ => (address, prefix),
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}
