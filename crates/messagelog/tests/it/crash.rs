//! Crash safety: a child process appends under concurrent load and is killed with SIGKILL; the
//! reopened log verifies and holds every acknowledged record, and the evidence it names.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use passerelle_messagelog::{Evidence, PeerAuthentication};

use crate::common::{export_all_verified, open, record};

const CHILD_DIR: &str = "PASSERELLE_MESSAGELOG_CRASH_CHILD_DIR";

/// Not a test of its own: the body of the child process that `appends_survive_sigkill` spawns
/// by re-running this test binary. Without the variable it returns at once.
#[test]
fn crash_child_entry_point() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let log = open(std::path::Path::new(&dir), None);
    let start = log.health().next_sequence;
    let stdout = std::sync::Mutex::new(std::io::stdout());
    std::thread::scope(|scope| {
        for thread in 0..4u64 {
            let (log, stdout) = (&log, &stdout);
            scope.spawn(move || {
                for i in 0.. {
                    let index = start * 10 + thread * 1_000_000 + i;
                    // A new piece of evidence every 16 records of each thread: stored, durably,
                    // while the process may be killed.
                    let mut record = record(index, None, true);
                    record.peer_authentication = Some(PeerAuthentication {
                        certificate_chain: vec![Evidence::Der(
                            format!("peer certificate {thread} {}", index / 16).into_bytes(),
                        )],
                        certificate_status: None,
                    });
                    let appended = log.append(record).wait().unwrap();
                    use std::io::Write as _;
                    let mut out = stdout.lock().unwrap();
                    writeln!(out, "ack {} msg-{index}", appended.sequence).unwrap();
                    out.flush().unwrap();
                }
            });
        }
    });
}

#[test]
fn appends_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut acknowledged: Vec<(u64, String)> = Vec::new();
    for run in 0..20 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let kill_after = 1 + seed % 150;
        let mut child = Command::new(&exe)
            .args([
                "crash::crash_child_entry_point",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        while seen < kill_after {
            let Some(line) = lines.next() else { break };
            if let Some(ack) = parse_ack(&line.unwrap()) {
                acknowledged.push(ack);
                seen += 1;
            }
        }
        child.kill().unwrap();
        // Acknowledgements already printed before the kill count too.
        for line in lines {
            if let Some(ack) = line.ok().as_deref().and_then(parse_ack) {
                acknowledged.push(ack);
            }
        }
        child.wait().unwrap();
        assert!(seen > 0, "run {run}: the child acknowledged nothing");
        check(dir.path(), &acknowledged);
    }
}

/// The reopened log holds every acknowledged record and its export verifies.
fn check(dir: &std::path::Path, acknowledged: &[(u64, String)]) {
    let log = open(dir, None);
    let next = log.health().next_sequence;
    for (sequence, message_id) in acknowledged {
        assert!(
            *sequence < next,
            "acknowledged entry {sequence} lost (log ends at {next})"
        );
        // Reading the entry resolves its evidence from the store.
        let entry = log.entry(*sequence).unwrap();
        assert_eq!(entry.message_id(), Some(message_id.as_str()));
        let peer = entry
            .exchange()
            .unwrap()
            .peer_authentication
            .as_ref()
            .unwrap();
        assert!(peer.certificate_chain[0].der().is_ok());
        // The message-id run being gathered in memory was lost with the process: re-indexed.
        assert!(
            log.sequences_of_message(message_id)
                .unwrap()
                .contains(sequence),
            "{message_id} not found by its id after the crash"
        );
    }
    let report = export_all_verified(&log, &dir.join("all.pla"));
    assert_eq!(report.entries, next);
}

fn parse_ack(line: &str) -> Option<(u64, String)> {
    let mut parts = line.strip_prefix("ack ")?.split(' ');
    Some((parts.next()?.parse().ok()?, parts.next()?.to_owned()))
}
