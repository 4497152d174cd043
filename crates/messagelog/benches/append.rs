//! Message-log throughput: durable appends per second with group commit next to one fdatasync
//! per append (same run, same disk), and verified entries per second. Prints numbers; asserts
//! nothing.
//!
//! `cargo bench -p passerelle-messagelog --bench append` — quick run.
//! `cargo bench -p passerelle-messagelog --bench append -- scale 1000000` — peak memory of export
//! and verification at that many entries (each phase in its own process).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark program")]

use std::path::Path;
use std::process::Command;
use std::time::{Instant, SystemTime};

use passerelle_ids::{ServiceId, SubsystemId};
use passerelle_messagelog::{
    Body, Durability, ExchangeRecord, ExportFilter, ExportOptions, LogOptions, MessageLog,
    MessagePart, Sha256Hash, Side, Timestamper, VerifyOptions, export_log, verify_archive,
};

struct Stamp;

impl Timestamper for Stamp {
    fn timestamp(&self, imprint: &[u8; 32]) -> Result<Vec<u8>, String> {
        Ok(imprint.to_vec())
    }
}

fn record(index: u64) -> ExchangeRecord {
    let part = |name: &str| MessagePart {
        signing_input: format!("{name} {index}").into_bytes(),
        signature: None,
        certificate_status: None,
        body_digest: Sha256Hash::of(b""),
        body_size: 0,
        body: Body::Absent,
    };
    ExchangeRecord {
        side: Side::Consumer,
        message_id: format!("m{index}"),
        request_id: format!("m{index}"),
        client: "BJ/GOV/MINEDU/schools".parse::<SubsystemId>().unwrap(),
        service: "BJ/GOV/MINSANTE/patients/vaccinations"
            .parse::<ServiceId>()
            .unwrap(),
        method: "GET".into(),
        path_and_query: "/v1/children/42".into(),
        user_id: None,
        request_received_at_ms: 1_750_000_000_000 + index,
        response_sent_at_ms: 1_750_000_000_005 + index,
        status: 200,
        fault_code: None,
        request: part("request"),
        response: part("response"),
        peer_authentication: None,
    }
}

/// Appends `threads × per_thread` records concurrently; returns appends per second.
fn appends_per_second(
    dir: &Path,
    durability: Durability,
    max_batch: usize,
    threads: u64,
    per_thread: u64,
) -> f64 {
    let mut options = LogOptions::new(durability);
    options.max_batch_entries = max_batch;
    let log = MessageLog::open(dir, options).unwrap();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let log = &log;
            scope.spawn(move || {
                for i in 0..per_thread {
                    log.append(record(thread * per_thread + i)).wait().unwrap();
                }
            });
        }
    });
    (threads * per_thread) as f64 / started.elapsed().as_secs_f64()
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn phase(name: &str, count: u64, dir: &Path) {
    let archive = dir.join("all.pla");
    let started = Instant::now();
    match name {
        "build" => {
            let log = MessageLog::open(
                &dir.join("log"),
                LogOptions::new(Durability::DangerMemoryOnly),
            )
            .unwrap();
            let mut tickets = Vec::new();
            for index in 0..count {
                tickets.push(log.append(record(index)));
                if tickets.len() == 4096 {
                    tickets.drain(..).for_each(|t| {
                        t.wait().unwrap();
                    });
                }
                if index % 100_000 == 99_999 {
                    tickets.drain(..).for_each(|t| {
                        t.wait().unwrap();
                    });
                    log.checkpoint(&Stamp, SystemTime::now()).unwrap();
                }
            }
            tickets.drain(..).for_each(|t| {
                t.wait().unwrap();
            });
        }
        "export" => {
            // From the segment files, as `passerelle audit export` does (no index database).
            export_log(
                &dir.join("log"),
                &ExportOptions::default(),
                &archive,
                SystemTime::now(),
            )
            .unwrap();
        }
        _ => {
            let report = verify_archive(&archive, &VerifyOptions::default()).unwrap();
            assert!(report.is_valid(), "{:?}", report.failure);
        }
    }
    let size = std::fs::metadata(&archive).map(|m| m.len()).unwrap_or(0);
    println!(
        "{name:<7} {count} entries: {:.1} s, peak RSS {} kB{}",
        started.elapsed().as_secs_f64(),
        peak_rss_kb(),
        if name == "build" {
            String::new()
        } else {
            format!(", archive {} MB", size >> 20)
        }
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let [mode, count, rest @ ..] = &args[..] {
        let count: u64 = count.parse().unwrap();
        if mode == "phase" {
            return phase(&rest[0], count, Path::new(&rest[1]));
        }
        if mode == "scale" {
            let dir = tempfile::tempdir().unwrap();
            for name in ["build", "export", "verify"] {
                let status = Command::new(std::env::current_exe().unwrap())
                    .args([
                        "phase",
                        &count.to_string(),
                        name,
                        dir.path().to_str().unwrap(),
                    ])
                    .status()
                    .unwrap();
                assert!(status.success());
            }
            return;
        }
    }

    let (threads, per_thread) = (32, 100);
    let dir = tempfile::tempdir().unwrap();
    let grouped = appends_per_second(
        &dir.path().join("grouped"),
        Durability::Fsync,
        4096,
        threads,
        per_thread,
    );
    let single = appends_per_second(
        &dir.path().join("single"),
        Durability::Fsync,
        1,
        threads,
        20,
    );
    let memory = appends_per_second(
        &dir.path().join("memory"),
        Durability::DangerMemoryOnly,
        4096,
        threads,
        per_thread,
    );
    println!("durable appends/s, {threads} threads, group commit:      {grouped:>10.0}");
    println!(
        "durable appends/s, {threads} threads, fdatasync per append: {single:>10.0}  (group commit ×{:.1})",
        grouped / single
    );
    println!("appends/s without sync (unsafe, for comparison):     {memory:>10.0}");

    let log = MessageLog::open(
        &dir.path().join("grouped"),
        LogOptions::new(Durability::Fsync),
    )
    .unwrap();
    log.checkpoint(&Stamp, SystemTime::now()).unwrap();
    let archive = dir.path().join("grouped.pla");
    log.export(
        &ExportFilter::default(),
        None,
        &[],
        &archive,
        SystemTime::now(),
    )
    .unwrap();
    let started = Instant::now();
    let report = verify_archive(&archive, &VerifyOptions::default()).unwrap();
    assert!(report.is_valid());
    println!(
        "verified entries/s:                                  {:>10.0}",
        report.entries as f64 / started.elapsed().as_secs_f64()
    );
}
