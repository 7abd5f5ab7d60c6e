//! Group-commit write pattern of a broker with persistence: per batch, B messages, each
//! one body record (a 30-byte topic and a 256-byte payload) and FANOUT session
//! references, inserted; the previous batch's bodies and references deleted (the
//! messages were acknowledged); one fsync per batch. Each engine and batch size runs
//! ROUNDS times, interleaved, and the median is printed.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

const FANOUT: u64 = 4;
const PAYLOAD: usize = 256;
const ROUNDS: usize = 3;

fn body(i: u64) -> Vec<u8> {
    let mut v = format!("sensors/building-{:02}/floor/temp", i % 100).into_bytes();
    v.resize(v.len() + PAYLOAD, (i % 251) as u8);
    v
}

fn mkey(i: u64) -> Vec<u8> {
    let mut k = vec![b'm'];
    k.extend_from_slice(&i.to_be_bytes());
    k
}

fn rkey(s: u64, i: u64) -> Vec<u8> {
    let mut k = vec![b'q'];
    k.extend_from_slice(&s.to_be_bytes());
    k.extend_from_slice(&i.to_be_bytes());
    k
}

/// One batch's changes: (key, Some(value)) puts, (key, None) deletes.
fn batch(first: u64, size: u64) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut changes = Vec::new();
    for j in first..first + size {
        changes.push((mkey(j), Some(body(j))));
        for s in 0..FANOUT {
            changes.push((rkey(s, j), Some(mkey(j))));
        }
        if j >= size {
            let old = j - size;
            changes.push((mkey(old), None));
            for s in 0..FANOUT {
                changes.push((rkey(s, old), None));
            }
        }
    }
    changes
}

fn redb(dir: &Path, size: u64, total: u64) -> f64 {
    use redb::{Database, TableDefinition};
    const T: TableDefinition<&[u8], &[u8]> = TableDefinition::new("t");
    let db = Database::create(dir.join("r.redb")).unwrap();
    let start = Instant::now();
    for first in (0..total).step_by(size as usize) {
        let changes = batch(first, size);
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(T).unwrap();
            for (k, v) in &changes {
                match v {
                    Some(v) => {
                        t.insert(k.as_slice(), v.as_slice()).unwrap();
                    }
                    None => {
                        t.remove(k.as_slice()).unwrap();
                    }
                }
            }
        }
        tx.commit().unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

fn fjall(dir: &Path, size: u64, total: u64) -> f64 {
    use fjall::{Database, KeyspaceCreateOptions, PersistMode};
    let db = Database::builder(dir.join("f")).open().unwrap();
    let t = db.keyspace("t", KeyspaceCreateOptions::default).unwrap();
    let start = Instant::now();
    for first in (0..total).step_by(size as usize) {
        let mut b = db.batch();
        for (k, v) in batch(first, size) {
            match v {
                Some(v) => b.insert(&t, k, v),
                None => b.remove(&t, k),
            }
        }
        b.commit().unwrap();
        db.persist(PersistMode::SyncAll).unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

fn log(dir: &Path, size: u64, total: u64) -> f64 {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("log"))
        .unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    for first in (0..total).step_by(size as usize) {
        buf.clear();
        for (k, v) in batch(first, size) {
            buf.extend_from_slice(&k);
            if let Some(v) = v {
                buf.extend_from_slice(&v);
            }
        }
        f.write_all(&buf).unwrap();
        f.sync_data().unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

type Engine = fn(&Path, u64, u64) -> f64;

fn main() {
    let base = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or("store-engines.tmp".into()),
    );
    let engines: [(&str, Engine); 3] = [("redb", redb), ("fjall", fjall), ("log", log)];
    println!("engine  batch   msg/s (median of {ROUNDS})   ms per commit");
    for size in [1u64, 16, 128, 1024] {
        let total = (size * 100).clamp(1000, 51_200);
        let mut rates = vec![Vec::new(); engines.len()];
        for _ in 0..ROUNDS {
            for (i, (name, run)) in engines.iter().enumerate() {
                let dir = base.join(format!("{name}-{size}"));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).unwrap();
                rates[i].push(run(&dir, size, total));
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
        for (i, (name, _)) in engines.iter().enumerate() {
            rates[i].sort_by(|a, b| a.total_cmp(b));
            let median = rates[i][ROUNDS / 2];
            println!(
                "{name:6} {size:6} {median:12.0} {:18.2}",
                1000.0 * size as f64 / median
            );
        }
    }
    let _ = std::fs::remove_dir_all(&base);
}
