//! What the benchmark reads about other processes from Linux's `/proc`: CPU time spent
//! (`/proc/PID/stat` utime + stime, all threads), resident memory now and at its peak
//! (`/proc/PID/status` VmRSS and VmHWM), and child processes (nginx's workers).

use std::time::Duration;

use anyhow::{Context, bail};

/// Clock ticks per second of `/proc/PID/stat`'s times. Linux reports them in USER_HZ, which is
/// 100 on every architecture Passerelle targets.
pub const USER_HZ: u64 = 100;

/// User plus system CPU time used so far by process `pid` (all its threads).
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // The command name (field 2) is in parentheses and may hold spaces: fields count from
    // after its closing parenthesis, where field 3 (state) is index 0.
    let rest = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("{path} has no command name"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |number: usize| -> anyhow::Result<u64> {
        fields
            .get(number - 3)
            .and_then(|value| value.parse().ok())
            .with_context(|| format!("{path} has no field {number}"))
    };
    let ticks = field(14)? + field(15)?;
    Ok(Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// Resident memory of process `pid`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// VmRSS: resident now.
    pub resident: u64,
    /// VmHWM: the peak resident size since the process started.
    pub peak: u64,
}

/// Reads VmRSS and VmHWM of process `pid`.
pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let kibibytes = |key: &str| -> anyhow::Result<u64> {
        let line = text
            .lines()
            .find(|line| line.starts_with(key))
            .with_context(|| format!("{path} has no {key}"))?;
        let value = line[key.len()..].trim().trim_end_matches("kB").trim();
        Ok(value
            .parse::<u64>()
            .with_context(|| format!("{path}: {key} {value:?}"))?
            * 1024)
    };
    Ok(Memory {
        resident: kibibytes("VmRSS:")?,
        peak: kibibytes("VmHWM:")?,
    })
}

/// The direct children of process `pid`, found by scanning `/proc/*/stat` for their parent.
pub fn children(pid: u32) -> anyhow::Result<Vec<u32>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").context("cannot list /proc")? {
        let Ok(entry) = entry else { continue };
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        // Processes may exit while we scan: skip what cannot be read.
        let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let parent = text
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|value| value.parse::<u32>().ok());
        if parent == Some(pid) {
            found.push(child);
        }
    }
    Ok(found)
}

/// CPU time of a process and all its direct children together (nginx: master and workers).
pub fn cpu_time_with_children(pid: u32) -> anyhow::Result<Duration> {
    let mut total = cpu_time(pid)?;
    for child in children(pid)? {
        if let Ok(time) = cpu_time(child) {
            total += time;
        }
    }
    Ok(total)
}

/// Resident memory of a process and its direct children, summed (peaks summed too: an upper
/// bound, since the peaks need not coincide).
pub fn memory_with_children(pid: u32) -> anyhow::Result<Memory> {
    let mut total = memory(pid)?;
    for child in children(pid)? {
        if let Ok(memory) = memory(child) {
            total.resident += memory.resident;
            total.peak += memory.peak;
        }
    }
    if total.resident == 0 {
        bail!("process {pid} reports no resident memory");
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        let memory = memory(pid).unwrap();
        assert!(memory.resident > 0 && memory.peak >= memory.resident);
        // Burn a little CPU so the counter cannot stay at zero forever.
        let before = cpu_time(pid).unwrap();
        let mut value = 0u64;
        let start = std::time::Instant::now();
        while cpu_time(pid).unwrap() == before && start.elapsed() < Duration::from_secs(5) {
            value = value.wrapping_mul(31).wrapping_add(7);
        }
        assert!(cpu_time(pid).unwrap() > before, "{value}");
        assert!(children(pid).is_ok());
    }
}
