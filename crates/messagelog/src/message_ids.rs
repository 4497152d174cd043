//! The message-id index: which entries may be a given message's.
//!
//! A sled entry per exchange made the message id the most expensive part of indexing (about
//! 25–35 µs of the index thread per exchange), and the tree grew with the log. Instead, runs of
//! consecutive entries of one segment are stored as one value each: run's first sequence (big
//! endian) → the first 8 bytes of SHA-256 of each entry's message id, in sequence order (eight
//! zero bytes for an entry without one, a checkpoint). The index thread gathers a run in memory
//! and stores it once it holds [`RUN_LENGTH`] entries, at the end of a segment, and when the log
//! closes; a look-up scans every stored run and the one being gathered (8 bytes per entry) and
//! returns candidates, which the caller reads back and keeps only if they are the message's.
//!
//! Logs indexed by earlier versions also have a `message` tree (message id ‖ 0 ‖ sequence → no
//! value). It is no longer written, and look-ups still read it.

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::index::{IndexItem, be_u64};

/// Entries per stored run (2 KiB of hashes).
pub(crate) const RUN_LENGTH: usize = 256;

const HASH_BYTES: usize = 8;

/// The first 8 bytes of SHA-256 of a message id.
fn id_hash(message_id: &str) -> [u8; HASH_BYTES] {
    let digest = passerelle_pki::digest::sha256(message_id.as_bytes());
    let mut hash = [0u8; HASH_BYTES];
    hash.copy_from_slice(&digest[..HASH_BYTES]);
    hash
}

/// Consecutive entries of one segment and their message-id hashes.
struct Run {
    segment: u64,
    first: u64,
    hashes: Vec<u8>,
}

impl Run {
    fn end(&self) -> u64 {
        self.first + (self.hashes.len() / HASH_BYTES) as u64
    }
}

/// The stored runs and the run being gathered.
pub(crate) struct MessageIds {
    runs: sled::Tree,
    /// Held while a look-up scans, so that a run cannot move from memory to the tree unseen.
    state: Mutex<State>,
}

struct State {
    open: Option<Run>,
    /// Entries below this are in stored runs already (re-indexing on open starts earlier for
    /// the other trees): not added again.
    stored_below: u64,
}

impl MessageIds {
    pub(crate) fn new(runs: sled::Tree) -> Self {
        MessageIds {
            runs,
            state: Mutex::new(State {
                open: None,
                stored_below: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn store(&self, run: &Run) -> Result<(), sled::Error> {
        self.runs
            .insert(run.first.to_be_bytes(), run.hashes.as_slice())
            .map(|_| ())
    }

    /// Adds indexed entries (in sequence order), storing each run that fills up or ends.
    pub(crate) fn add(&self, items: &[IndexItem]) -> Result<(), sled::Error> {
        let mut state = self.lock();
        let State { open, stored_below } = &mut *state;
        let stored_below = *stored_below;
        for item in items.iter().filter(|item| item.sequence >= stored_below) {
            let continues = open
                .as_ref()
                .is_some_and(|run| run.segment == item.segment && run.end() == item.sequence);
            if !continues && let Some(run) = open.take() {
                self.store(&run)?;
            }
            let run = open.get_or_insert_with(|| Run {
                segment: item.segment,
                first: item.sequence,
                hashes: Vec::with_capacity(RUN_LENGTH * HASH_BYTES),
            });
            run.hashes
                .extend_from_slice(&item.keys.message_id().map_or([0; HASH_BYTES], id_hash));
            if run.hashes.len() >= RUN_LENGTH * HASH_BYTES {
                self.store(run)?;
                *open = None;
            }
        }
        Ok(())
    }

    /// Stores the run being gathered, however short.
    pub(crate) fn flush(&self) -> Result<(), sled::Error> {
        let mut state = self.lock();
        if let Some(run) = state.open.take() {
            self.store(&run)?;
        }
        Ok(())
    }

    /// The entries below `next` whose message id may be `message_id`, ascending.
    pub(crate) fn candidates(&self, message_id: &str, next: u64) -> Result<Vec<u64>, sled::Error> {
        let wanted = id_hash(message_id);
        let mut found = Vec::new();
        let mut scan = |first: u64, hashes: &[u8]| {
            for (position, hash) in hashes.chunks_exact(HASH_BYTES).enumerate() {
                let sequence = first + position as u64;
                if hash == wanted && sequence < next {
                    found.push(sequence);
                }
            }
        };
        let state = self.lock();
        for stored in self.runs.iter() {
            let (key, hashes) = stored?;
            if let Some(first) = be_u64(&key) {
                scan(first, &hashes);
            }
        }
        if let Some(run) = state.open.as_ref() {
            scan(run.first, &run.hashes);
        }
        drop(state);
        found.sort_unstable();
        found.dedup();
        Ok(found)
    }

    /// Where the stored runs end (the sequence after the last one covered), if any is stored.
    pub(crate) fn stored_until(&self) -> Result<Option<u64>, sled::Error> {
        Ok(self
            .runs
            .last()?
            .and_then(|(key, hashes)| Some(be_u64(&key)? + (hashes.len() / HASH_BYTES) as u64)))
    }

    /// Entries below `sequence` are indexed already: [`Self::add`] skips them (re-indexing on
    /// open may start earlier, for the other trees).
    pub(crate) fn skip_below(&self, sequence: u64) {
        self.lock().stored_below = sequence;
    }

    /// Records that every entry below `sequence` is indexed elsewhere (by an earlier version's
    /// `message` tree): an empty run there.
    pub(crate) fn mark_covered_below(&self, sequence: u64) -> Result<(), sled::Error> {
        self.runs
            .insert(sequence.to_be_bytes(), &[][..])
            .map(|_| ())
    }

    /// After a tail was cut on open, forgets entries from `next` on: runs that start there or
    /// later are removed, a run across it is shortened.
    pub(crate) fn cut(&self, next: u64) -> Result<(), sled::Error> {
        let stale: Vec<_> = self
            .runs
            .range(next.to_be_bytes()..)
            .keys()
            .collect::<Result<_, _>>()?;
        for key in stale {
            self.runs.remove(key)?;
        }
        if let Some((key, hashes)) = self.runs.last()?
            && let Some(first) = be_u64(&key)
        {
            let keep = usize::try_from(next - first)
                .unwrap_or(usize::MAX)
                .saturating_mul(HASH_BYTES);
            if hashes.len() > keep {
                self.runs.insert(key, &hashes[..keep])?;
            }
        }
        Ok(())
    }

    /// Forgets the entries `first..end` (a segment removed by retention; runs never span two).
    pub(crate) fn remove(&self, first: u64, end: u64) -> Result<(), sled::Error> {
        let keys: Vec<_> = self
            .runs
            .range(first.to_be_bytes()..end.to_be_bytes())
            .keys()
            .collect::<Result<_, _>>()?;
        for key in keys {
            self.runs.remove(key)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{MessageIds, RUN_LENGTH};
    use crate::index::{IndexItem, IndexKeys};

    fn item(sequence: u64, segment: u64, message_id: Option<&str>) -> IndexItem {
        IndexItem {
            sequence,
            segment,
            offset: 0,
            keys: IndexKeys::with_message_id(message_id),
        }
    }

    fn ids() -> MessageIds {
        let db = sled::Config::new().temporary(true).open().unwrap();
        MessageIds::new(db.open_tree("message-runs").unwrap())
    }

    #[test]
    fn ids_are_found_in_stored_runs_and_in_the_run_being_gathered() {
        let ids = ids();
        let total = RUN_LENGTH as u64 * 2 + 10;
        // Two segments: 0..100 and 100..total; every 7th entry is a checkpoint.
        let items: Vec<IndexItem> = (0..total)
            .map(|sequence| {
                let segment = if sequence < 100 { 0 } else { 100 };
                let id = format!("m{}", sequence % 50);
                item(
                    sequence,
                    segment,
                    (!sequence.is_multiple_of(7)).then_some(id.as_str()),
                )
            })
            .collect();
        ids.add(&items[..150]).unwrap();
        ids.add(&items[150..]).unwrap();
        let expected: Vec<u64> = (0..total)
            .filter(|s| s % 50 == 3 && !s.is_multiple_of(7))
            .collect();
        assert_eq!(ids.candidates("m3", u64::MAX).unwrap(), expected);
        assert_eq!(
            ids.candidates("m3", 200).unwrap(),
            expected
                .iter()
                .copied()
                .filter(|s| *s < 200)
                .collect::<Vec<_>>(),
            "nothing at or past the view's next sequence"
        );
        assert!(ids.candidates("absent", u64::MAX).unwrap().is_empty());
        // Runs never cross a segment: the first segment's run ends at 100.
        assert!(ids.runs.get(0u64.to_be_bytes()).unwrap().unwrap().len() == 100 * 8);
        // Storing the open run changes nothing for look-ups.
        ids.flush().unwrap();
        assert_eq!(ids.candidates("m3", u64::MAX).unwrap(), expected);
        assert_eq!(ids.stored_until().unwrap(), Some(total));

        // A tail cut at 120: later entries are forgotten, earlier ones kept.
        ids.cut(120).unwrap();
        assert_eq!(ids.stored_until().unwrap(), Some(120));
        assert_eq!(
            ids.candidates("m3", u64::MAX).unwrap(),
            expected
                .iter()
                .copied()
                .filter(|s| *s < 120)
                .collect::<Vec<_>>()
        );
        // Retention removes the first segment's entries.
        ids.remove(0, 100).unwrap();
        assert_eq!(
            ids.candidates("m3", u64::MAX).unwrap(),
            expected
                .iter()
                .copied()
                .filter(|s| (100..120).contains(s))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn entries_below_the_stored_runs_are_not_added_twice() {
        let ids = ids();
        ids.add(&[item(0, 0, Some("a")), item(1, 0, Some("b"))])
            .unwrap();
        ids.flush().unwrap();
        assert_eq!(ids.stored_until().unwrap(), Some(2));
        ids.skip_below(2);
        // Re-indexing on open starts earlier than the runs end, for the other trees.
        ids.add(&[
            item(1, 0, Some("b")),
            item(2, 0, Some("b")),
            item(3, 0, Some("c")),
        ])
        .unwrap();
        ids.flush().unwrap();
        assert_eq!(ids.candidates("b", u64::MAX).unwrap(), vec![1, 2]);
        assert_eq!(ids.runs.len(), 2, "one run 0..2, one 2..4");
        assert_eq!(ids.stored_until().unwrap(), Some(4));
    }
}
