//! The PROXY protocol (HAProxy's, versions 1 and 2): a load balancer in front of the
//! broker starts each connection with a header that names the client's real address.
//!
//! On a listener with `proxy_protocol`, every connection must start with one (a
//! connection without it is closed: otherwise any client could claim any address), in
//! either version. The header is read exactly, byte for byte (version 1) or by its
//! length (version 2), so nothing after it is consumed: the TLS or MQTT bytes that
//! follow stay in the socket. A `LOCAL` (v2) or `UNKNOWN` (v1) header, or one for
//! another address family, keeps the socket's own peer address.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

/// Version 2's signature.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Version 1's longest header, CRLF included (the specification's 107 bytes).
const V1_MAX: usize = 107;

/// Why a PROXY header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProxyError {
    #[error("PROXY protocol: the connection does not start with a PROXY header")]
    Missing,
    #[error("PROXY protocol v1: {0}")]
    V1(&'static str),
    #[error("PROXY protocol v2: {0}")]
    V2(&'static str),
}

impl From<ProxyError> for io::Error {
    fn from(e: ProxyError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Reads the PROXY header at the start of `stream`; the client's address it gives, or
/// `None` when the socket's own peer address stands (`LOCAL`, `UNKNOWN`, Unix).
pub(crate) async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> io::Result<Option<SocketAddr>> {
    let mut start = [0u8; 6];
    stream.read_exact(&mut start).await?;
    if &start == b"PROXY " {
        let mut line = start.to_vec();
        while !line.ends_with(b"\r\n") {
            if line.len() >= V1_MAX {
                return Err(ProxyError::V1("no CRLF within 107 bytes").into());
            }
            line.push(stream.read_u8().await?);
        }
        return Ok(parse_v1(&line)?);
    }
    if start != V2_SIGNATURE[..6] {
        return Err(ProxyError::Missing.into());
    }
    let mut rest = [0u8; 10];
    stream.read_exact(&mut rest).await?;
    if rest[..6] != V2_SIGNATURE[6..] {
        return Err(ProxyError::Missing.into());
    }
    let length = u16::from_be_bytes([rest[8], rest[9]]);
    let mut addresses = vec![0u8; usize::from(length)];
    stream.read_exact(&mut addresses).await?;
    Ok(parse_v2(rest[6], rest[7], &addresses)?)
}

/// `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n` or `PROXY UNKNOWN …\r\n`.
pub(crate) fn parse_v1(line: &[u8]) -> Result<Option<SocketAddr>, ProxyError> {
    let line = std::str::from_utf8(line).map_err(|_| ProxyError::V1("not ASCII"))?;
    let line = line.strip_suffix("\r\n").ok_or(ProxyError::V1("no CRLF"))?;
    let mut words = line.split(' ');
    let (Some("PROXY"), Some(family)) = (words.next(), words.next()) else {
        return Err(ProxyError::V1("no protocol family"));
    };
    let v6 = match family {
        "TCP4" => false,
        "TCP6" => true,
        "UNKNOWN" => return Ok(None),
        _ => return Err(ProxyError::V1("family is not TCP4, TCP6 or UNKNOWN")),
    };
    let fields: Vec<&str> = words.collect();
    let [source, destination, source_port, destination_port] = fields[..] else {
        return Err(ProxyError::V1("expected four fields after the family"));
    };
    let ip = |text: &str| -> Result<IpAddr, ProxyError> {
        let ip: IpAddr = text.parse().map_err(|_| ProxyError::V1("bad address"))?;
        match ip.is_ipv6() == v6 {
            true => Ok(ip),
            false => Err(ProxyError::V1("address of the other family")),
        }
    };
    let port = |text: &str| -> Result<u16, ProxyError> {
        // Decimal without leading zeros, as the specification writes them.
        if text.len() > 1 && text.starts_with('0') {
            return Err(ProxyError::V1("bad port"));
        }
        text.parse().map_err(|_| ProxyError::V1("bad port"))
    };
    let source = ip(source)?;
    ip(destination)?;
    let source_port = port(source_port)?;
    port(destination_port)?;
    Ok(Some(SocketAddr::new(source, source_port)))
}

/// The version-2 header after its signature: version and command, family and
/// transport, and the address block (TLVs after the addresses are skipped).
pub(crate) fn parse_v2(
    version_command: u8,
    family: u8,
    addresses: &[u8],
) -> Result<Option<SocketAddr>, ProxyError> {
    if version_command >> 4 != 2 {
        return Err(ProxyError::V2("version is not 2"));
    }
    match version_command & 0x0f {
        0 => return Ok(None), // LOCAL: the balancer's own connection (a health check).
        1 => {}
        _ => return Err(ProxyError::V2("command is neither LOCAL nor PROXY")),
    }
    let at = |range: std::ops::Range<usize>| {
        addresses
            .get(range)
            .ok_or(ProxyError::V2("address block too short for its family"))
    };
    match family >> 4 {
        1 => {
            let ip: [u8; 4] = at(0..4)?.try_into().expect("4 bytes");
            let port = at(8..10)?;
            Ok(Some(SocketAddr::new(
                Ipv4Addr::from(ip).into(),
                u16::from_be_bytes([port[0], port[1]]),
            )))
        }
        2 => {
            let ip: [u8; 16] = at(0..16)?.try_into().expect("16 bytes");
            let port = at(32..34)?;
            Ok(Some(SocketAddr::new(
                Ipv6Addr::from(ip).into(),
                u16::from_be_bytes([port[0], port[1]]),
            )))
        }
        0 | 3 => Ok(None), // UNSPEC, or a Unix socket: no IP address to give.
        _ => Err(ProxyError::V2("unknown address family")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn v1_headers() {
        let ok = |line: &str| parse_v1(line.as_bytes());
        assert_eq!(
            ok("PROXY TCP4 192.0.2.1 198.51.100.2 56324 1883\r\n"),
            Ok(addr("192.0.2.1:56324"))
        );
        assert_eq!(
            ok("PROXY TCP6 2001:db8::1 2001:db8::2 4000 8883\r\n"),
            Ok(addr("[2001:db8::1]:4000"))
        );
        assert_eq!(ok("PROXY UNKNOWN\r\n"), Ok(None));
        assert_eq!(ok("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"), Ok(None));
        for bad in [
            "PROXY TCP4 192.0.2.1 198.51.100.2 56324 1883\n",
            "PROXY TCP5 192.0.2.1 198.51.100.2 56324 1883\r\n",
            "PROXY TCP4 2001:db8::1 198.51.100.2 56324 1883\r\n",
            "PROXY TCP4 192.0.2.1 198.51.100.2 65536 1883\r\n",
            "PROXY TCP4 192.0.2.1 198.51.100.2 056 1883\r\n",
            "PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n",
            "PROXY TCP4  192.0.2.1 198.51.100.2 56324 1883\r\n",
        ] {
            assert!(ok(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn v2_headers() {
        let v4 = [192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x07, 0x5b];
        assert_eq!(parse_v2(0x21, 0x11, &v4), Ok(addr("192.0.2.1:56324")));
        // TLVs after the addresses are skipped.
        let mut with_tlv = v4.to_vec();
        with_tlv.extend_from_slice(&[0x04, 0x00, 0x01, 0x00]);
        assert_eq!(parse_v2(0x21, 0x11, &with_tlv), Ok(addr("192.0.2.1:56324")));
        let mut v6 = [0u8; 36];
        v6[0] = 0x20;
        v6[1] = 0x01;
        v6[15] = 1;
        v6[32..34].copy_from_slice(&4000u16.to_be_bytes());
        assert_eq!(parse_v2(0x21, 0x21, &v6), Ok(addr("[2001::1]:4000")));
        assert_eq!(parse_v2(0x20, 0x00, &[]), Ok(None)); // LOCAL
        assert_eq!(parse_v2(0x21, 0x31, &[0; 216]), Ok(None)); // Unix
        assert!(parse_v2(0x11, 0x11, &v4).is_err()); // version 1 in a v2 header
        assert!(parse_v2(0x22, 0x11, &v4).is_err()); // unknown command
        assert!(parse_v2(0x21, 0x11, &v4[..8]).is_err()); // too short
        assert!(parse_v2(0x21, 0x21, &v4).is_err()); // too short for IPv6
    }
}
