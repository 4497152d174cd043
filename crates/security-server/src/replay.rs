//! The replay cache: message ids accepted per client, remembered for the skew window.
//!
//! A request older than the skew window is refused for its signing time, so remembering ids for
//! longer than that window is never needed; the cache is bounded by the traffic of one window
//! and by a hard capacity (when full, the oldest entries are dropped first).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use passerelle_ids::SubsystemId;

pub(crate) struct ReplayCache {
    window: Duration,
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    seen: HashMap<(SubsystemId, String), SystemTime>,
    order: VecDeque<(SystemTime, SubsystemId, String)>,
}

impl ReplayCache {
    pub(crate) fn new(window: Duration, capacity: usize) -> Self {
        Self {
            window,
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
        }
    }

    /// Records the id; `false` when it was already seen within the window (a replay).
    pub(crate) fn first_use(
        &self,
        client: &SubsystemId,
        message_id: &str,
        now: SystemTime,
    ) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let expired_before = now
            .checked_sub(self.window.saturating_mul(2))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        while let Some((at, ..)) = state.order.front() {
            if *at >= expired_before && state.order.len() < self.capacity {
                break;
            }
            if let Some((at, old_client, old_id)) = state.order.pop_front() {
                let key = (old_client, old_id);
                if state.seen.get(&key) == Some(&at) {
                    state.seen.remove(&key);
                }
            }
        }
        let key = (client.clone(), message_id.to_owned());
        if state.seen.contains_key(&key) {
            return false;
        }
        state.seen.insert(key, now);
        state
            .order
            .push_back((now, client.clone(), message_id.to_owned()));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_replays_and_forgets_after_the_window() {
        let cache = ReplayCache::new(Duration::from_secs(10), 100);
        let client: SubsystemId = "DEV/GOV/A/s".parse().unwrap();
        let other: SubsystemId = "DEV/GOV/B/s".parse().unwrap();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert!(cache.first_use(&client, "m1", start));
        assert!(!cache.first_use(&client, "m1", start + Duration::from_secs(5)));
        assert!(cache.first_use(&other, "m1", start));
        assert!(cache.first_use(&client, "m1", start + Duration::from_secs(21)));
    }
}
