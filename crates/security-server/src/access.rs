//! Access rights: who may call which service, endpoint, method and canonical path.

use passerelle_globalconf::GlobalConf;
use passerelle_ids::{ServiceId, SubsystemId};
use passerelle_protocol::path::CanonicalPath;

use crate::config::{ServerConfig, Subject};

/// Whether `client` may call `service` with `method` on `path`. A right without an endpoint
/// grants the whole service; a right with one grants only requests it matches.
pub(crate) fn is_allowed(
    config: &ServerConfig,
    conf: &GlobalConf,
    client: &SubsystemId,
    service: &ServiceId,
    method: &http::Method,
    path: &CanonicalPath,
) -> bool {
    config.access.iter().any(|right| {
        &right.service == service
            && subject_matches(config, conf, &right.subject, client)
            && right
                .endpoint
                .as_ref()
                .is_none_or(|endpoint| endpoint.matches(method, path))
    })
}

/// Whether `client` has any right on `service` (for `allowedMethods` and `getOpenAPI`).
pub(crate) fn has_any_right(
    config: &ServerConfig,
    conf: &GlobalConf,
    client: &SubsystemId,
    service: &ServiceId,
) -> bool {
    config.access.iter().any(|right| {
        &right.service == service && subject_matches(config, conf, &right.subject, client)
    })
}

fn subject_matches(
    config: &ServerConfig,
    conf: &GlobalConf,
    subject: &Subject,
    client: &SubsystemId,
) -> bool {
    match subject {
        Subject::Subsystem(id) => id == client,
        Subject::GlobalGroup(group) => conf.is_in_global_group(client, group),
        Subject::LocalGroup(code) => config
            .local_groups
            .get(code)
            .is_some_and(|members| members.contains(client)),
    }
}
