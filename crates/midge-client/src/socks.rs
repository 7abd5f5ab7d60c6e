//! Connecting through a SOCKS5 proxy (RFC 1928, with RFC 1929's user name and
//! password), as libmosquitto's `--proxy socks5h://…`: the proxy resolves the server's
//! name ("socks5h"), IP literals are sent as addresses. Used by the driver
//! (`eventloop.rs`) once the TCP connection to the proxy is open; the MQTT bytes then
//! flow through it unchanged.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A SOCKS5 proxy, from [`crate::ConnectOptions::socks5_proxy`].
#[derive(Clone)]
pub(crate) struct Socks5Proxy {
    /// The proxy's `host:port`.
    pub(crate) server: String,
    /// User name and password (RFC 1929), if the proxy asks for them.
    pub(crate) credentials: Option<(String, String)>,
}

/// Passwords are never printed (STYLE.md rule 15).
impl std::fmt::Debug for Socks5Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socks5Proxy")
            .field("server", &self.server)
            .field(
                "username",
                &self.credentials.as_ref().map(|(user, _)| user.as_str()),
            )
            .finish()
    }
}

fn failed(what: impl Into<String>) -> std::io::Error {
    std::io::Error::other(format!("SOCKS5 proxy: {}", what.into()))
}

/// `host:port`, `[v6]:port`: the host (without brackets) and the port.
fn split_target(target: &str) -> std::io::Result<(&str, u16)> {
    let (host, port) = target
        .rsplit_once(':')
        .ok_or_else(|| failed(format!("no port in {target}")))?;
    let port = port
        .parse()
        .map_err(|_| failed(format!("bad port in {target}")))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Ok((host, port))
}

/// Asks the proxy on `stream` to connect to `target` (`host:port`).
pub(crate) async fn handshake<S>(
    stream: &mut S,
    proxy: &Socks5Proxy,
    target: &str,
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (host, port) = split_target(target)?;
    // Greeting: no authentication, and user name/password when we have them.
    let greeting: &[u8] = if proxy.credentials.is_some() {
        &[5, 2, 0, 2]
    } else {
        &[5, 1, 0]
    };
    stream.write_all(greeting).await?;
    let mut choice = [0u8; 2];
    stream.read_exact(&mut choice).await?;
    if choice[0] != 5 {
        return Err(failed("not a SOCKS5 server"));
    }
    match (choice[1], &proxy.credentials) {
        (0, _) => {}
        (2, Some((user, password))) => {
            let (Ok(ulen), Ok(plen)) = (u8::try_from(user.len()), u8::try_from(password.len()))
            else {
                return Err(failed("user name or password longer than 255 bytes"));
            };
            let mut auth = vec![1, ulen];
            auth.extend_from_slice(user.as_bytes());
            auth.push(plen);
            auth.extend_from_slice(password.as_bytes());
            stream.write_all(&auth).await?;
            let mut status = [0u8; 2];
            stream.read_exact(&mut status).await?;
            if status[1] != 0 {
                return Err(failed("user name or password refused"));
            }
        }
        _ => return Err(failed("no acceptable authentication method")),
    }
    // CONNECT to the target: an address when it is one, else the name.
    let mut request = vec![5, 1, 0];
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => {
            request.push(1);
            request.extend_from_slice(&ip.octets());
        }
        Ok(std::net::IpAddr::V6(ip)) => {
            request.push(4);
            request.extend_from_slice(&ip.octets());
        }
        Err(_) => {
            let len = u8::try_from(host.len()).map_err(|_| failed("host name too long"))?;
            request.extend_from_slice(&[3, len]);
            request.extend_from_slice(host.as_bytes());
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    stream.write_all(&request).await?;
    let mut reply = [0u8; 4];
    stream.read_exact(&mut reply).await?;
    if reply[0] != 5 {
        return Err(failed("not a SOCKS5 server"));
    }
    if reply[1] != 0 {
        return Err(failed(reply_text(reply[1])));
    }
    // The bound address, which we do not need.
    let rest = match reply[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            stream.read_exact(&mut len).await?;
            usize::from(len[0]) + 2
        }
        _ => return Err(failed("bad address type in the reply")),
    };
    let mut bound = vec![0u8; rest];
    stream.read_exact(&mut bound).await?;
    Ok(())
}

/// RFC 1928's words for a reply code.
fn reply_text(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown failure",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes a client sends and the proxy answers, for a name with credentials.
    #[tokio::test]
    async fn handshake_bytes_with_credentials() {
        let (mut client, mut server) = tokio::io::duplex(256);
        let proxy = Socks5Proxy {
            server: "proxy:1080".into(),
            credentials: Some(("u".into(), "pw".into())),
        };
        let peer = tokio::spawn(async move {
            let mut buf = [0u8; 4];
            server.read_exact(&mut buf).await.unwrap();
            assert_eq!(buf, [5, 2, 0, 2]);
            server.write_all(&[5, 2]).await.unwrap();
            let mut auth = [0u8; 6];
            server.read_exact(&mut auth).await.unwrap();
            assert_eq!(auth, [1, 1, b'u', 2, b'p', b'w']);
            server.write_all(&[1, 0]).await.unwrap();
            let mut request = [0u8; 5 + 10 + 2];
            server.read_exact(&mut request).await.unwrap();
            assert_eq!(&request[..5], &[5, 1, 0, 3, 10]);
            assert_eq!(&request[5..15], b"broker.lan");
            assert_eq!(&request[15..], &1883u16.to_be_bytes());
            server
                .write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0x07, 0x5b])
                .await
                .unwrap();
        });
        handshake(&mut client, &proxy, "broker.lan:1883")
            .await
            .unwrap();
        peer.await.unwrap();
    }

    #[tokio::test]
    async fn refusals_are_errors() {
        let proxy = Socks5Proxy {
            server: "proxy:1080".into(),
            credentials: None,
        };
        let (mut client, mut server) = tokio::io::duplex(256);
        tokio::spawn(async move {
            let mut buf = [0u8; 3];
            server.read_exact(&mut buf).await.unwrap();
            server.write_all(&[5, 0]).await.unwrap();
            let mut request = [0u8; 4 + 16 + 2];
            server.read_exact(&mut request).await.unwrap();
            assert_eq!(request[3], 4, "an IPv6 address");
            server
                .write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0])
                .await
                .unwrap();
        });
        let e = handshake(&mut client, &proxy, "[::1]:1883")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("connection refused"), "{e}");

        let (mut client, mut server) = tokio::io::duplex(256);
        tokio::spawn(async move {
            let mut buf = [0u8; 3];
            server.read_exact(&mut buf).await.unwrap();
            server.write_all(&[5, 0xff]).await.unwrap();
        });
        let e = handshake(&mut client, &proxy, "127.0.0.1:1883")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no acceptable"), "{e}");
    }
}
