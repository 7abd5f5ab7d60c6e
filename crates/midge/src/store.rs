//! `midge store check DIR` and `midge store dump DIR`: a persistence store, offline.
//!
//! `check` reads every record as the broker does at start (without deleting anything)
//! and prints what it found; exit status 0: every record intact, 1: damaged records
//! (the broker would start, dropping and reporting them), 2: the store cannot be read
//! (the broker would refuse to start). `dump` prints every record, one per line, and
//! payload sizes rather than payloads. DIR is the `persistence_location` (or the
//! `midge.redb` file itself). Neither may run while a broker has the store open.

use std::path::PathBuf;

use midge_broker::store::{
    self, DiskStore, OpenMode, OutgoingState, RestoreMode, Store, Table, UnixMillis, format,
};

/// `midge store` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Debug, clap::Subcommand)]
enum StoreCommand {
    /// Check every record; exit 0 if intact, 1 if some are damaged, 2 if unreadable.
    Check {
        /// The persistence_location directory (or its midge.redb file).
        dir: PathBuf,
    },
    /// Print every record of the store (payload sizes, not payloads).
    Dump {
        /// The persistence_location directory (or its midge.redb file).
        dir: PathBuf,
    },
}

/// The one clock read of this tool: expiry is judged as of now.
#[allow(clippy::disallowed_methods)]
fn now() -> UnixMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Runs the command; returns the exit status.
pub(crate) fn run(args: StoreArgs) -> u8 {
    let (StoreCommand::Check { dir } | StoreCommand::Dump { dir }) = &args.command;
    let store = match DiskStore::open(dir, OpenMode::Existing) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("midge store: {e}");
            return 2;
        }
    };
    let result = match args.command {
        StoreCommand::Check { .. } => check(&store),
        StoreCommand::Dump { .. } => dump(&store),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("midge store: {e}");
            2
        }
    }
}

fn check(store: &DiskStore) -> Result<u8, store::StoreError> {
    let restored = store::restore(store, now(), RestoreMode::ReadOnly)?;
    let report = &restored.report;
    println!("{report}");
    for client in &report.expired_sessions {
        println!("expired session {client:?} (removed at the next start)");
    }
    for problem in &report.problems {
        println!("damaged: {problem}");
    }
    Ok(if report.is_clean() { 0 } else { 1 })
}

fn dump(store: &DiskStore) -> Result<u8, store::StoreError> {
    for table in Table::ALL {
        let mut lines = Vec::new();
        store.scan(table, &mut |key, value| {
            lines.push(record_line(table, key, value))
        })?;
        for line in lines {
            println!("{} {line}", table.name());
        }
    }
    Ok(0)
}

fn time(at: Option<UnixMillis>) -> String {
    at.map_or_else(|| "-".to_string(), |ms| format!("{ms}ms"))
}

fn message_line(m: &store::StoredMessage) -> String {
    match m.decode_publish() {
        Ok(p) => format!(
            "topic {:?} qos {} retain {} payload {} bytes expires_at {} origin {:?}",
            p.topic.as_str(),
            p.qos as u8,
            p.retain,
            p.payload.len(),
            time(m.expires_at),
            m.origin.as_deref().unwrap_or("")
        ),
        Err(e) => format!("<damaged: {e}>"),
    }
}

fn record_line(table: Table, key: &[u8], value: &[u8]) -> String {
    let damaged = |e: format::RecordError| {
        format!(
            "{} <damaged: {e}>",
            String::from_utf8_lossy(key).escape_debug()
        )
    };
    match table {
        Table::Meta => match format::open(value) {
            Ok(_) => format!("{} version {}", String::from_utf8_lossy(key), value[0]),
            Err(e) => damaged(e),
        },
        Table::Messages => match format::parse_message_key(key)
            .and_then(|id| Ok((id, format::decode_message(value)?)))
        {
            Ok((id, m)) => format!("{} {}", id.0, message_line(&m)),
            Err(e) => damaged(e),
        },
        Table::Sessions => match format::decode_session(value) {
            Ok(s) => {
                let subs: Vec<String> = s
                    .subscriptions
                    .iter()
                    .map(|sub| {
                        let id = sub.id.map(|i| format!(" id {i}")).unwrap_or_default();
                        format!("{} options 0x{:02x}{id}", sub.filter, sub.options)
                    })
                    .collect();
                let will = s.will.as_ref().map_or_else(
                    || "-".to_string(),
                    |w| {
                        format!(
                            "at {} {}",
                            time(Some(w.publish_at)),
                            message_line(&w.message)
                        )
                    },
                );
                format!(
                    "{:?} protocol {} session_expiry {} expires_at {} last_packet_id {} \
                     subscriptions [{}] will {will}",
                    s.client_id,
                    s.protocol,
                    s.session_expiry,
                    time(s.expires_at),
                    s.last_packet_id,
                    subs.join(", ")
                )
            }
            Err(e) => damaged(e),
        },
        Table::Outgoing => match format::parse_outgoing_key(key)
            .and_then(|k| Ok((k, format::decode_outgoing(value)?)))
        {
            Ok(((client, seq), o)) => {
                let state = match o.state {
                    OutgoingState::Queued => "queued".to_string(),
                    OutgoingState::Sent(id) => format!("sent({id})"),
                    OutgoingState::Released(id) => format!("released({id})"),
                };
                format!(
                    "{client:?} #{seq} message {} qos {} retain {} state {state} \
                     subscription_ids {:?} shared_group {:?}",
                    o.message.0,
                    o.qos as u8,
                    o.retain,
                    o.subscription_ids,
                    o.shared_group.as_deref().unwrap_or("")
                )
            }
            Err(e) => damaged(e),
        },
        Table::Incoming => match format::parse_incoming_key(key)
            .and_then(|k| format::decode_incoming(value).map(|()| k))
        {
            Ok((client, id)) => format!("{client:?} packet_id {id}"),
            Err(e) => damaged(e),
        },
        Table::Retained => match format::decode_retained(value) {
            Ok(r) => format!(
                "{:?} message {} expires_at {} size {}",
                String::from_utf8_lossy(key),
                r.message.0,
                time(r.expires_at),
                r.size
            ),
            Err(e) => damaged(e),
        },
    }
}
