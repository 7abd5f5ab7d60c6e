//! `midge pub`, `midge sub` and `midge rr`: command-line MQTT clients built on
//! `midge-client` that take `mosquitto_pub`/`mosquitto_sub`/`mosquitto_rr` 2.0's options
//! and print what they print, with the same exit codes, so that a script keeps working
//! when only the command name changes.
//!
//! - `options.rs`: the options, shared by the three tools (and the options file).
//! - `publish.rs`: `midge pub`. `subscribe.rs`: `midge sub`. `rr.rs`: `midge rr`.
//! - `properties.rs`: `-D`, MQTT 5.0 properties per packet.
//! - `format.rs`: how a received message is printed (`-v`, `-N`, `-F`); `clock.rs` its
//!   time codes, `json.rs` its `%j` and `%J`.
//! - `debug.rs`: `-d`, libmosquitto's packet log.
//!
//! Transports are `midge-client`'s: TLS (`--cafile`, `--capath`, `--cert`/`--key`,
//! `--insecure`, `--tls-version`, `--tls-alpn`, `--tls-use-os-certs`, `mqtts://`),
//! WebSocket (`ws://`, `wss://`) and Unix sockets (`--unix`). Not supported: TLS-PSK,
//! `--ciphers`, `--tls-engine`, `--keyform`, `--tls-keylog` (refused as unknown).

mod clock;
mod debug;
mod format;
mod json;
mod options;
mod properties;
mod publish;
mod rr;
mod subscribe;

use std::io::Write as _;
use std::time::Duration;

use bytes::Bytes;
use midge_client::{
    Client, ClientError, ConnectOptions, Events, ReconnectPolicy, TlsOptions, TlsVersion,
};
use midge_codec::{Disconnect, LastWill, ProtocolVersion, ReasonCode, TopicName};

pub(crate) use options::Tool;
use options::{Config, ParseError};

/// The words after `midge pub`/`sub`/`rr`, taken as they are: these tools parse their
/// own options, as Mosquitto's do (`-h` is the host, `--help` the help).
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub(crate) struct ToolArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    args: Vec<String>,
}

/// Runs `tool` and exits with its exit code.
pub(crate) fn run(tool: Tool, args: ToolArgs) -> ! {
    let code = match Config::load(tool, &args.args) {
        Ok(config) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            runtime.block_on(async {
                match tool {
                    Tool::Pub => publish::run(config).await,
                    Tool::Sub => subscribe::run(config).await,
                    Tool::Rr => rr::run(config).await,
                }
            })
        }
        Err(ParseError::Help) => {
            print!("{}", usage(tool));
            1
        }
        Err(ParseError::Usage(message)) => {
            print!("{}", usage(tool));
            eprint!("{message}");
            1
        }
        Err(ParseError::Invalid(message)) => {
            eprint!("{message}");
            eprintln!("\nUse '{} --help' to see usage.", tool.name());
            1
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

/// An error message on standard error, unless `--quiet`.
/// The message of `midge pub` and `midge rr` from `-m`, `-f` or `-s` (empty for `-n`,
/// and for `-l`, which sends line by line); `None`, with the error printed as Mosquitto
/// prints it, when a file or stdin cannot be read.
fn read_payload(config: &Config) -> Option<Bytes> {
    use std::io::Read as _;
    match &config.payload {
        Some(options::Payload::Message(message)) => Some(Bytes::from(message.clone().into_bytes())),
        Some(options::Payload::File(path)) => match std::fs::read(path) {
            Ok(data) => Some(Bytes::from(data)),
            Err(_) => {
                err_print(
                    config,
                    &format!(
                        "Error: Unable to open file \"{path}\".\nError loading input file \"{path}\".\n"
                    ),
                );
                None
            }
        },
        Some(options::Payload::StdinFile) => {
            let mut data = Vec::new();
            if std::io::stdin().read_to_end(&mut data).is_err() {
                err_print(config, "Error loading input from stdin.\n");
                return None;
            }
            Some(Bytes::from(data))
        }
        Some(options::Payload::Null | options::Payload::StdinLines) | None => Some(Bytes::new()),
    }
}

fn err_print(config: &Config, message: &str) {
    if !config.quiet {
        eprint!("{message}");
    }
}

/// Prints a received message on standard output as the options say (`-v`, `-N`, `-F`,
/// `--pretty`), and what could not be formatted on standard error (`midge sub` and
/// `midge rr`). `out` is scratch space, kept from one message to the next.
fn print_message(config: &Config, out: &mut Vec<u8>, message: &midge_codec::Publish) {
    out.clear();
    let errors = format::print(
        out,
        message,
        format::Style {
            format: config.format.as_deref(),
            verbose: config.verbose,
            eol: config.eol,
            pretty: config.pretty,
            v5: config.version == ProtocolVersion::V5,
        },
    );
    for error in errors {
        err_print(config, &error);
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out).and_then(|()| stdout.flush());
}

/// Connects as the options say. On failure, prints what Mosquitto prints and returns the
/// exit code: the CONNACK's code when refused, 1 otherwise.
async fn connect(config: &Config, reconnect: bool) -> Result<(Client, Events), i32> {
    if !config.clean_session && (config.id.is_none() || config.id_prefix.is_some()) {
        // libmosquitto's mosquitto_new refuses a persistent session without an id.
        err_print(config, "Error: Invalid id and/or clean_session.\n");
        return Err(1);
    }
    let mut options = ConnectOptions::new()
        .server(format!("{}:{}", config.host, config.port()))
        .version(config.version)
        .clean_start(config.clean_session)
        .keep_alive(Duration::from_secs(config.keepalive.into()))
        .auto_topic_alias(false)
        .max_inflight(config.max_inflight)
        .tcp_nodelay(config.nodelay)
        .reconnect(if reconnect {
            // libmosquitto's default: retry every second, for ever.
            ReconnectPolicy::exponential(Duration::from_secs(1), Duration::from_secs(1))
        } else {
            ReconnectPolicy::never()
        });
    if let Some((proxy, credentials)) = &config.proxy {
        let credentials = credentials
            .as_ref()
            .map(|(user, password)| (user.clone(), password.0.clone()));
        options = options.socks5_proxy(proxy, credentials);
    }
    if let Some(address) = &config.bind_address {
        options = options.bind_address(address.as_str());
    }
    if config.debug {
        let log = debug::DebugLog::new(
            config.tool == Tool::Sub && !config.quiet,
            config.version == ProtocolVersion::V5,
        );
        options = options.observe_packets(
            move |d: midge_client::Direction, id: &str, p: &midge_codec::Packet| {
                log.packet(d, id, p)
            },
        );
    }
    if let Some(id) = &config.id {
        options = options.client_id(id.as_str());
    } else if let Some(prefix) = &config.id_prefix {
        options = options.client_id(format!("{prefix}{}", std::process::id()));
    }
    if config.version == ProtocolVersion::V5 {
        options = options.properties(config.properties.connect.clone());
        let expiry = config.session_expiry();
        if expiry != 0 {
            options = options.session_expiry_interval(expiry);
        }
    }
    if let Some(username) = &config.username {
        options = options.username(username.as_str());
    }
    if let Some(password) = &config.password {
        options = options.password(Bytes::from(password.0.clone().into_bytes()));
    }
    if let Some(topic) = &config.will_topic {
        let Ok(topic) = TopicName::new(topic.as_str()) else {
            err_print(config, "Error: Invalid will topic.\n");
            return Err(1);
        };
        let payload = config.will_payload.clone().unwrap_or_default();
        options = options.will(LastWill {
            topic,
            payload: Bytes::from(payload.into_bytes()),
            qos: config.will_qos,
            retain: config.will_retain,
            properties: config.properties.will.clone(),
        });
    }
    options = transport(config, options)?;
    match Client::connect(options).await {
        Ok(connected) => Ok(connected),
        Err(e) => Err(report_connect_error(config, &e)),
    }
}

/// The transport options: `--unix`, a `ws://`/`wss://` URL, and TLS as
/// `client_tls_opts_set` sets it up, with its messages for options it refuses.
fn transport(config: &Config, mut options: ConnectOptions) -> Result<ConnectOptions, i32> {
    if let Some(path) = &config.unix {
        options = options.unix_socket(path);
    }
    if config.websockets {
        options = options.websocket("/mqtt");
    }
    let with_ca = config.cafile.is_some() || config.capath.is_some();
    if with_ca {
        // mosquitto_tls_set checks that the files can be opened.
        let unreadable = [&config.cafile, &config.certfile, &config.keyfile]
            .into_iter()
            .flatten()
            .any(|file| std::fs::File::open(file).is_err());
        if unreadable {
            err_print(
                config,
                "Error: Problem setting TLS options: File not found.\n",
            );
            return Err(1);
        }
    }
    let min_version = match config.tls_version.as_deref() {
        None | Some("tlsv1.2") => TlsVersion::Tls12,
        Some("tlsv1.3") => TlsVersion::Tls13,
        // rustls has no TLS 1.1: "1.1 or newer" offers 1.2 and 1.3.
        Some("tlsv1.1") => TlsVersion::Tls12,
        Some(_) => {
            err_print(
                config,
                "Error: Problem setting TLS options, check the options are valid.\n",
            );
            return Err(1);
        }
    };
    if !config.uses_tls() {
        return Ok(options);
    }
    let mut tls = TlsOptions::new()
        .min_version(min_version)
        .insecure_skip_name_check(config.insecure)
        // Without a CA file or directory libmosquitto trusts the system's CAs.
        .use_os_roots(config.tls_use_os_certs || !with_ca);
    if let Some(file) = &config.cafile {
        tls = tls.ca_file(file);
    }
    if let Some(dir) = &config.capath {
        tls = tls.ca_path(dir);
    }
    // The client certificate goes with a CA file or directory (mosquitto_tls_set).
    if let (true, Some(cert), Some(key)) = (with_ca, &config.certfile, &config.keyfile) {
        tls = tls.client_certificate(cert, key);
    }
    if let Some(protocol) = &config.tls_alpn {
        tls = tls.alpn(protocol.as_bytes());
    }
    Ok(options.tls(tls))
}

/// Prints a failed connection as Mosquitto does; returns the exit code.
fn report_connect_error(config: &Config, e: &ClientError) -> i32 {
    match e.reason_code().filter(|_| e.is_refused()) {
        // mosquitto_rr words every refusal as a 5.0 reason code, even a 3.1.1 one.
        Some(code) if config.tool == Tool::Rr && config.version != ProtocolVersion::V5 => {
            err_print(config, "Connection error: Unknown reason\n");
            code.to_connack_return_code().into()
        }
        Some(code) if config.version == ProtocolVersion::V5 => {
            err_print(
                config,
                &format!("Connection error: {}\n", reason_string(code)),
            );
            if config.tool == Tool::Pub {
                // libmosquitto's loop ends with MOSQ_ERR_PROTOCOL after a 5.0 refusal.
                err_print(
                    config,
                    "Error: A network protocol error occurred when communicating with the broker.\n",
                );
            }
            code as u8 as i32
        }
        Some(code) => {
            let code = code.to_connack_return_code();
            err_print(
                config,
                &format!("Connection error: {}\n", connack_string(code)),
            );
            if config.tool == Tool::Pub {
                err_print(config, "Error: The connection was refused.\n");
            }
            code.into()
        }
        None if e.is_proxy() => {
            err_print(config, "Error: Proxy error.\n");
            // MOSQ_ERR_PROXY.
            16
        }
        // What OpenSSL says differs from what rustls says; libmosquitto's summary is
        // the same (MOSQ_ERR_TLS).
        None if e.is_tls() => {
            err_print(config, "Unable to connect (A TLS error occurred.).\n");
            1
        }
        None if e.is_websocket() => {
            err_print(config, &format!("Error: {e}\n"));
            1
        }
        None if e.is_lookup() => {
            err_print(config, "Unable to connect (Lookup error.).\n");
            1
        }
        None => {
            err_print(config, &format!("Error: {}\n", io_message(e)));
            1
        }
    }
}

/// The operating system's words for an I/O failure (`strerror`), as Mosquitto prints
/// them: "Connection refused".
fn io_message(e: &ClientError) -> String {
    let mut source = std::error::Error::source(e);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            let text = io.to_string();
            return match text.find(" (os error") {
                Some(end) => text[..end].to_owned(),
                None => text,
            };
        }
        source = error.source();
    }
    e.to_string()
}

/// `mosquitto_connack_string`.
fn connack_string(code: u8) -> &'static str {
    match code {
        0 => "Connection Accepted.",
        1 => "Connection Refused: unacceptable protocol version.",
        2 => "Connection Refused: identifier rejected.",
        3 => "Connection Refused: broker unavailable.",
        4 => "Connection Refused: bad user name or password.",
        5 => "Connection Refused: not authorised.",
        _ => "Connection Refused: unknown reason.",
    }
}

/// `mosquitto_reason_string` for the codes a CONNACK can carry.
fn reason_string(code: ReasonCode) -> &'static str {
    match code as u8 {
        0x80 => "Unspecified error",
        0x81 => "Malformed packet",
        0x82 => "Protocol error",
        0x83 => "Implementation specific error",
        0x84 => "Unsupported protocol version",
        0x85 => "Client identifier not valid",
        0x86 => "Bad user name or password",
        0x87 => "Not authorized",
        0x88 => "Server unavailable",
        0x89 => "Server busy",
        0x8A => "Banned",
        0x8C => "Bad authentication method",
        0x90 => "Topic name invalid",
        0x95 => "Packet too large",
        0x97 => "Quota exceeded",
        0x99 => "Payload format invalid",
        0x9A => "Retain not supported",
        0x9B => "QoS not supported",
        0x9C => "Use another server",
        0x9D => "Server moved",
        0x9F => "Connection rate exceeded",
        _ => "Unknown reason",
    }
}

fn usage(tool: Tool) -> String {
    let name = tool.name();
    let common = "{[-h host] [--unix path] [-p port] | -L mqtt(s)|ws(s)://[user[:password]@]host[:port]/topic}\n\
                  \x20      [-i id] [-I id_prefix] [-k keepalive] [-c] [-q qos] [-x session-expiry]\n\
                  \x20      [-V mqttv31|mqttv311|mqttv5] [-u username [-P password]] [--quiet]\n\
                  \x20      [-d] [-A bind_address] [--nodelay] [-M max_inflight] [--proxy socks-url]\n\
                  \x20      [--will-topic topic [--will-payload payload] [--will-qos qos] [--will-retain]]\n\
                  \x20      [{--cafile file | --capath dir} [--cert file --key file] [--insecure]\n\
                  \x20       [--tls-version version] [--tls-alpn protocol] [--tls-use-os-certs]]\n";
    let own = match tool {
        Tool::Pub => {
            "       -t topic {-m message | -f file | -l | -s | -n} [-r] [--repeat N] [--repeat-delay time]\n"
        }
        Tool::Sub => {
            "       -t topic ... [-T filter_out] [-U unsub_topic] [-C msg_count] [-W timeout] [-E] [-R]\n\
             \x20      [--retained-only] [--remove-retained] [-v] [-N] [-F format] [--pretty]\n\
             \x20      [--retain-as-published] [--random-filter chance]\n"
        }
        Tool::Rr => {
            "       -t topic -e response-topic {-m message | -f file | -s | -n} [-v] [-N] [-F format] [-W timeout]\n"
        }
    };
    format!(
        "{name}: an MQTT client, with mosquitto_{short}'s options.\n\nUsage: {name} {common}{own}       {name} --help\n",
        short = tool.file_name_short()
    )
}

impl Tool {
    fn file_name_short(self) -> &'static str {
        match self {
            Tool::Pub => "pub",
            Tool::Sub => "sub",
            Tool::Rr => "rr",
        }
    }
}

/// Disconnects normally, with the `-D disconnect` properties.
async fn disconnect(config: &Config, client: &Client) {
    let disconnect = Disconnect {
        properties: config.properties.disconnect.clone(),
        ..Disconnect::default()
    };
    let _ = client.disconnect_with(disconnect).await;
}

/// Exit status of `-W` running out, as mosquitto_sub and mosquitto_rr have it.
const EXIT_TIMED_OUT: i32 = 27;

/// Runs `work` under `-W`'s time limit, if given ("Timed out", status 27), then
/// disconnects: the shared ending of `midge sub` and `midge rr`.
async fn run_with_timeout(
    config: &Config,
    client: &Client,
    work: impl std::future::Future<Output = i32>,
) -> i32 {
    let code = match config.timeout {
        Some(seconds) => {
            match tokio::time::timeout(Duration::from_secs(seconds.into()), work).await {
                Ok(code) => code,
                Err(_) => {
                    err_print(config, "Timed out\n");
                    EXIT_TIMED_OUT
                }
            }
        }
        None => work.await,
    };
    disconnect(config, client).await;
    code
}
