//! The replay cache: the signed ids of the requests this provider accepted, remembered while a
//! copy of the request could still pass the signing-time check.
//!
//! A request is accepted only while its signing time is within the clock skew of this server's
//! clock. A copy carries the same signed time, so an id only needs remembering until that time
//! plus the skew has passed: from then on the signing-time check refuses the copy.
//!
//! - Each id is kept as a 64-bit fingerprint of (client, message id, request id): SipHash under a
//!   key drawn when the server starts, so a peer cannot aim for a collision. 10–20 bytes per id
//!   in the hash sets; a new request refused in error as a replay would need its fingerprint to
//!   equal one of the window's others in all 64 bits (about one chance in 30 million per window
//!   of a million requests).
//! - Fingerprints are grouped in slices of signing time (an eighth of the skew wide). A slice is
//!   dropped whole once every time in it is older than the skew.
//! - The cache therefore holds the ids of about one skew window of traffic. A hard capacity
//!   bounds it whatever the traffic: when full, the oldest slice is forgotten, with a warning.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use passerelle_ids::SubsystemId;
use passerelle_protocol::signing::SigningTime;

/// The most fingerprints held, 40–80 MB. At the default skew of 300 s it is reached only
/// above 13,000 accepted requests per second.
pub(crate) const REPLAY_CAPACITY: usize = 4_000_000;

pub(crate) struct ReplayCache {
    skew_ms: u64,
    slice_ms: u64,
    capacity: usize,
    key: RandomState,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Slice number (signing time / slice width) → the fingerprints signed in it.
    slices: BTreeMap<u64, HashSet<u64, BuildHasherDefault<Fingerprinted>>>,
    len: usize,
}

impl ReplayCache {
    pub(crate) fn new(skew: Duration, capacity: usize) -> Self {
        let skew_ms = u64::try_from(skew.as_millis()).unwrap_or(u64::MAX);
        Self {
            skew_ms,
            slice_ms: (skew_ms / 8).max(1_000),
            capacity: capacity.max(1),
            key: RandomState::new(),
            state: Mutex::new(State::default()),
        }
    }

    /// Records the ids of a request whose signing time passed the skew check; `false` when they
    /// were already accepted (a replay).
    pub(crate) fn first_use(
        &self,
        client: &SubsystemId,
        message_id: &str,
        request_id: &str,
        signed: SigningTime,
        now: SystemTime,
    ) -> bool {
        let fingerprint = self.key.hash_one((client, message_id, request_id));
        let now_ms = SigningTime::from_system_time(now).0;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.forget_expired(&mut state, now_ms);
        if state.slices.values().any(|set| set.contains(&fingerprint)) {
            return false;
        }
        if state.len >= self.capacity
            && let Some((_, oldest)) = state.slices.pop_first()
        {
            state.len -= oldest.len();
            tracing::warn!(
                forgotten = oldest.len(),
                capacity = self.capacity,
                "the replay cache is full: the oldest ids are forgotten before their signing \
                 time expired"
            );
        }
        state
            .slices
            .entry(signed.0 / self.slice_ms)
            .or_default()
            .insert(fingerprint);
        state.len += 1;
        true
    }

    /// Drops the slices whose every signing time is more than the skew before `now_ms`.
    fn forget_expired(&self, state: &mut State, now_ms: u64) {
        while let Some(entry) = state.slices.first_entry() {
            let slice_end = entry.key().saturating_add(1).saturating_mul(self.slice_ms);
            if slice_end.saturating_add(self.skew_ms) > now_ms {
                break;
            }
            state.len -= entry.remove().len();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len
    }
}

/// The hasher of a set of fingerprints: they are keyed hashes already, used as they are.
#[derive(Default)]
struct Fingerprinted(u64);

impl Hasher for Fingerprinted {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SKEW: Duration = Duration::from_secs(80);

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + seconds)
    }

    fn signed(seconds: u64) -> SigningTime {
        SigningTime::from_system_time(at(seconds))
    }

    #[test]
    fn refuses_a_copy_while_its_signing_time_is_within_the_skew() {
        let cache = ReplayCache::new(SKEW, 100);
        let client: SubsystemId = "DEV/GOV/A/s".parse().unwrap();
        let other: SubsystemId = "DEV/GOV/B/s".parse().unwrap();
        assert!(cache.first_use(&client, "m1", "r1", signed(0), at(0)));
        // The same signed ids, up to the last instant the signing-time check lets them through.
        assert!(!cache.first_use(&client, "m1", "r1", signed(0), at(80)));
        // Another client, or another request id, is another request.
        assert!(cache.first_use(&other, "m1", "r1", signed(0), at(1)));
        assert!(cache.first_use(&client, "m1", "r2", signed(0), at(1)));
        // The ids do not run together: ("m1", "r1") is not ("m1r", "1").
        assert!(cache.first_use(&client, "m1r", "1", signed(0), at(1)));
        // A new request that reuses the ids with another signing time is refused too.
        assert!(!cache.first_use(&client, "m1", "r1", signed(30), at(30)));
    }

    #[test]
    fn forgets_an_id_once_its_signing_time_is_older_than_the_skew() {
        let cache = ReplayCache::new(SKEW, 100);
        let client: SubsystemId = "DEV/GOV/A/s".parse().unwrap();
        assert!(cache.first_use(&client, "old", "r", signed(0), at(0)));
        // Signed in the future, within the skew: remembered until its own time plus the skew.
        assert!(cache.first_use(&client, "ahead", "r", signed(80), at(0)));
        assert_eq!(cache.len(), 2);
        // One slice (10 s) after the skew, "old" is gone; the signing-time check refuses it now.
        assert!(cache.first_use(&client, "other", "r", signed(91), at(91)));
        assert_eq!(cache.len(), 2);
        assert!(!cache.first_use(&client, "ahead", "r", signed(80), at(150)));
        assert!(cache.first_use(&client, "later", "r", signed(300), at(300)));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn holds_about_one_skew_window_of_traffic() {
        let cache = ReplayCache::new(SKEW, 1_000_000);
        let client: SubsystemId = "DEV/GOV/A/s".parse().unwrap();
        // Ten requests a second for an hour, signed at their arrival.
        for second in 0..3_600 {
            for n in 0..10 {
                let id = format!("{second}-{n}");
                assert!(cache.first_use(&client, &id, "r", signed(second), at(second)));
            }
        }
        // The skew (80 s) and at most one slice (10 s) of ids.
        assert!((800..=900).contains(&cache.len()), "{}", cache.len());
    }

    #[test]
    fn when_full_forgets_the_oldest_slice_first() {
        let cache = ReplayCache::new(SKEW, 4);
        let client: SubsystemId = "DEV/GOV/A/s".parse().unwrap();
        assert!(cache.first_use(&client, "a", "r", signed(0), at(0)));
        assert!(cache.first_use(&client, "b", "r", signed(0), at(0)));
        assert!(cache.first_use(&client, "c", "r", signed(20), at(20)));
        assert!(cache.first_use(&client, "d", "r", signed(20), at(20)));
        assert!(cache.first_use(&client, "e", "r", signed(20), at(20)));
        assert_eq!(cache.len(), 3);
        assert!(cache.first_use(&client, "a", "r", signed(0), at(21)));
        assert!(!cache.first_use(&client, "c", "r", signed(20), at(21)));
    }
}
