//! Option parsing shared by `midge pub`, `midge sub` and `midge rr`, with
//! `mosquitto_pub`/`mosquitto_sub`/`mosquitto_rr` 2.0's spellings, values, defaults and
//! error messages (`client/client_shared.c`). Mosquitto takes the word after an option as
//! its value whatever it looks like (`-C -W 1` gives `-C` the value `-W`), and so does
//! this parser; clap cannot, which is why these tools parse by hand.
//!
//! Options come first from the per-user options file (`$XDG_CONFIG_HOME/midge/<tool>` or
//! `~/.config/midge/<tool>`: one option per line, `option value`, `#` comments), then
//! from the command line.

use std::time::Duration;

use midge_codec::{ProtocolVersion, QoS};

/// Which tool is parsing: some options belong to one tool only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    Pub,
    Sub,
    Rr,
}

impl Tool {
    /// The name in messages (`Use 'midge pub --help' to see usage.`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Tool::Pub => "midge pub",
            Tool::Sub => "midge sub",
            Tool::Rr => "midge rr",
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            Tool::Pub => "pub",
            Tool::Sub => "sub",
            Tool::Rr => "rr",
        }
    }
}

/// Where the payload of `pub` and `rr` comes from: exactly one of `-m -f -l -s -n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Payload {
    Message(String),
    File(String),
    StdinLines,
    StdinFile,
    Null,
}

/// A password: `Debug` shows `<REDACTED>`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub(crate) String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<REDACTED>")
    }
}

/// Everything the command line said. Fields are Mosquitto's `struct mosq_config`.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) tool: Tool,
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    pub(crate) id: Option<String>,
    pub(crate) id_prefix: Option<String>,
    pub(crate) keepalive: u16,
    pub(crate) clean_session: bool,
    pub(crate) qos: QoS,
    pub(crate) version: ProtocolVersion,
    /// `-x`: `None` means "0, or infinite with `-c`".
    pub(crate) session_expiry: Option<u32>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Secret>,
    pub(crate) will_topic: Option<String>,
    pub(crate) will_payload: Option<String>,
    pub(crate) will_qos: QoS,
    pub(crate) will_retain: bool,
    pub(crate) quiet: bool,
    pub(crate) topics: Vec<String>,
    pub(crate) payload: Option<Payload>,
    pub(crate) retain: bool,
    pub(crate) repeat: u32,
    pub(crate) repeat_delay: Duration,
    pub(crate) filter_out: Vec<String>,
    pub(crate) unsubscribe: Vec<String>,
    pub(crate) msg_count: u32,
    pub(crate) timeout: Option<u32>,
    pub(crate) exit_after_sub: bool,
    pub(crate) no_retain: bool,
    pub(crate) retained_only: bool,
    pub(crate) remove_retained: bool,
    pub(crate) verbose: bool,
    pub(crate) eol: bool,
    pub(crate) format: Option<String>,
    pub(crate) pretty: bool,
    pub(crate) retain_as_published: bool,
    pub(crate) response_topic: Option<String>,
    /// `--random-filter`: messages printed per 10000.
    pub(crate) random_filter: u32,
    /// `-D`: MQTT 5.0 properties per packet.
    pub(crate) properties: super::properties::Properties,
    /// `-d`: print every packet, as libmosquitto's debug log.
    pub(crate) debug: bool,
    /// `-M`: most QoS 1/2 publications in flight (libmosquitto's default, 20).
    pub(crate) max_inflight: u16,
    /// `-A`: local address to bind to.
    pub(crate) bind_address: Option<String>,
    /// `--nodelay`: turn Nagle's algorithm off (it is on by default, as in Mosquitto).
    pub(crate) nodelay: bool,
    /// `--proxy socks5h://[user[:password]@]host[:port]`: the proxy's `host:port` and
    /// credentials.
    pub(crate) proxy: Option<(String, Option<(String, Secret)>)>,
    /// `--cafile`: trusted CAs (PEM); turns TLS on.
    pub(crate) cafile: Option<String>,
    /// `--capath`: a directory of trusted CAs; turns TLS on.
    pub(crate) capath: Option<String>,
    /// `--cert`: the client certificate (PEM), with `--key`.
    pub(crate) certfile: Option<String>,
    /// `--key`: the client certificate's private key (PEM).
    pub(crate) keyfile: Option<String>,
    /// `--insecure`: the server certificate's name is not checked.
    pub(crate) insecure: bool,
    /// `--tls-version tlsv1.3|tlsv1.2|tlsv1.1`: checked when connecting, as Mosquitto.
    pub(crate) tls_version: Option<String>,
    /// `--tls-alpn`: the ALPN protocol offered.
    pub(crate) tls_alpn: Option<String>,
    /// `--tls-use-os-certs`, or an `mqtts://`/`wss://` URL: trust the system's CAs (and
    /// so use TLS).
    pub(crate) tls_use_os_certs: bool,
    /// `--unix PATH`: a Unix domain socket instead of TCP.
    pub(crate) unix: Option<String>,
    /// A `ws://` or `wss://` URL: MQTT over WebSockets (path `/mqtt`, as libmosquitto).
    pub(crate) websockets: bool,
}

/// Why parsing stopped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// `--help`: print the usage, exit 1 (as Mosquitto does).
    Help,
    /// A bad option: this message (with its newlines), then the hint to use `--help`.
    Invalid(String),
    /// A missing topic or message: the usage, then this message.
    Usage(String),
}

impl Config {
    fn new(tool: Tool) -> Self {
        let rr = tool == Tool::Rr;
        Config {
            tool,
            host: "localhost".to_owned(),
            port: None,
            id: None,
            id_prefix: None,
            keepalive: 60,
            clean_session: true,
            qos: QoS::AtMostOnce,
            version: if rr {
                ProtocolVersion::V5
            } else {
                ProtocolVersion::V311
            },
            session_expiry: None,
            username: None,
            password: None,
            will_topic: None,
            will_payload: None,
            will_qos: QoS::AtMostOnce,
            will_retain: false,
            quiet: false,
            topics: Vec::new(),
            payload: None,
            retain: false,
            repeat: 1,
            repeat_delay: Duration::ZERO,
            filter_out: Vec::new(),
            unsubscribe: Vec::new(),
            msg_count: u32::from(rr),
            timeout: None,
            exit_after_sub: false,
            no_retain: false,
            retained_only: false,
            remove_retained: false,
            verbose: false,
            eol: true,
            format: None,
            pretty: false,
            retain_as_published: false,
            response_topic: None,
            random_filter: 10000,
            properties: Default::default(),
            debug: false,
            max_inflight: 20,
            bind_address: None,
            nodelay: false,
            proxy: None,
            cafile: None,
            capath: None,
            certfile: None,
            keyfile: None,
            insecure: false,
            tls_version: None,
            tls_alpn: None,
            tls_use_os_certs: false,
            unix: None,
            websockets: false,
        }
    }

    /// Parses the options file, then `args` (without the program and subcommand names).
    pub(crate) fn load(tool: Tool, args: &[String]) -> Result<Config, ParseError> {
        let mut config = Config::new(tool);
        if let Some(lines) = options_file(tool) {
            for line in lines.lines() {
                let line = line.trim_end_matches('\r');
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let words: Vec<String> = match line.split_once(' ') {
                    Some((option, value)) => vec![option.to_owned(), value.to_owned()],
                    None => vec![line.to_owned()],
                };
                config.parse_args(&words)?;
            }
        }
        config.parse_args(args)?;
        config.check()?;
        Ok(config)
    }

    /// The Session Expiry Interval for 5.0: `-x`, else infinite with `-c`, else 0.
    pub(crate) fn session_expiry(&self) -> u32 {
        self.session_expiry
            .unwrap_or(if self.clean_session { 0 } else { u32::MAX })
    }

    /// The port: `-p` (or the URL's), else 8883 with `--cafile`/`--capath`, else 1883.
    pub(crate) fn port(&self) -> u16 {
        self.port
            .unwrap_or(if self.cafile.is_some() || self.capath.is_some() {
                8883
            } else {
                1883
            })
    }

    /// Whether the connection uses TLS: with a CA file or directory, with the system's
    /// CAs, or on an explicit port 8883 (libmosquitto then trusts the system's CAs).
    pub(crate) fn uses_tls(&self) -> bool {
        self.cafile.is_some()
            || self.capath.is_some()
            || self.tls_use_os_certs
            || self.port == Some(8883)
    }

    fn parse_args(&mut self, args: &[String]) -> Result<(), ParseError> {
        let mut i = 0;
        while i < args.len() {
            let option = args[i].as_str();
            if option == "-D" || option == "--property" {
                let taken = self
                    .properties
                    .parse(&args[i + 1..])
                    .map_err(ParseError::Invalid)?;
                self.version = ProtocolVersion::V5;
                i += 1 + taken;
                continue;
            }
            let value = args.get(i + 1).map(String::as_str);
            if self.parse_one(option, value)? {
                i += 1;
            }
            i += 1;
        }
        Ok(())
    }

    /// Applies one option; `Ok(true)` when it took `value`.
    fn parse_one(&mut self, option: &str, value: Option<&str>) -> Result<bool, ParseError> {
        let tool = self.tool;
        let is_pub = tool == Tool::Pub;
        let is_sub = tool == Tool::Sub;
        let has_payload = tool != Tool::Sub;
        let need = |what: &str| -> Result<&str, ParseError> {
            value.ok_or_else(|| {
                ParseError::Invalid(format!(
                    "Error: {option} argument given but no {what} specified.\n\n"
                ))
            })
        };
        match option {
            "-h" | "--host" => self.host = need("host")?.to_owned(),
            "-p" | "--port" => {
                let port = atoi(need("port")?);
                if !(1..=65535).contains(&port) {
                    return invalid(format!("Error: Invalid port given: {port}\n"));
                }
                self.port = Some(port as u16);
            }
            "-L" | "--url" => self.parse_url(need("URL")?)?,
            "-i" | "--id" => {
                if self.id_prefix.is_some() {
                    return invalid("Error: -i and -I argument cannot be used together.\n\n");
                }
                self.id = Some(need("id")?.to_owned());
            }
            "-I" | "--id-prefix" => {
                if self.id.is_some() {
                    return invalid("Error: -i and -I argument cannot be used together.\n\n");
                }
                self.id_prefix = Some(need("id prefix")?.to_owned());
            }
            "-k" | "--keepalive" => {
                let keepalive = atoi(need("keepalive")?);
                if !(5..=65535).contains(&keepalive) {
                    return invalid(
                        "Error: Invalid keepalive given, it must be between 5 and 65535 inclusive.\n\n",
                    );
                }
                self.keepalive = keepalive as u16;
            }
            "-c" | "--disable-clean-session" => {
                self.clean_session = false;
                return Ok(false);
            }
            "-q" | "--qos" => self.qos = parse_qos(need("QoS")?)?,
            "-V" | "--protocol-version" => {
                self.version = match need("protocol version")? {
                    "mqttv31" | "31" => ProtocolVersion::V31,
                    "mqttv311" | "311" => ProtocolVersion::V311,
                    "mqttv5" | "5" => ProtocolVersion::V5,
                    _ => return invalid("Error: Invalid protocol version argument given.\n\n"),
                }
            }
            "-x" => {
                let value = need("session expiry interval")?;
                self.session_expiry = Some(match value {
                    "-1" | "∞" => u32::MAX,
                    _ => value.parse().map_err(|_| {
                        ParseError::Invalid(format!(
                            "Error: session-expiry-interval not a number: {value}\n\n"
                        ))
                    })?,
                });
            }
            "-u" | "--username" => self.username = Some(need("username")?.to_owned()),
            "-P" | "--pw" => self.password = Some(Secret(need("password")?.to_owned())),
            "--will-topic" => self.will_topic = Some(need("will topic")?.to_owned()),
            "--will-payload" => self.will_payload = Some(need("will payload")?.to_owned()),
            "--will-qos" => self.will_qos = parse_qos(need("will QoS")?)?,
            "--will-retain" => {
                self.will_retain = true;
                return Ok(false);
            }
            "--quiet" => {
                self.quiet = true;
                return Ok(false);
            }
            "-d" | "--debug" => {
                self.debug = true;
                return Ok(false);
            }
            "--nodelay" => {
                self.nodelay = true;
                return Ok(false);
            }
            "-A" => self.bind_address = Some(need("address")?.to_owned()),
            "--proxy" => self.proxy = Some(parse_proxy(need("proxy url")?)?),
            "--cafile" => self.cafile = Some(need_file("--cafile", value)?),
            "--capath" => {
                self.capath = Some(
                    value
                        .ok_or_else(|| {
                            ParseError::Invalid(
                                "Error: --capath argument given but no directory specified.\n\n"
                                    .to_owned(),
                            )
                        })?
                        .to_owned(),
                )
            }
            "--cert" => self.certfile = Some(need_file("--cert", value)?),
            "--key" => self.keyfile = Some(need_file("--key", value)?),
            "--insecure" => {
                self.insecure = true;
                return Ok(false);
            }
            "--tls-use-os-certs" => {
                self.tls_use_os_certs = true;
                return Ok(false);
            }
            "--tls-version" => self.tls_version = Some(need("version")?.to_owned()),
            "--tls-alpn" => self.tls_alpn = Some(need("protocol")?.to_owned()),
            "--unix" => {
                self.unix = Some(need("socket path")?.to_owned());
                self.port = None;
            }
            "-M" => {
                let Some(value) = value else {
                    return invalid("Error: -M argument given but max_inflight not specified.\n\n");
                };
                let max = atoi(value);
                if max < 1 {
                    return invalid("Error: Maximum inflight messages must be greater than 0.\n\n");
                }
                self.max_inflight = u16::try_from(max).unwrap_or(u16::MAX);
            }
            "--help" => return Err(ParseError::Help),
            "-t" | "--topic" => {
                let topic = need("topic")?;
                if is_sub {
                    self.topics.push(topic.to_owned());
                } else if !self.topics.is_empty() {
                    return invalid("Error: Only one topic can be given.\n\n");
                } else {
                    self.topics.push(topic.to_owned());
                }
            }
            "-m" | "--message" if has_payload => {
                let message = need("message")?.to_owned();
                self.set_payload(Payload::Message(message))?;
            }
            "-f" | "--file" if has_payload => {
                let file = need("file")?.to_owned();
                self.set_payload(Payload::File(file))?;
            }
            "-l" | "--stdin-line" if is_pub => return self.set_payload(Payload::StdinLines),
            "-s" | "--stdin-file" if has_payload => return self.set_payload(Payload::StdinFile),
            "-n" | "--null-message" if has_payload => return self.set_payload(Payload::Null),
            "-r" | "--retain" if is_pub => {
                self.retain = true;
                return Ok(false);
            }
            "--repeat" if is_pub => {
                let repeat = atoi(need("repeat count")?);
                if repeat < 1 {
                    return invalid("Error: --repeat argument must be >0.\n\n");
                }
                self.repeat = repeat as u32;
            }
            "--repeat-delay" if is_pub => {
                let value = need("repeat delay")?;
                let delay: f64 = value.parse().unwrap_or(-1.0);
                if !(delay >= 0.0 && delay.is_finite()) {
                    return invalid("Error: --repeat-delay argument must be >=0.0.\n\n");
                }
                self.repeat_delay = Duration::from_secs_f64(delay);
            }
            "-T" | "--filter-out" if is_sub => {
                self.filter_out.push(need("topic filter")?.to_owned())
            }
            "-U" | "--unsubscribe" if is_sub => {
                self.unsubscribe.push(need("unsubscribe topic")?.to_owned())
            }
            "-C" if is_sub => {
                let value = need("count")?;
                let count = atoi(value);
                if count < 1 {
                    return invalid(format!("Error: Invalid message count \"{count}\".\n\n"));
                }
                self.msg_count = count as u32;
            }
            "-W" if !is_pub => {
                let value = need("timeout")?;
                let timeout = atoi(value);
                if !(1..=3600).contains(&timeout) {
                    return invalid(format!("Error: Invalid timeout \"{timeout}\".\n\n"));
                }
                self.timeout = Some(timeout as u32);
            }
            "-E" if is_sub => {
                self.exit_after_sub = true;
                return Ok(false);
            }
            "-R" if is_sub => {
                self.no_retain = true;
                return Ok(false);
            }
            "--retained-only" if is_sub => {
                self.retained_only = true;
                return Ok(false);
            }
            "--remove-retained" if is_sub => {
                self.remove_retained = true;
                return Ok(false);
            }
            "--retain-as-published" if is_sub => {
                self.retain_as_published = true;
                return Ok(false);
            }
            "--random-filter" if is_sub => {
                let value = need("chance")?;
                // mosquitto's check, on its scale (tenths); the chance itself is the
                // documented percentage.
                let chance = atof(value);
                let tenths = (10.0 * chance) as i64;
                if !(1..=10000).contains(&tenths) {
                    return invalid("Error: --random-filter chance must be between 0.1-100.0\n\n");
                }
                self.random_filter = ((chance * 100.0) as u32).min(10000);
            }
            "-v" | "--verbose" if !is_pub => {
                self.verbose = true;
                return Ok(false);
            }
            "-N" if !is_pub => {
                self.eol = false;
                return Ok(false);
            }
            "-F" if !is_pub => {
                let format = need("format")?;
                super::format::check(format).map_err(ParseError::Invalid)?;
                self.format = Some(format.to_owned());
            }
            "--pretty" if !is_pub => {
                self.pretty = true;
                return Ok(false);
            }
            "-e" if tool == Tool::Rr => {
                self.response_topic = Some(need("response topic")?.to_owned())
            }
            _ => return invalid(format!("Error: Unknown option '{option}'.\n")),
        }
        Ok(true)
    }

    fn set_payload(&mut self, payload: Payload) -> Result<bool, ParseError> {
        if self.payload.is_some() {
            return invalid("Error: Only one type of message can be sent at once.\n\n");
        }
        let takes_value = matches!(payload, Payload::Message(_) | Payload::File(_));
        self.payload = Some(payload);
        Ok(takes_value)
    }

    /// `-L {mqtt,mqtts,ws,wss}://[username[:password]@]host[:port]/topic`: `mqtts` and
    /// `wss` use TLS with the system's CAs (and any `--cafile`), port 8883 by default;
    /// `mqtt` and `ws` port 1883 (as Mosquitto's newer clients; 2.0's take `mqtt` and
    /// `mqtts` only).
    fn parse_url(&mut self, url: &str) -> Result<(), ParseError> {
        let schemes = [
            ("mqtt://", false, false),
            ("mqtts://", true, false),
            ("ws://", false, true),
            ("wss://", true, true),
        ];
        let lower = url.to_ascii_lowercase();
        let Some((rest, tls, websockets)) = schemes.iter().find_map(|(scheme, tls, ws)| {
            lower
                .starts_with(scheme)
                .then(|| (&url[scheme.len()..], *tls, *ws))
        }) else {
            return invalid("Error: unsupported URL scheme.\n\n");
        };
        self.port = Some(if tls { 8883 } else { 1883 });
        self.tls_use_os_certs |= tls;
        self.websockets = websockets;
        let Some((authority, topic)) = rest.split_once('/') else {
            return invalid("Error: Invalid URL for -L argument specified - topic missing.\n");
        };
        let host_port = match authority.rsplit_once('@') {
            Some((user, host_port)) => {
                match user.split_once(':') {
                    Some((name, password)) => {
                        self.username = Some(name.to_owned());
                        self.password = Some(Secret(password.to_owned()));
                    }
                    None => self.username = Some(user.to_owned()),
                }
                host_port
            }
            None => authority,
        };
        match host_port.rsplit_once(':') {
            Some((host, port)) => {
                let port = atoi(port);
                if !(1..=65535).contains(&port) {
                    return invalid(format!("Error: Invalid port given: {port}\n"));
                }
                self.host = host.to_owned();
                self.port = Some(port as u16);
            }
            None => self.host = host_port.to_owned(),
        }
        if self.tool == Tool::Sub {
            self.topics.push(topic.to_owned());
        } else {
            self.topics = vec![topic.to_owned()];
        }
        Ok(())
    }

    /// The checks made once every option is in (`client_config_load`'s tail and each
    /// tool's own).
    fn check(&self) -> Result<(), ParseError> {
        if self.certfile.is_some() != self.keyfile.is_some() {
            return invalid(
                "Error: Both certfile and keyfile must be provided if one of them is set.\n",
            );
        }
        if self.will_payload.is_some() && self.will_topic.is_none() {
            return invalid("Error: Will payload given, but no will topic given.\n");
        }
        if self.will_retain && self.will_topic.is_none() {
            return invalid("Error: Will retain given, but no will topic given.\n");
        }
        let connect = &self.properties.connect;
        if connect.authentication_data.is_some() && connect.authentication_method.is_none() {
            return invalid(
                "Error: the authentication-data property needs an authentication-method property.\n",
            );
        }
        let no_id = self.id_prefix.is_some() || self.id.is_none();
        if self.version == ProtocolVersion::V5 {
            if self.session_expiry() == u32::MAX && no_id {
                return invalid(
                    "Error: You must provide a client id if you are using an infinite session expiry interval.\n",
                );
            }
        } else if !self.clean_session && no_id {
            return invalid(
                "Error: You must provide a client id if you are using the -c option.\n",
            );
        }
        if let Some(topic) = self.will_topic.as_ref().filter(|t| !valid_topic(t)) {
            return invalid(format!(
                "Error: Invalid will topic '{topic}', does it contain '+' or '#'?\n"
            ));
        }
        match self.tool {
            Tool::Pub => {
                if self.topics.is_empty() || self.payload.is_none() {
                    return Err(ParseError::Usage(
                        "Error: Both topic and message must be supplied.\n".to_owned(),
                    ));
                }
                if !valid_topic(&self.topics[0]) {
                    return invalid(format!(
                        "Error: Invalid publish topic '{}', does it contain '+' or '#'?\n",
                        self.topics[0]
                    ));
                }
            }
            Tool::Sub => {
                if self.topics.is_empty() {
                    return invalid("Error: You must specify a topic to subscribe to.\n");
                }
                for topic in self.topics.iter().chain(&self.unsubscribe) {
                    if !valid_filter(topic) {
                        return invalid(format!(
                            "Error: Invalid subscription topic '{topic}', are all '+' and '#' wildcards correct?\n"
                        ));
                    }
                }
                for topic in &self.filter_out {
                    if !valid_filter(topic) {
                        return invalid(format!(
                            "Error: Invalid filter topic '{topic}', are all '+' and '#' wildcards correct?\n"
                        ));
                    }
                }
            }
            Tool::Rr => {
                if self.topics.is_empty() || self.payload.is_none() || self.response_topic.is_none()
                {
                    return invalid(
                        "Error: All of topic, message, and response topic must be supplied.\n",
                    );
                }
                for (topic, what) in [
                    (&self.topics[0], "publish"),
                    (
                        self.response_topic.as_ref().unwrap_or(&self.topics[0]),
                        "response",
                    ),
                ] {
                    if !valid_topic(topic) {
                        return invalid(format!(
                            "Error: Invalid {what} topic '{topic}', does it contain '+' or '#'?\n"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The file name after `option`, or Mosquitto's complaint that there is none.
fn need_file(option: &str, value: Option<&str>) -> Result<String, ParseError> {
    value.map(str::to_owned).ok_or_else(|| {
        ParseError::Invalid(format!(
            "Error: {option} argument given but no file specified.\n\n"
        ))
    })
}

/// `socks5h://[user[:password]@]host[:port]`, the port 1080 by default; the only scheme
/// mosquitto's clients take.
fn parse_proxy(url: &str) -> Result<(String, Option<(String, Secret)>), ParseError> {
    let Some(rest) = url.strip_prefix("socks5h://") else {
        return invalid(format!("Error: Unsupported proxy protocol: {url}\n"));
    };
    let (credentials, host_port) = match rest.rsplit_once('@') {
        Some((user, host_port)) => {
            let (name, password) = user.split_once(':').unwrap_or((user, ""));
            (
                Some((name.to_owned(), Secret(password.to_owned()))),
                host_port,
            )
        }
        None => (None, rest),
    };
    let host_port = host_port.trim_end_matches('/');
    let has_port = match host_port.rsplit_once(':') {
        Some((host, port)) => !host.ends_with(':') && port.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    };
    let server = if has_port {
        host_port.to_owned()
    } else {
        format!("{host_port}:1080")
    };
    Ok((server, credentials))
}

fn invalid<T>(message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError::Invalid(message.into()))
}

/// C's `atoi`: leading digits (with a sign), 0 when there are none.
fn atoi(s: &str) -> i64 {
    let s = s.trim_start();
    let (sign, digits) = match s.as_bytes().first() {
        Some(b'-') => (-1, &s[1..]),
        Some(b'+') => (1, &s[1..]),
        _ => (1, s),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    sign * digits[..end]
        .parse::<i64>()
        .unwrap_or(0)
        .min(i64::from(i32::MAX))
}

/// C's `atof`: the longest leading decimal number, 0 when there is none.
fn atof(s: &str) -> f64 {
    let s = s.trim_start();
    let end = s
        .char_indices()
        .take_while(|&(i, c)| c.is_ascii_digit() || c == '.' || (i == 0 && (c == '-' || c == '+')))
        .count();
    (0..=end)
        .rev()
        .find_map(|n| s[..n].parse::<f64>().ok())
        .unwrap_or(0.0)
}

fn parse_qos(value: &str) -> Result<QoS, ParseError> {
    match atoi(value) {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        2 => Ok(QoS::ExactlyOnce),
        n => invalid(format!("Error: Invalid QoS given: {n}\n")),
    }
}

fn valid_topic(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#'])
}

fn valid_filter(filter: &str) -> bool {
    midge_codec::TopicFilter::new(filter.to_owned()).is_ok()
}

fn options_file(tool: Tool) -> Option<String> {
    let base = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => std::path::PathBuf::from(dir),
        _ => std::path::PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    std::fs::read_to_string(base.join("midge").join(tool.file_name())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(tool: Tool, args: &str) -> Result<Config, ParseError> {
        let args: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
        let mut config = Config::new(tool);
        config.parse_args(&args)?;
        config.check()?;
        Ok(config)
    }

    #[test]
    fn value_taken_whatever_it_looks_like() {
        assert_eq!(
            parse(Tool::Sub, "-t a -C -W 1").unwrap_err(),
            ParseError::Invalid("Error: Invalid message count \"0\".\n\n".into())
        );
    }

    #[test]
    fn tls_and_websocket_urls_set_the_transport_and_default_port() {
        let c = parse(Tool::Pub, "-L mqtts://broker.example/a -m x").unwrap();
        assert_eq!((c.host.as_str(), c.port()), ("broker.example", 8883));
        assert!(c.uses_tls() && c.tls_use_os_certs && !c.websockets);
        let c = parse(Tool::Sub, "-L WSS://u:pw@h:9001/a/#").unwrap();
        assert_eq!((c.port(), c.websockets, c.uses_tls()), (9001, true, true));
        assert_eq!(c.username.as_deref(), Some("u"));
        let c = parse(Tool::Sub, "-L ws://h/a").unwrap();
        assert_eq!((c.port(), c.websockets, c.uses_tls()), (1883, true, false));
        assert!(matches!(
            parse(Tool::Pub, "-L http://h/a -m x"),
            Err(ParseError::Invalid(m)) if m == "Error: unsupported URL scheme.\n\n"
        ));
    }

    #[test]
    fn cafile_makes_tls_on_8883_and_cert_needs_key() {
        let c = parse(Tool::Pub, "-t a -m x --cafile ca.pem").unwrap();
        assert_eq!((c.port(), c.uses_tls()), (8883, true));
        let c = parse(Tool::Pub, "-t a -m x --capath cas -p 1999").unwrap();
        assert_eq!((c.port(), c.uses_tls()), (1999, true));
        // An explicit 8883 means TLS with the system's CAs, as libmosquitto.
        assert!(parse(Tool::Pub, "-t a -m x -p 8883").unwrap().uses_tls());
        assert!(!parse(Tool::Pub, "-t a -m x --insecure").unwrap().uses_tls());
        assert_eq!(
            parse(Tool::Pub, "-t a -m x --cafile ca.pem --cert c.pem").unwrap_err(),
            ParseError::Invalid(
                "Error: Both certfile and keyfile must be provided if one of them is set.\n"
                    .to_owned()
            )
        );
        assert_eq!(
            parse(Tool::Sub, "-t a --cafile").unwrap_err(),
            ParseError::Invalid(
                "Error: --cafile argument given but no file specified.\n\n".to_owned()
            )
        );
        let c = parse(Tool::Sub, "-t a --unix /run/m.sock").unwrap();
        assert_eq!(c.unix.as_deref(), Some("/run/m.sock"));
    }

    #[test]
    fn url_sets_host_port_credentials_topic() {
        let c = parse(Tool::Pub, "-L mqtt://u:pw@example.org:1999/a/b -m x").unwrap();
        assert_eq!(c.host, "example.org");
        assert_eq!(c.port(), 1999);
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.password, Some(Secret("pw".into())));
        assert_eq!(c.topics, ["a/b"]);
    }

    #[test]
    fn protocol_version_spellings() {
        for (arg, v) in [
            ("31", ProtocolVersion::V31),
            ("mqttv31", ProtocolVersion::V31),
            ("311", ProtocolVersion::V311),
            ("mqttv311", ProtocolVersion::V311),
            ("5", ProtocolVersion::V5),
            ("mqttv5", ProtocolVersion::V5),
        ] {
            let c = parse(Tool::Pub, &format!("-t a -m x -V {arg}")).unwrap();
            assert_eq!(c.version, v);
        }
    }
}
