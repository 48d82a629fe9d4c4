//! A Bloom filter over the message ids on disk, so that a new id (nearly every id) is known to be
//! new without a probe of the on-disk index: a probe costs about as much as storing the event,
//! and once the index outgrows the page cache it is a random read.
//!
//! It is built in the background at start from the index's hashes, while the writer notes the
//! ids it moves to disk meanwhile; until it is complete, every id is probed on disk. When more
//! ids were added than it was sized for, a filter twice as large is built the same way while the
//! full one goes on answering (a full filter misses no id; it only says "maybe" more often). Written by hand: it
//! is a few lines over the hash the index already stores, and the crates' filters hash the key
//! again.

use std::sync::mpsc;

/// Bits per id the filter is sized for at least (at most twice that), and the fewest at which it
/// is rebuilt larger. With 4 bits set per id, 8 bits per id give about 2.4% false positives,
/// 16 about 0.24%.
const BITS_PER_ID: u64 = 16;
const REBUILD_BELOW_BITS_PER_ID: u64 = 8;
const PROBES: u64 = 4;
/// The largest filter: 1 GiB, enough for 537 million ids at 16 bits each. Past that many ids it
/// only says "maybe" more often.
const MAX_BITS: u64 = 1 << 33;

/// How many bits a filter for `ids` ids has: a power of two, at least 2^16, at most `MAX_BITS`.
fn bits_for(ids: u64) -> u64 {
    (ids.clamp(1, MAX_BITS / BITS_PER_ID) * BITS_PER_ID).next_power_of_two().clamp(1 << 16, MAX_BITS)
}

/// The filter's bits.
#[derive(Debug)]
pub(super) struct Bits {
    words: Vec<u64>,
    /// The number of bits, minus one (a power of two, minus one).
    mask: u64,
    /// Ids added.
    ids: u64,
}

impl Bits {
    /// Bits for `ids` ids.
    pub(super) fn sized_for(ids: u64) -> Bits {
        let bits = bits_for(ids);
        Bits { words: vec![0; (bits / 64) as usize], mask: bits - 1, ids: 0 }
    }

    /// The positions of an id's bits, from the stored hash (already well mixed): double hashing.
    fn positions(&self, hash: i64) -> impl Iterator<Item = u64> + use<> {
        let (low, high, mask) = (hash as u64 & 0xffff_ffff, (hash as u64 >> 32) | 1, self.mask);
        (0..PROBES).map(move |i| low.wrapping_add(i.wrapping_mul(high)).wrapping_mul(0x9e37_79b9_7f4a_7c15) & mask)
    }

    pub(super) fn add(&mut self, hash: i64) {
        for position in self.positions(hash) {
            self.words[(position / 64) as usize] |= 1 << (position % 64);
        }
        self.ids += 1;
    }

    pub(super) fn may_hold(&self, hash: i64) -> bool {
        self.positions(hash).all(|position| self.words[(position / 64) as usize] & (1 << (position % 64)) != 0)
    }

    /// Whether so many ids were added that false positives grow common.
    pub(super) fn overfull(&self) -> bool {
        self.ids.saturating_mul(REBUILD_BELOW_BITS_PER_ID) > self.mask + 1 && self.mask + 1 < MAX_BITS
    }
}

/// The filter as the writer sees it.
#[derive(Debug)]
pub(super) struct DiskFilter {
    /// The database, for building.
    path: String,
    /// The filter in use, once one was built. It never misses an id, however full.
    current: Option<Bits>,
    /// A filter being built on another thread, and the hashes moved to disk since it began,
    /// which it may not have seen.
    building: Option<(mpsc::Receiver<Bits>, Vec<i64>)>,
}

impl DiskFilter {
    /// Starts building a filter sized for `ids` ids from the index of the database at `path`
    /// (none for a database in memory: every id is probed).
    pub(super) fn new(path: Option<&str>, ids: u64) -> DiskFilter {
        let path = path.unwrap_or_default().to_owned();
        let mut filter = DiskFilter { path, current: None, building: None };
        filter.build(ids);
        filter
    }

    fn build(&mut self, ids: u64) {
        if self.path.is_empty() {
            return;
        }
        let (done, built) = mpsc::sync_channel(1);
        let path = self.path.clone();
        let spawned = std::thread::Builder::new().name("store-filter".into()).spawn(move || {
            // A failed build leaves the filter as it was: it is only a shortcut.
            if let Ok(bits) = scan(&path, ids) {
                let _ = done.send(bits);
            }
        });
        if spawned.is_ok() {
            self.building = Some((built, Vec::new()));
        }
    }

    /// Takes a built filter if one has arrived; starts a larger one if the current is overfull.
    pub(super) fn poll(&mut self) {
        if let Some((built, moved)) = &mut self.building {
            match built.try_recv() {
                Ok(mut bits) => {
                    moved.iter().for_each(|&hash| bits.add(hash));
                    self.current = Some(bits);
                    self.building = None;
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => self.building = None,
            }
        } else if let Some(current) = self.current.as_ref().filter(|bits| bits.overfull()) {
            let ids = current.ids.saturating_mul(2);
            self.build(ids);
        }
    }

    /// Whether an id with this hash may be on disk (true unless a filter says no).
    pub(super) fn may_hold(&self, hash: i64) -> bool {
        self.current.as_ref().is_none_or(|bits| bits.may_hold(hash))
    }

    pub(super) fn moved_to_disk(&mut self, hash: i64) {
        if let Some(bits) = &mut self.current {
            bits.add(hash);
        }
        if let Some((_, moved)) = &mut self.building {
            moved.push(hash);
        }
    }

    #[cfg(test)]
    pub(super) fn ready(&self) -> bool {
        self.current.is_some()
    }
}

/// Reads every hash of the index, in a read transaction of its own.
fn scan(path: &str, ids: u64) -> rusqlite::Result<Bits> {
    let connection = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(std::time::Duration::from_secs(10))?;
    let mut bits = Bits::sized_for(ids);
    let mut statement = connection.prepare("SELECT hash FROM message_ids")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        bits.add(row.get(0)?);
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_every_id_added_and_few_others() {
        let hash = |i: u64| crate::message_ids::hash(1, &format!("id-{i}"));
        let mut bits = Bits::sized_for(10_000);
        (0..10_000).for_each(|i| bits.add(hash(i)));
        assert!((0..10_000).all(|i| bits.may_hold(hash(i))));
        let false_positives = (10_000..110_000).filter(|&i| bits.may_hold(hash(i))).count();
        assert!(false_positives < 1_000, "{false_positives} of 100,000");
        assert!(!bits.overfull());
        (10_000..40_000).for_each(|i| bits.add(hash(i)));
        assert!(bits.overfull());
        assert_eq!(bits_for(u64::MAX), MAX_BITS, "no overflow, and a cap");
        assert_eq!(bits_for(0), 1 << 16);
        assert_eq!(bits_for(10_000), 1 << 18);
    }

    /// A filter built from the index also holds the ids moved to disk while it was being built,
    /// and one built again larger (overfull) loses none either.
    #[test]
    fn a_built_filter_holds_the_index_and_what_moved_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE message_ids (hash INTEGER, workspace_id INTEGER, message_id TEXT);
                 INSERT INTO message_ids VALUES (11, 1, 'a'), (-22, 1, 'b');",
            )
            .unwrap();
        let ready = |filter: &mut DiskFilter| {
            let started = std::time::Instant::now();
            while filter.building.is_some() {
                assert!(started.elapsed().as_secs() < 30, "never built");
                std::thread::sleep(std::time::Duration::from_millis(5));
                filter.poll();
            }
        };
        // As the writer does: an id moved to disk is in the index once its transaction commits.
        let move_to_disk = |filter: &mut DiskFilter, hash: i64| {
            filter.moved_to_disk(hash);
            connection.execute("INSERT INTO message_ids VALUES (?1, 1, 'x')", [hash]).unwrap();
        };
        let mut filter = DiskFilter::new(path.to_str(), 1);
        assert!(filter.may_hold(12345), "no filter yet: anything may be on disk");
        move_to_disk(&mut filter, 33);
        ready(&mut filter);
        assert!([11, -22, 33].iter().all(|&h| filter.may_hold(h)));
        let others = (1000..2000).filter(|&h| filter.may_hold(h)).count();
        assert!(others < 10, "{others}");
        connection.execute_batch("BEGIN").unwrap();
        (0..10_000).for_each(|h| move_to_disk(&mut filter, h * 7919));
        connection.execute_batch("COMMIT").unwrap();
        filter.poll();
        assert!(filter.building.is_some(), "an overfull filter is built again");
        move_to_disk(&mut filter, 44);
        ready(&mut filter);
        assert!([11, -22, 33, 44, 7919 * 9999].iter().all(|&h| filter.may_hold(h)));
        assert!(filter.current.as_ref().is_some_and(|bits| !bits.overfull()));
    }
}
