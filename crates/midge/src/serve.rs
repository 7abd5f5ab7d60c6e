//! `midge serve`: run the broker, with Mosquitto's `-c`, `-p`, `-v` options.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use midge_broker::{Broker, Config, ListenerConfig};

/// Options of `midge serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Configuration file (Midge TOML).
    #[arg(short = 'c', long = "config-file")]
    config: Option<PathBuf>,
    /// Listen on this port on the loopback interfaces (repeatable), instead of the
    /// configured listeners.
    #[arg(short = 'p', long = "port")]
    ports: Vec<u16>,
    /// Verbose logging (debug level).
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Check the configuration and exit.
    #[arg(long)]
    test_config: bool,
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    let level = if args.verbose { "debug" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .init();
    let (mut config, from_file) = match &args.config {
        Some(path) => (load(path)?, true),
        None => (Config::default(), false),
    };
    if !args.ports.is_empty() {
        config.listeners = args
            .ports
            .iter()
            .flat_map(|&port| {
                [
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(Ipv6Addr::LOCALHOST),
                ]
                .map(|ip| ListenerConfig {
                    bind: SocketAddr::new(ip, port),
                })
            })
            .collect();
    }
    if args.test_config {
        println!("configuration OK");
        return Ok(());
    }
    if !from_file {
        tracing::info!(
            "Starting in local only mode: connections are only possible from clients on this \
             machine. Create a configuration file that defines a listener to allow remote access."
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

fn load(path: &PathBuf) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read configuration file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let mut bound = Vec::new();
    // Bind each listener; an IPv6 loopback that the machine lacks is skipped.
    let mut usable = config.clone();
    usable.listeners.clear();
    for listener in &config.listeners {
        match std::net::TcpListener::bind(listener.bind) {
            Ok(_) => usable.listeners.push(listener.clone()),
            Err(e) if listener.bind.is_ipv6() && listener.bind.ip().is_loopback() => {
                tracing::warn!(addr = %listener.bind, error = %e, "IPv6 loopback not available; skipped");
            }
            Err(e) => return Err(e).with_context(|| format!("cannot listen on {}", listener.bind)),
        }
    }
    let broker = Broker::start(usable)
        .await
        .context("cannot start the broker")?;
    for addr in broker.local_addrs() {
        tracing::info!(%addr, "listening");
        bound.push(*addr);
    }
    shutdown_signal().await;
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
