//! Prometheus metrics, written in the text exposition format by hand.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use passerelle_messagelog::{SYNC_BUCKETS, SyncTimes};

const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
const BATCH_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 256.0];

/// Which half of the server handled an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// The consumer's side: a local system called us.
    Consumer,
    /// The provider's side: a peer security server called us.
    Provider,
}

impl Role {
    fn label(self) -> &'static str {
        match self {
            Role::Consumer => "consumer",
            Role::Provider => "provider",
        }
    }
}

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    total: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.counts.len() != bounds.len() {
            self.counts = vec![0; bounds.len()];
        }
        for (count, bound) in self.counts.iter_mut().zip(bounds) {
            if value <= *bound {
                *count += 1;
            }
        }
        self.sum += value;
        self.total += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let separator = if labels.is_empty() { "" } else { "," };
        for (index, bound) in bounds.iter().enumerate() {
            let count = self.counts.get(index).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{separator}le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{separator}le=\"+Inf\"}} {}",
            self.total
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.total);
    }
}

#[derive(Default)]
struct State {
    exchanges: BTreeMap<(Role, String, String, String), u64>,
    latency: BTreeMap<Role, Histogram>,
    batches: Histogram,
}

/// Counters and histograms of one security server.
#[derive(Default)]
pub struct Metrics {
    state: Mutex<State>,
}

impl Metrics {
    /// Counts one exchange; `result` is `ok` or a fault code.
    pub fn observe_exchange(
        &self,
        role: Role,
        client: &str,
        service: &str,
        result: &str,
        latency: Duration,
    ) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *state
            .exchanges
            .entry((
                role,
                client.to_owned(),
                service.to_owned(),
                result.to_owned(),
            ))
            .or_default() += 1;
        state
            .latency
            .entry(role)
            .or_default()
            .observe(&LATENCY_BUCKETS, latency.as_secs_f64());
    }

    /// Records the size of one signed batch.
    pub fn observe_batch(&self, size: usize) {
        let size = u32::try_from(size).map(f64::from).unwrap_or(f64::MAX);
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .batches
            .observe(&BATCH_BUCKETS, size);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        out.push_str("# HELP passerelle_exchanges_total Exchanges handled, by side, client, service and result (ok or fault code).\n");
        out.push_str("# TYPE passerelle_exchanges_total counter\n");
        for ((role, client, service, result), count) in &state.exchanges {
            let _ = writeln!(
                out,
                "passerelle_exchanges_total{{side=\"{}\",client=\"{}\",service=\"{}\",result=\"{}\"}} {count}",
                role.label(),
                escape(client),
                escape(service),
                escape(result)
            );
        }
        out.push_str("# HELP passerelle_exchange_duration_seconds Time from request received to response sent.\n");
        out.push_str("# TYPE passerelle_exchange_duration_seconds histogram\n");
        for (role, histogram) in &state.latency {
            histogram.render(
                &mut out,
                "passerelle_exchange_duration_seconds",
                &format!("side=\"{}\"", role.label()),
                &LATENCY_BUCKETS,
            );
        }
        out.push_str(
            "# HELP passerelle_signature_batch_size Signing inputs covered by one signature.\n",
        );
        out.push_str("# TYPE passerelle_signature_batch_size histogram\n");
        state.batches.render(
            &mut out,
            "passerelle_signature_batch_size",
            "",
            &BATCH_BUCKETS,
        );
        out
    }
}

/// Appends the message log's sync times as the `passerelle_message_log_sync_seconds` histogram.
pub fn render_sync_times(out: &mut String, times: &SyncTimes) {
    out.push_str("# HELP passerelle_message_log_sync_seconds Time the message log's syncs took; every exchange waits for the sync of its batch.\n");
    out.push_str("# TYPE passerelle_message_log_sync_seconds histogram\n");
    let histogram = Histogram {
        counts: times.at_most.to_vec(),
        sum: Duration::from_nanos(times.total_nanos).as_secs_f64(),
        total: times.count,
    };
    histogram.render(
        out,
        "passerelle_message_log_sync_seconds",
        "",
        &SYNC_BUCKETS,
    );
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let metrics = Metrics::default();
        metrics.observe_exchange(
            Role::Consumer,
            "DEV/GOV/E/s",
            "DEV/GOV/H/p/v",
            "ok",
            Duration::from_millis(3),
        );
        metrics.observe_exchange(
            Role::Consumer,
            "DEV/GOV/E/s",
            "DEV/GOV/H/p/v",
            "ok",
            Duration::from_millis(3),
        );
        metrics.observe_batch(3);
        let text = metrics.render();
        assert!(text.contains("passerelle_exchanges_total{side=\"consumer\",client=\"DEV/GOV/E/s\",service=\"DEV/GOV/H/p/v\",result=\"ok\"} 2"), "{text}");
        assert!(
            text.contains(
                "passerelle_exchange_duration_seconds_bucket{side=\"consumer\",le=\"0.005\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("passerelle_signature_batch_size_bucket{le=\"2\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("passerelle_signature_batch_size_bucket{le=\"4\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn renders_the_message_log_sync_times() {
        let times = SyncTimes {
            at_most: [0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3],
            count: 4,
            total_nanos: 1_500_400_000,
        };
        let mut text = String::new();
        render_sync_times(&mut text, &times);
        for line in [
            "# TYPE passerelle_message_log_sync_seconds histogram",
            "passerelle_message_log_sync_seconds_bucket{le=\"0.0001\"} 0",
            "passerelle_message_log_sync_seconds_bucket{le=\"0.00025\"} 1",
            "passerelle_message_log_sync_seconds_bucket{le=\"0.25\"} 2",
            "passerelle_message_log_sync_seconds_bucket{le=\"1\"} 3",
            "passerelle_message_log_sync_seconds_bucket{le=\"+Inf\"} 4",
            "passerelle_message_log_sync_seconds_sum 1.5004",
            "passerelle_message_log_sync_seconds_count 4",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
