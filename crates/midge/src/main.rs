//! `midge`: the broker and its tools in one binary.
//!
//! Subcommands: `serve` (the broker), `pub`, `sub`, `rr` (Mosquitto's client tools),
//! `passwd` (mosquitto_passwd), `bench` (a load generator) and `store` (a persistence
//! store, offline). Each lives in its own
//! module and owns its clap arguments.
//! `anyhow` is used here, at the binary's edge, and nowhere in the libraries.

mod bench;
mod limits;
mod passwd;
mod serve;
mod store;
mod tools;

use clap::{Parser, Subcommand};

/// Midge: an MQTT 3.1, 3.1.1 and 5.0 broker and its tools, in one binary.
#[derive(Debug, Parser)]
#[command(name = "midge", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker.
    Serve(serve::ServeArgs),
    /// Manage password files (mosquitto_passwd's options and file format).
    Passwd(passwd::PasswdArgs),
    /// Publish a message (mosquitto_pub's options, output and exit codes).
    Pub(tools::ToolArgs),
    /// Subscribe and print messages (mosquitto_sub's options, output and exit codes).
    Sub(tools::ToolArgs),
    /// Send a request and print its response (mosquitto_rr's options).
    Rr(tools::ToolArgs),
    /// Load-test an MQTT broker (any broker): connections, throughput, latency, loss.
    Bench(bench::BenchArgs),
    /// Inspect a persistence store offline: `check` or `dump` it.
    Store(store::StoreArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Passwd(args) => passwd::run(args),
        Command::Pub(args) => tools::run(tools::Tool::Pub, args),
        Command::Sub(args) => tools::run(tools::Tool::Sub, args),
        Command::Rr(args) => tools::run(tools::Tool::Rr, args),
        Command::Bench(args) => bench::run(args),
        // Exit statuses 1 and 2 carry meaning (see `store`).
        Command::Store(args) => std::process::exit(store::run(args).into()),
    }
}
