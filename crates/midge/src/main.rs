//! `midge`: the broker and its tools in one binary.
//!
//! Subcommands are added here as they are built (`serve` today; `pub`, `sub`, `rr`,
//! `passwd`, `bench` to come); each lives in its own module and owns its clap arguments.
//! `anyhow` is used here, at the binary's edge, and nowhere in the libraries.

mod passwd;
mod serve;

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Passwd(args) => passwd::run(args),
    }
}
