//! The trust services' background tasks (refreshing this server's OCSP responses, stamping the
//! message log) and what they show in `/health` and `/metrics`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use passerelle_globalconf::format_rfc3339;
use passerelle_messagelog::CheckpointSummary;
use tokio::sync::watch;

use crate::server::Shared;

/// How long the refresher waits when there is no valid global configuration.
const NO_CONF_RETRY: Duration = Duration::from_secs(5);

/// Keeps this server's own OCSP responses fresh until `stopped`.
pub(crate) async fn refresh_own_status(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    loop {
        let now = shared.clock.now();
        let wait = match shared.conf.current(now) {
            Ok(conf) => shared.own_status.refresh(&conf, now, false).await,
            Err(_) => NO_CONF_RETRY,
        };
        tokio::select! {
            _ = stopped.changed() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Stamps the message log every `timestamping_interval_secs` until `stopped`.
pub(crate) async fn stamp_periodically(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    loop {
        let interval = shared
            .conf
            .current(shared.clock.now())
            .map(|conf| conf.settings.timestamping_interval())
            .unwrap_or(NO_CONF_RETRY)
            .max(Duration::from_secs(1));
        tokio::select! {
            _ = stopped.changed() => return,
            () = tokio::time::sleep(interval) => {}
        }
        // Failures are recorded in the time-stamping state (and logged) by `stamp_once`.
        let _ = stamp_once(&shared).await;
    }
}

/// One checkpoint at the clock's current time.
pub(crate) async fn stamp_once(shared: &Shared) -> Result<Option<CheckpointSummary>, String> {
    let now = shared.clock.now();
    let conf = shared.conf.current(now)?;
    shared
        .timestamping
        .stamp(Arc::clone(&shared.log), &conf, now)
        .await
}

fn seconds(duration: Duration) -> u64 {
    duration.as_secs()
}

/// The `certificate_status` and `time_stamping` parts of the health report, and whether they
/// are healthy.
pub(crate) fn health_report(shared: &Shared, now: SystemTime) -> (serde_json::Value, bool) {
    let freshness = shared
        .conf
        .current(now)
        .map(|conf| conf.settings.ocsp_freshness())
        .unwrap_or_default();
    let own = shared.own_status.report(now, freshness);
    let status_healthy = own.iter().all(|line| line.status != "unavailable");
    let grace = shared.config().timestamping.grace;
    let stamping = shared.timestamping.report(grace);
    let stamping_healthy = shared.timestamping.check(now, grace).is_ok();
    let report = serde_json::json!({
        "certificate_status": own.iter().map(|line| serde_json::json!({
            "role": line.role,
            "subject": line.subject,
            "status": line.status,
            "this_update": line.this_update.map(format_rfc3339),
            "next_update": line.next_update.map(format_rfc3339),
            "age_secs": line.age.map(seconds),
            "problem": line.problem,
        })).collect::<Vec<_>>(),
        "time_stamping": {
            "enabled": stamping.configured,
            "healthy": stamping_healthy,
            "last_success": stamping.last_success.map(format_rfc3339),
            "failing_since": stamping.failing_since.map(format_rfc3339),
            "grace_secs": stamping.grace.as_secs(),
            "last_checkpoint": stamping.last_checkpoint.map(|checkpoint| serde_json::json!({
                "first_sequence": checkpoint.first_sequence,
                "last_sequence": checkpoint.last_sequence,
                "root": checkpoint.root.to_string(),
            })),
            "problem": stamping.problem,
        },
    });
    (report, status_healthy && stamping_healthy)
}

/// Prometheus gauges of the certificate status and the time-stamping state.
pub(crate) fn metrics(shared: &Shared, now: SystemTime) -> String {
    let freshness = shared
        .conf
        .current(now)
        .map(|conf| conf.settings.ocsp_freshness())
        .unwrap_or_default();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# HELP passerelle_certificate_status_good Whether this server holds a fresh good OCSP response for its certificate (1), or none is required (1), or not (0).\n# TYPE passerelle_certificate_status_good gauge"
    );
    let own = shared.own_status.report(now, freshness);
    for line in &own {
        let good = u8::from(line.status == "good" || line.status == "not_checked");
        let _ = writeln!(
            text,
            "passerelle_certificate_status_good{{role=\"{}\",status=\"{}\"}} {good}",
            line.role, line.status
        );
    }
    let _ = writeln!(
        text,
        "# HELP passerelle_certificate_status_age_seconds Age of this server's own OCSP response (now minus thisUpdate).\n# TYPE passerelle_certificate_status_age_seconds gauge"
    );
    for line in &own {
        if let Some(age) = line.age {
            let _ = writeln!(
                text,
                "passerelle_certificate_status_age_seconds{{role=\"{}\"}} {}",
                line.role,
                age.as_secs()
            );
        }
    }
    let stamping = shared
        .timestamping
        .report(shared.config().timestamping.grace);
    let failing = stamping
        .failing_since
        .map(|since| now.duration_since(since).unwrap_or_default().as_secs())
        .unwrap_or(0);
    let since_success = stamping
        .last_success
        .map(|at| now.duration_since(at).unwrap_or_default().as_secs());
    let _ = writeln!(
        text,
        "# HELP passerelle_timestamping_failing_seconds How long no TSA has answered (0 when stamping works).\n# TYPE passerelle_timestamping_failing_seconds gauge\npasserelle_timestamping_failing_seconds {failing}"
    );
    if let Some(since_success) = since_success {
        let _ = writeln!(
            text,
            "# HELP passerelle_timestamping_last_success_age_seconds Time since the last successful checkpoint.\n# TYPE passerelle_timestamping_last_success_age_seconds gauge\npasserelle_timestamping_last_success_age_seconds {since_success}"
        );
    }
    text
}
