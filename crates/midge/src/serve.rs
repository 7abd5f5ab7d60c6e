//! `midge serve`: run the broker, with Mosquitto's `-c`, `-p`, `-v` options.
//!
//! `-c` reads Midge's TOML or a mosquitto.conf (`midge_broker::config::load` tells them
//! apart); the configuration's warnings are logged at start, and a bad configuration
//! ends the process with its error (file, line, key) and exit status 1. With no file the
//! broker runs local only, as Mosquitto 2 does, and says so.

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use midge_broker::config::{self, LoadedConfig, LogConfig};
use midge_broker::{Broker, Config, ListenerConfig};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Options of `midge serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Configuration file: Midge TOML (see midge.example.toml) or a Mosquitto
    /// mosquitto.conf, recognised by its syntax.
    #[arg(short = 'c', long = "config-file", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen on this port on the loopback addresses (repeatable). As in Mosquitto 2, it
    /// is ignored when the configuration file defines listeners.
    #[arg(short = 'p', long = "port", value_name = "PORT",
          value_parser = clap::value_parser!(u16).range(1..))]
    ports: Vec<u16>,
    /// Verbose logging (debug level), whatever the configuration says.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Check the configuration, print OK or the error, and exit (status 0 or 1).
    #[arg(long)]
    test_config: bool,
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut loaded = match &args.config {
        Some(path) => config::load(path).unwrap_or_else(|error| {
            // The message names the file, the line and the key: it is all the user needs
            // (no backtrace, whatever RUST_BACKTRACE says).
            eprintln!("Error: {error}");
            std::process::exit(1)
        }),
        None => LoadedConfig::defaults(),
    };
    let ports_ignored = !args.ports.is_empty() && loaded.listeners_defined;
    if !args.ports.is_empty() && !loaded.listeners_defined {
        loaded.config.listeners = loopback_listeners(&args.ports);
    }
    loaded
        .config
        .validate()
        .map_err(|e| anyhow::anyhow!("-p: {e}"))?;

    if args.test_config {
        for warning in &loaded.warnings {
            eprintln!("warning: {warning}");
        }
        match &args.config {
            Some(path) => println!(
                "{}: configuration OK ({})",
                path.display(),
                loaded.format.name()
            ),
            None => println!("default configuration OK"),
        }
        return Ok(());
    }

    init_logging(&loaded.config.log, args.verbose)?;
    // Each connection is a file: the soft limit would cap them (as Mosquitto, up to the
    // hard limit).
    match crate::limits::raise_open_files() {
        Ok(Some((from, to))) => tracing::info!(from, to, "open file limit raised"),
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "cannot raise the open file limit"),
    }
    if let Some(path) = &args.config {
        tracing::info!(
            file = %path.display(),
            format = loaded.format.name(),
            "configuration loaded"
        );
    }
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    if ports_ignored {
        tracing::warn!(
            "-p is ignored: the configuration file defines listeners (as in Mosquitto 2)"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Mosquitto's local only mode: no listener defined, only the loopback defaults or -p.
    let local_only = !loaded.listeners_defined;
    runtime.block_on(serve(loaded.config, local_only))
}

/// `-p PORT`: PORT on 127.0.0.1 and ::1, for each PORT.
fn loopback_listeners(ports: &[u16]) -> Vec<ListenerConfig> {
    ports
        .iter()
        .flat_map(|&port| {
            [
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]
            .map(|ip| ListenerConfig::new(SocketAddr::new(ip, port)))
        })
        .collect()
}

/// Logs to the configured destinations, at the configured level; `-v` raises it to
/// debug and `RUST_LOG` overrides both.
fn init_logging(log: &LogConfig, verbose: bool) -> anyhow::Result<()> {
    use tracing_subscriber::{EnvFilter, fmt};
    let level = if verbose { "debug" } else { log.level.as_str() };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let stderr = log.stderr.then(|| {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
    });
    let stdout = log.stdout.then(|| {
        fmt::layer()
            .with_writer(std::io::stdout)
            .with_ansi(std::io::stdout().is_terminal())
    });
    let file = match &log.file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open log file {}", path.display()))?;
            Some(fmt::layer().with_writer(Mutex::new(file)).with_ansi(false))
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(stdout)
        .with(file)
        .init();
    Ok(())
}

async fn serve(mut config: Config, local_only: bool) -> anyhow::Result<()> {
    // Loopback and wildcard IPv6 listeners (the defaults, `-p`, a mosquitto.conf
    // `listener PORT`) are skipped on a machine without IPv6, as Mosquitto skips them.
    if std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_err() {
        config.listeners.retain(|listener| {
            let Some(addr) = listener.bind else {
                return true; // a Unix socket
            };
            let ip = addr.ip();
            let skip = ip.is_ipv6() && (ip.is_loopback() || ip.is_unspecified());
            if skip {
                tracing::warn!(%addr, "IPv6 is not available; listener skipped");
            }
            !skip
        });
        anyhow::ensure!(!config.listeners.is_empty(), "no listener is left to start");
    }
    let unix_sockets: Vec<_> = config
        .listeners
        .iter()
        .filter_map(|l| l.unix_socket.clone())
        .collect();
    let broker = Broker::start(config)
        .await
        .context("cannot start the broker")?;
    // Installed before the broker says it listens: from then on SIGHUP reloads.
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot install the SIGHUP handler")?;
    if local_only {
        tracing::info!(
            "Starting in local only mode: only clients on this machine can connect. To allow \
             remote access, define a listener in a configuration file (`listener 1883` in a \
             mosquitto.conf, or a [[listener]] in Midge TOML: see midge.example.toml)."
        );
    }
    for addr in broker.local_addrs() {
        tracing::info!(%addr, "listening");
    }
    for path in unix_sockets {
        tracing::info!(path = %path.display(), "listening on a Unix socket");
    }
    let stop = shutdown_signal();
    tokio::pin!(stop);
    // SIGHUP reloads the password and ACL files and the TLS certificates, as it makes
    // Mosquitto do; a file that fails to load keeps the previous one (`reload_auth` and
    // `reload_tls` log the outcome). Connections stay up.
    #[cfg(unix)]
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading the password, ACL and certificate files");
                let _ = broker.reload_auth();
                let _ = broker.reload_tls();
            }
        }
    }
    #[cfg(not(unix))]
    stop.await;
    tracing::info!("shutting down");
    broker.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
