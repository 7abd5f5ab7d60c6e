//! The mosquitto.conf reader: Mosquitto 2.0's keys and semantics onto [`Config`].
//!
//! The file is read line by line as Mosquitto reads it: `#` comments and blank lines
//! skipped, `key value` on each line, later lines overriding earlier ones, and
//! listener-specific keys applying to the last `listener` above them (or, before any, to
//! Mosquitto's default listener). Where Mosquitto's defaults differ from Midge's they are
//! Mosquitto's: once a listener is defined, `allow_anonymous` defaults to false; a
//! `listener PORT` with no address binds every interface (IPv4 and IPv6); the default
//! listener (port 1883, every interface) is started by `port`, `bind_address`,
//! `max_connections` or `socket_domain` given before the first `listener`; a file with no
//! listener runs local only (127.0.0.1 and ::1, port 1883) with anonymous clients.
//!
//! With `per_listener_settings true`, `allow_anonymous`, `password_file` and
//! `acl_file` belong to their listener, as in Mosquitto. Other per-listener limits
//! (`max_connections`, `max_topic_alias`) are merged (with a warning where they
//! differ): Midge has one value of those for all listeners. Keys that Mosquitto 2.0 has and Midge does not
//! support yet are warnings (`keys.rs`); unknown keys and bad values are errors naming the
//! file and line. Values are checked more strictly than Mosquitto's `atoi` does: `10x` is
//! an error, not 10. Paths (`include_dir`, `log_dest file`) are taken as Mosquitto takes
//! them: relative ones from the working directory.

mod keys;
mod line;
mod listener;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use line::{Line, mosquitto_order, parse_duration};
use listener::{Domain, ListenerSpec, Setting};

use super::{
    Config, ConfigError, ConfigFormat, ConfigWarning, ListenerProtocol, LoadedConfig, Location,
    LogLevel, MAX_PAYLOAD_SIZE, MIN_PACKET_SIZE, TlsVersion,
};

/// Mosquitto's default listener port.
const DEFAULT_PORT: u16 = 1883;

pub(super) fn parse(text: &str, path: &Path) -> Result<LoadedConfig, ConfigError> {
    let mut reader = Reader::new(path);
    reader.read(text, path, true)?;
    reader.finish()
}

struct Reader {
    /// The file given to `-c`: an `include_dir` must not hold it.
    main_path: PathBuf,
    config: Config,
    warnings: Vec<ConfigWarning>,
    per_listener_settings: bool,
    /// `allow_anonymous` read while `per_listener_settings` was false.
    allow_anonymous: Option<Setting<bool>>,
    default_listener: ListenerSpec,
    /// Where `port` or `bind_address` (the key) asked for the default listener.
    default_requested: Option<Setting<&'static str>>,
    listeners: Vec<ListenerSpec>,
    /// A bridge `connection` was seen: bridge keys are valid (and ignored) from here on.
    in_bridge: bool,
    /// From `log_type`: `None` until the first one (Mosquitto's default is information).
    log_level: Option<LogLevel>,
    /// The last `log_dest` line: `None` until the first one (default: stderr).
    log_dest_at: Option<Location>,
    /// `log_dest none` was given.
    log_dest_none: bool,
}

impl Reader {
    fn new(main_path: &Path) -> Self {
        Reader {
            main_path: main_path.to_path_buf(),
            config: Config::default(),
            warnings: Vec::new(),
            per_listener_settings: false,
            allow_anonymous: None,
            default_listener: ListenerSpec::new(None, DEFAULT_PORT),
            default_requested: None,
            listeners: Vec::new(),
            in_bridge: false,
            log_level: None,
            log_dest_at: None,
            log_dest_none: false,
        }
    }

    fn read(&mut self, text: &str, path: &Path, main: bool) -> Result<(), ConfigError> {
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, rest) = line
                .split_once(char::is_whitespace)
                .map_or((line, ""), |(k, r)| (k, r.trim()));
            let line = Line {
                key,
                rest,
                at: Location::new(path, index + 1),
            };
            self.apply(&line, main)?;
        }
        Ok(())
    }

    /// `password_file` / `acl_file` without `per_listener_settings`: the path as given
    /// (Mosquitto opens it relative to the working directory). Mosquitto refuses a second
    /// value for the same security settings.
    fn security_file(
        line: &Line<'_>,
        slot: &mut Option<PathBuf>,
        path: &str,
    ) -> Result<(), ConfigError> {
        match slot {
            Some(previous) if previous.as_path() != Path::new(path) => Err(line.bad(format!(
                "a different file (`{}`) is already set: Midge has one {} for all listeners",
                previous.display(),
                line.key
            ))),
            _ => {
                *slot = Some(PathBuf::from(path));
                Ok(())
            }
        }
    }

    /// The listener that listener-specific keys apply to now.
    fn current_listener(&mut self) -> &mut ListenerSpec {
        self.listeners
            .last_mut()
            .unwrap_or(&mut self.default_listener)
    }

    fn setting<T>(line: &Line<'_>, value: T) -> Option<Setting<T>> {
        Some(Setting {
            value,
            at: line.at.clone(),
        })
    }

    fn apply(&mut self, line: &Line<'_>, main: bool) -> Result<(), ConfigError> {
        let w = &mut self.warnings;
        let c = &mut self.config;
        match line.key {
            "listener" => self.listener(line)?,
            "port" => {
                let port = line.int(w, 1..=65535)? as u16;
                w.push(line.warning(
                    "`port` is deprecated in Mosquitto 2 (use `listener`); it sets the \
                     default listener's port",
                ));
                self.default_listener.port = port;
                self.default_requested.get_or_insert(Setting {
                    value: "port",
                    at: line.at.clone(),
                });
            }
            "bind_address" => {
                let host = line.value(w)?.to_string();
                w.push(line.warning(
                    "`bind_address` is deprecated in Mosquitto 2 (use `listener PORT \
                     ADDRESS`); it sets the default listener's address",
                ));
                self.default_listener.host = Self::setting(line, host);
                self.default_requested.get_or_insert(Setting {
                    value: "bind_address",
                    at: line.at.clone(),
                });
            }
            "socket_domain" => {
                let domain = match line.value(w)? {
                    "ipv4" => Domain::V4,
                    "ipv6" => Domain::V6,
                    other => return Err(line.bad(format!("expected ipv4 or ipv6, not `{other}`"))),
                };
                self.current_listener().domain = Self::setting(line, domain);
            }
            "protocol" => {
                let protocol = match line.value(w)? {
                    "mqtt" => ListenerProtocol::Mqtt,
                    "websockets" => ListenerProtocol::Websockets,
                    other => {
                        return Err(line.bad(format!("expected mqtt or websockets, not `{other}`")));
                    }
                };
                self.current_listener().settings.protocol = protocol;
            }
            "certfile" | "keyfile" | "cafile" | "capath" => {
                let path = Some(PathBuf::from(line.path()?));
                let settings = &mut self.current_listener().settings;
                match line.key {
                    "certfile" => settings.certfile = path,
                    "keyfile" => settings.keyfile = path,
                    "cafile" => settings.cafile = path,
                    _ => settings.capath = path,
                }
            }
            "enable_proxy_protocol" => {
                // Mosquitto 2.1's key: the PROXY protocol version. Midge takes either
                // version on a listener that has it.
                match line.value(w)? {
                    "1" | "2" => self.current_listener().settings.proxy_protocol = true,
                    other => return Err(line.bad(format!("expected 1 or 2, not `{other}`"))),
                }
            }
            "require_certificate" => {
                self.current_listener().settings.require_certificate = line.bool(w)?;
            }
            "use_identity_as_username" => {
                self.current_listener().settings.use_identity_as_username = line.bool(w)?;
            }
            "use_subject_as_username" => {
                self.current_listener().settings.use_subject_as_username = line.bool(w)?;
            }
            "tls_version" => {
                let version = match line.value(w)? {
                    "tlsv1.2" => TlsVersion::Tls12,
                    "tlsv1.3" => TlsVersion::Tls13,
                    "tlsv1.1" | "tlsv1" => {
                        return Err(line.bad(
                            "TLS 1.1 and older are not supported by Midge: use tlsv1.2 or tlsv1.3",
                        ));
                    }
                    other => {
                        return Err(line.bad(format!("expected tlsv1.2 or tlsv1.3, not `{other}`")));
                    }
                };
                self.current_listener().settings.tls_version = Some(version);
            }
            "allow_anonymous" => {
                let allow = Self::setting(line, line.bool(w)?);
                if self.per_listener_settings {
                    self.current_listener().allow_anonymous = allow;
                } else {
                    self.allow_anonymous = allow;
                }
            }
            "per_listener_settings" => self.per_listener_settings = line.bool(w)?,
            "password_file" | "acl_file" if self.per_listener_settings => {
                let path = Some(PathBuf::from(line.value(w)?));
                let settings = &mut self.current_listener().settings;
                match line.key {
                    "password_file" => settings.password_file = path,
                    _ => settings.acl_file = path,
                }
            }
            "password_file" => {
                let path = line.value(w)?;
                Self::security_file(line, &mut c.password_file, path)?;
            }
            "acl_file" => {
                let path = line.value(w)?;
                Self::security_file(line, &mut c.acl_file, path)?;
            }
            "max_connections" => {
                let max = line.int(w, i64::from(i32::MIN)..=i64::from(i32::MAX))?;
                self.current_listener().max_connections = Self::setting(line, max);
            }
            "max_topic_alias" => {
                let max = line.int(w, 0..=65535)? as u16;
                self.current_listener().max_topic_alias = Self::setting(line, max);
            }
            "max_packet_size" => {
                let size = line.int(w, i64::from(MIN_PACKET_SIZE)..=i64::from(u32::MAX))?;
                // Above MQTT's own maximum is no limit.
                c.max_packet_size = size.min(midge_codec::MAX_PACKET_SIZE as i64) as u32;
            }
            "message_size_limit" => {
                c.message_size_limit = line.int(w, 0..=i64::from(MAX_PAYLOAD_SIZE))? as u32;
            }
            "max_inflight_messages" => {
                // Mosquitto's 0 is "no maximum": as many as MQTT allows.
                let max = line.int(w, 0..=65535)? as u16;
                c.max_inflight_messages = if max == 0 { u16::MAX } else { max };
            }
            "max_queued_messages" => {
                c.max_queued_messages = line.int(w, 0..=i64::from(u32::MAX))? as usize;
            }
            "max_queued_bytes" => c.max_queued_bytes = line.int(w, 0..=i64::MAX)? as usize,
            "queue_qos0_messages" => c.queue_qos0_messages = line.bool(w)?,
            "max_keepalive" => c.max_keepalive = line.int(w, 10..=65535)? as u16,
            "persistent_client_expiration" => {
                let value = line.value(w)?;
                c.persistent_client_expiration =
                    Some(parse_duration(value).map_err(|problem| line.bad(problem))?);
            }
            "retain_available" => c.retain_available = line.bool(w)?,
            "upgrade_outgoing_qos" => c.upgrade_outgoing_qos = line.bool(w)?,
            "log_dest" => self.log_dest(line)?,
            "log_type" => self.log_type(line)?,
            "include_dir" if main => self.include_dir(line)?,
            "include_dir" => w.push(line.warning(
                "`include_dir` is ignored: Mosquitto reads it only in the main configuration file",
            )),
            // Mosquitto 2 reads `retained_persistence` as a synonym of `persistence`.
            "persistence" | "retained_persistence" => {
                c.persistence = line.bool(w)?;
            }
            "persistence_location" => {
                let dir = line.rest;
                if dir.is_empty() {
                    return Err(line.bad("missing directory"));
                }
                c.persistence_location = Some(PathBuf::from(dir));
            }
            "autosave_interval" | "autosave_on_changes" => {
                line.value(w)?;
                w.push(line.warning(format!(
                    "`{}` is ignored: Midge does not save snapshots; with `persistence true` it \
                     writes every QoS 1/2 message and session change to disk (fsynced) before \
                     acknowledging it",
                    line.key
                )));
            }
            "persistence_file" => {
                let name = line.value(w)?;
                w.push(line.warning(format!(
                    "`persistence_file {name}` is ignored: Midge's store is the file `{}` in \
                     `persistence_location` (a format of its own, beside Mosquitto's)",
                    crate::store::disk::FILE_NAME
                )));
            }
            "connection" => {
                let name = line.value(w)?;
                self.in_bridge = true;
                w.push(line.warning(format!(
                    "bridge `{name}` is ignored with all its settings: bridges are not \
                     supported by Midge yet"
                )));
            }
            key if keys::BRIDGE.contains(&key) => {
                if !self.in_bridge {
                    return Err(line.bad("is a bridge setting: only allowed after `connection`"));
                }
            }
            key => match keys::unsupported(key) {
                Some(why) => w.push(line.warning(format!("`{key}` is ignored: {why}"))),
                None => {
                    return Err(ConfigError::UnknownKey {
                        at: line.at.clone(),
                        key: key.to_string(),
                    });
                }
            },
        }
        Ok(())
    }

    /// `listener PORT [ADDRESS]`.
    fn listener(&mut self, line: &Line<'_>) -> Result<(), ConfigError> {
        let mut words = line.rest.split_whitespace();
        let port = words
            .next()
            .filter(|w| !w.starts_with('#'))
            .ok_or_else(|| line.bad("missing port"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| line.bad(format!("`{port}` is not a port (1 to 65535)")))?;
        let host = words.next().filter(|w| !w.starts_with('#'));
        if host.is_some() {
            line.no_more(words, &mut self.warnings);
        }
        if port == 0 && host.is_none() {
            return Err(line.bad(
                "port 0 needs a path: `listener 0 /path/to/socket` is a Unix socket listener",
            ));
        }
        let mut spec = ListenerSpec::new(Some(line.at.clone()), port);
        if port == 0 {
            // `listener 0 PATH`: a Unix domain socket.
            spec.unix = host.map(PathBuf::from);
            self.listeners.push(spec);
            return Ok(());
        }
        spec.host = host.and_then(|h| Self::setting(line, h.to_string()));
        self.listeners.push(spec);
        Ok(())
    }

    /// `log_dest stdout | stderr | file PATH | none` (`syslog`, `topic`, `dlt`: warned).
    /// The first one replaces the default (stderr); later ones add to it.
    fn log_dest(&mut self, line: &Line<'_>) -> Result<(), ConfigError> {
        let mut words = line.rest.split_whitespace();
        let dest = words.next().ok_or_else(|| line.bad("missing value"))?;
        let log = &mut self.config.log;
        if self.log_dest_at.is_none() {
            log.stderr = false;
            log.stdout = false;
            log.file = None;
        }
        self.log_dest_at = Some(line.at.clone());
        match dest {
            "stderr" => log.stderr = true,
            "stdout" => log.stdout = true,
            "none" => {
                log.stderr = false;
                log.stdout = false;
                log.file = None;
                self.log_dest_none = true;
            }
            "file" => {
                // The path is the rest of the line, spaces included, as in Mosquitto.
                let path = line.rest["file".len()..].trim();
                if path.is_empty() {
                    return Err(line.bad("`file` needs a path: log_dest file /var/log/midge.log"));
                }
                log.file = Some(PathBuf::from(path));
                return Ok(());
            }
            "syslog" | "topic" | "dlt" => {
                self.warnings.push(line.warning(format!(
                    "`log_dest {dest}` is ignored: Midge does not support it yet"
                )));
            }
            other => {
                return Err(line.bad(format!(
                    "expected stdout, stderr, file PATH, syslog, topic, dlt or none, not `{other}`"
                )));
            }
        }
        line.no_more(words, &mut self.warnings);
        Ok(())
    }

    /// `log_type`: Midge logs by level, so the most verbose type given sets the level.
    fn log_type(&mut self, line: &Line<'_>) -> Result<(), ConfigError> {
        let level = match line.value(&mut self.warnings)? {
            "none" => None,
            "error" => Some(LogLevel::Error),
            "warning" => Some(LogLevel::Warn),
            "notice" | "information" | "subscribe" | "unsubscribe" | "websockets" => {
                Some(LogLevel::Info)
            }
            "debug" | "all" => Some(LogLevel::Debug),
            other => {
                return Err(line.bad(format!(
                    "expected debug, error, warning, notice, information, subscribe, \
                     unsubscribe, websockets, none or all, not `{other}`"
                )));
            }
        };
        // The first log_type replaces the default; `none` clears what came before.
        let so_far = self.log_level.unwrap_or(LogLevel::Off);
        self.log_level = Some(level.map_or(LogLevel::Off, |l| l.max(so_far)));
        Ok(())
    }

    /// `include_dir DIR`: every `*.conf` in it, in Mosquitto's order.
    fn include_dir(&mut self, line: &Line<'_>) -> Result<(), ConfigError> {
        let dir = line.rest;
        if dir.is_empty() {
            return Err(line.bad("missing directory"));
        }
        let entries = std::fs::read_dir(dir)
            .map_err(|e| line.bad(format!("cannot open directory `{dir}`: {e}")))?;
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| line.bad(format!("cannot read directory `{dir}`: {e}")))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let path = entry.path();
            if name.ends_with(".conf") && path.is_file() {
                files.push((name, path));
            }
        }
        files.sort_by(|a, b| mosquitto_order(&a.0, &b.0));
        let main = std::fs::canonicalize(&self.main_path).ok();
        for (_, path) in files {
            if main.is_some() && std::fs::canonicalize(&path).ok() == main {
                return Err(line.bad(format!(
                    "`{dir}` holds the main configuration file, which must not be included"
                )));
            }
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            self.read(&text, &path, false)?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<LoadedConfig, ConfigError> {
        let explicit = !self.listeners.is_empty() || self.default_requested.is_some();
        let default = &self.default_listener;
        // Mosquitto starts its default listener for these even with no `port`.
        let trigger = default
            .max_connections
            .as_ref()
            .filter(|m| m.value >= 0)
            .map(|m| Setting {
                value: "max_connections",
                at: m.at.clone(),
            })
            .or_else(|| {
                default.domain.as_ref().map(|d| Setting {
                    value: "socket_domain",
                    at: d.at.clone(),
                })
            });
        let default_at = self.default_requested.clone().or(trigger.clone());
        let local_only = !explicit && trigger.is_none();
        let default_started = default_at.is_some() || local_only;
        if !default_started {
            self.warn_unused_default();
        }
        let mut specs = std::mem::take(&mut self.listeners);
        if default_started {
            specs.push(self.default_listener.clone());
        }

        let mut listener_at = Vec::new();
        let mut spec_of = Vec::new();
        self.config.listeners.clear();
        for (index, spec) in specs.iter().enumerate() {
            for listener in spec.listeners(local_only)? {
                self.config.listeners.push(listener);
                listener_at.push(spec.location(default_at.as_ref()));
                spec_of.push(index);
            }
        }
        self.config.allow_anonymous = self.merge_allow_anonymous(&specs, explicit);
        if self.per_listener_settings {
            // Each listener gets its own; Mosquitto 2's default once a listener is
            // defined is false.
            for (listener, &spec) in self.config.listeners.iter_mut().zip(&spec_of) {
                let allow = specs[spec].allow_anonymous.as_ref();
                listener.allow_anonymous = Some(allow.map_or(!explicit, |a| a.value));
            }
        }
        self.config.per_listener_settings = self.per_listener_settings;
        self.config.max_connections = self.merge_max_connections(&specs);
        self.config.max_topic_alias = self.merge_max_topic_alias(&specs);
        self.finish_log();

        if let Err(invalid) = self.config.validate() {
            let at = invalid
                .listener
                .and_then(|i| listener_at.get(i).cloned().flatten());
            return Err(match at {
                Some(Setting { value: key, at }) => ConfigError::BadValue {
                    at,
                    key: key.to_string(),
                    problem: invalid.problem,
                },
                None => ConfigError::Invalid {
                    path: self.main_path,
                    invalid,
                },
            });
        }
        Ok(LoadedConfig {
            config: self.config,
            format: ConfigFormat::Mosquitto,
            warnings: self.warnings,
            listeners_defined: !local_only,
        })
    }

    /// The level from `log_type`; stderr when `log_dest` named only destinations that
    /// Midge does not support.
    fn finish_log(&mut self) {
        self.config.log.level = self.log_level.unwrap_or(LogLevel::Info);
        let log = &self.config.log;
        let nowhere = !log.stderr && !log.stdout && log.file.is_none() && !self.log_dest_none;
        if let Some(at) = self.log_dest_at.clone().filter(|_| nowhere) {
            self.config.log.stderr = true;
            self.warnings.push(ConfigWarning {
                at,
                message: "no `log_dest` that Midge supports: logging to stderr".to_string(),
            });
        }
    }

    /// Listener settings given before the first `listener` go to Mosquitto's default
    /// listener; when the file does not start it, Mosquitto drops them.
    fn warn_unused_default(&mut self) {
        let default = &self.default_listener;
        let unused = [
            default
                .max_topic_alias
                .as_ref()
                .map(|s| (&s.at, "max_topic_alias")),
            default
                .allow_anonymous
                .as_ref()
                .map(|s| (&s.at, "allow_anonymous")),
        ];
        for (at, key) in unused.into_iter().flatten() {
            self.warnings.push(ConfigWarning {
                at: at.clone(),
                message: format!(
                    "`{key}` is ignored: above the first `listener` it sets Mosquitto's default \
                     listener, which this file does not start"
                ),
            });
        }
    }

    /// The global `allow_anonymous`: Mosquitto 2's default is false once a listener is
    /// defined, else true (local only). With `per_listener_settings` each listener has
    /// its own and this one is not used.
    fn merge_allow_anonymous(&mut self, _specs: &[ListenerSpec], explicit: bool) -> bool {
        let default = !explicit;
        self.allow_anonymous.as_ref().map_or(default, |s| s.value)
    }

    /// Mosquitto limits each listener; Midge limits all listeners together.
    fn merge_max_connections(&mut self, specs: &[ListenerSpec]) -> usize {
        let limits: Vec<Option<usize>> = specs
            .iter()
            .map(|s| {
                s.max_connections
                    .as_ref()
                    .filter(|m| m.value > 0)
                    .map(|m| m.value as usize)
            })
            .collect();
        let Some(at) = specs
            .iter()
            .find_map(|s| s.max_connections.as_ref().filter(|m| m.value > 0))
            .map(|m| m.at.clone())
        else {
            return 0;
        };
        if limits.len() == 1 {
            return limits[0].unwrap_or(0);
        }
        let (total, message) = if limits.iter().all(Option::is_some) {
            let total = limits.iter().flatten().sum();
            (
                total,
                format!(
                    "`max_connections` limits each listener in Mosquitto; Midge limits all \
                     listeners together, to their sum: {total}"
                ),
            )
        } else {
            (
                0,
                "`max_connections` limits only some listeners; Midge has one limit for all \
                 listeners together, so there is none"
                    .to_string(),
            )
        };
        self.warnings.push(ConfigWarning { at, message });
        total
    }

    fn merge_max_topic_alias(&mut self, specs: &[ListenerSpec]) -> u16 {
        let default = Config::default().max_topic_alias;
        let values: Vec<u16> = specs
            .iter()
            .map(|s| s.max_topic_alias.as_ref().map_or(default, |m| m.value))
            .collect();
        let lowest = values.iter().copied().min().unwrap_or(default);
        let at = specs
            .iter()
            .find_map(|s| s.max_topic_alias.as_ref().map(|m| m.at.clone()))
            .filter(|_| values.iter().any(|&v| v != lowest));
        if let Some(at) = at {
            self.warnings.push(ConfigWarning {
                at,
                message: format!(
                    "`max_topic_alias` differs between listeners; Midge has one value for all \
                     listeners: the lowest, {lowest}"
                ),
            });
        }
        lowest
    }
}
