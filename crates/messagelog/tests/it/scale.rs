//! Export and verification run in memory bounded independently of the archive's size.
//!
//! Each phase runs in a child process (this test binary re-run) so that its peak resident set
//! (`VmHWM`) is its own. The 1,000,000-entry figure is measured by `benches/append.rs` and
//! recorded in `docs/audit.md`; this test compares 2,000 with 20,000 entries. Export runs
//! straight from the segment files ([`export_log`]), as `passerelle audit export` does.

use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use passerelle_messagelog::{
    Durability, ExportOptions, LogOptions, MessageLog, VerifyOptions, export_log, verify_archive,
};

use crate::common::{FakeTokens, record};

const CHILD: &str = "PASSERELLE_MESSAGELOG_SCALE_CHILD";

fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Not a test of its own: the body of the child processes of `memory_is_bounded_...`.
#[test]
fn scale_child_entry_point() {
    let Some(spec) = std::env::var_os(CHILD) else {
        return;
    };
    let spec = spec.into_string().unwrap();
    let mut parts = spec.splitn(3, ':');
    let (phase, count, dir) = (
        parts.next().unwrap(),
        parts.next().unwrap().parse::<u64>().unwrap(),
        parts.next().unwrap(),
    );
    let dir = Path::new(dir);
    let archive = dir.join("all.pla");
    match phase {
        "build" => {
            let log = MessageLog::open(
                &dir.join("log"),
                LogOptions::new(Durability::DangerMemoryOnly),
            )
            .unwrap();
            // Small records: the point is the number of entries, not their size.
            let mut template = record(0, None, true);
            template.request.signing_input = b"request".to_vec();
            template.response.signing_input = b"response".to_vec();
            let mut tickets = Vec::new();
            for index in 0..count {
                let mut record = template.clone();
                record.message_id = format!("m{index}");
                tickets.push(log.append(record));
                if tickets.len() == 2_000 {
                    tickets.drain(..).for_each(|t| {
                        t.wait().unwrap();
                    });
                }
                if index % 10_000 == 9_999 {
                    tickets.drain(..).for_each(|t| {
                        t.wait().unwrap();
                    });
                    log.checkpoint(&FakeTokens, SystemTime::now()).unwrap();
                }
            }
            tickets.drain(..).for_each(|t| {
                t.wait().unwrap();
            });
        }
        "export" => {
            // Straight from the segment files, as `passerelle audit export` does: the index
            // database is never opened.
            let summary = export_log(
                &dir.join("log"),
                &ExportOptions::default(),
                &archive,
                SystemTime::now(),
            )
            .unwrap();
            assert!(summary.full_entries >= count);
        }
        _ => {
            let report = verify_archive(
                &archive,
                &VerifyOptions {
                    token_verifier: Some(&FakeTokens),
                    ..Default::default()
                },
            )
            .unwrap();
            assert_eq!(report.failure, None);
            assert!(report.entries >= count);
        }
    }
    println!("peak_rss_kb {}", peak_rss_kb());
}

fn run_phase(phase: &str, count: u64, dir: &Path) -> u64 {
    let started = std::time::Instant::now();
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "scale::scale_child_entry_point",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, format!("{phase}:{count}:{}", dir.display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{phase} {count}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let peak = stdout
        .lines()
        .find_map(|line| line.split("peak_rss_kb ").nth(1))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    eprintln!(
        "{phase} {count} entries: peak {peak} kB, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    peak
}

#[test]
fn memory_is_bounded_independently_of_the_archive_size() {
    let mut peaks = Vec::new();
    for count in [2_000, 20_000] {
        let dir = tempfile::tempdir().unwrap();
        run_phase("build", count, dir.path());
        let export = run_phase("export", count, dir.path());
        let verify = run_phase("verify", count, dir.path());
        peaks.push((count, export, verify));
    }
    let [
        (_, small_export, small_verify),
        (_, large_export, large_verify),
    ] = peaks[..]
    else {
        unreachable!()
    };
    // Ten times the entries (and the log, and the archive: about 18 MB at 20,000); the peak may
    // grow only by allocator noise, never in proportion. Export used to open the index database,
    // whose memory grew with the log: about 5 MB more here, 190 MB at 1,000,000 entries.
    assert!(large_verify < small_verify + 2 * 1024, "verify: {peaks:?}");
    assert!(large_export < small_export + 2 * 1024, "export: {peaks:?}");
    assert!(large_verify < 16 * 1024, "verify peak {large_verify} kB");
    assert!(large_export < 16 * 1024, "export peak {large_export} kB");
}
