//! One Mosquitto listener as the reader collects it, and the addresses it binds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use crate::config::{ConfigError, ListenerConfig, Location};

/// A value and the line that set it.
#[derive(Debug, Clone)]
pub(super) struct Setting<T> {
    pub(super) value: T,
    pub(super) at: Location,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Domain {
    V4,
    V6,
}

/// One Mosquitto listener: a `listener` line and the listener-specific keys below it, or
/// the default listener.
#[derive(Debug, Clone)]
pub(super) struct ListenerSpec {
    /// The `listener` line; `None` for the default listener.
    pub(super) at: Option<Location>,
    pub(super) port: u16,
    pub(super) host: Option<Setting<String>>,
    pub(super) domain: Option<Setting<Domain>>,
    pub(super) max_connections: Option<Setting<i64>>,
    pub(super) max_topic_alias: Option<Setting<u16>>,
    /// Used when `per_listener_settings` is true.
    pub(super) allow_anonymous: Option<Setting<bool>>,
    /// `protocol` and the TLS keys, copied into each [`ListenerConfig`] this listener
    /// becomes (its `bind` is a placeholder).
    pub(super) settings: ListenerConfig,
    /// `listener 0 PATH`: a Unix socket at PATH.
    pub(super) unix: Option<PathBuf>,
}

impl ListenerSpec {
    pub(super) fn new(at: Option<Location>, port: u16) -> Self {
        ListenerSpec {
            at,
            port,
            host: None,
            domain: None,
            max_connections: None,
            max_topic_alias: None,
            allow_anonymous: None,
            settings: ListenerConfig::new(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)),
            unix: None,
        }
    }

    /// The listeners this one becomes: one per address it binds, or its Unix socket.
    pub(super) fn listeners(&self, local_only: bool) -> Result<Vec<ListenerConfig>, ConfigError> {
        if let Some(path) = &self.unix {
            return Ok(vec![ListenerConfig {
                bind: None,
                unix_socket: Some(path.clone()),
                ..self.settings.clone()
            }]);
        }
        Ok(self
            .addresses(local_only)?
            .into_iter()
            .map(|bind| ListenerConfig {
                bind: Some(bind),
                ..self.settings.clone()
            })
            .collect())
    }

    /// The addresses this listener binds; `local_only` for Mosquitto's no-listener mode.
    pub(super) fn addresses(&self, local_only: bool) -> Result<Vec<SocketAddr>, ConfigError> {
        let in_domain = |ip: &IpAddr| match self.domain.as_ref().map(|d| d.value) {
            Some(Domain::V4) => ip.is_ipv4(),
            Some(Domain::V6) => ip.is_ipv6(),
            None => true,
        };
        let Some(host) = &self.host else {
            let ips: [IpAddr; 2] = if local_only {
                [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]
            } else {
                [Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()]
            };
            return Ok(ips
                .into_iter()
                .filter(in_domain)
                .map(|ip| SocketAddr::new(ip, self.port))
                .collect());
        };
        let key = if self.at.is_some() {
            "listener"
        } else {
            "bind_address"
        };
        let bad = |problem: String| ConfigError::BadValue {
            at: host.at.clone(),
            key: key.to_string(),
            problem,
        };
        let name = host.value.trim_start_matches('[').trim_end_matches(']');
        let resolved: Vec<SocketAddr> = match name.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, self.port)],
            Err(_) => (name, self.port)
                .to_socket_addrs()
                .map_err(|e| bad(format!("cannot resolve `{name}`: {e}")))?
                .collect(),
        };
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for addr in resolved.into_iter().filter(|a| in_domain(&a.ip())) {
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        if addrs.is_empty() {
            return Err(bad(format!(
                "`{name}` has no address of the family `socket_domain` asks for"
            )));
        }
        Ok(addrs)
    }

    /// The line that defines this listener and its key, for errors about it.
    pub(super) fn location(
        &self,
        default_at: Option<&Setting<&'static str>>,
    ) -> Option<Setting<&'static str>> {
        match &self.at {
            Some(at) => Some(Setting {
                value: "listener",
                at: at.clone(),
            }),
            None => default_at.cloned(),
        }
    }
}
