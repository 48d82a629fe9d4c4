//! Lead ids as text: every id's bytes end to end in one arena, and an open-addressing table that
//! finds a lead by its id.
//!
//! Scoring a file looks up the lead of every event, tens of millions of times, in a table of up
//! to millions of ids; that table is far larger than the CPU caches, so each look-up costs the
//! cache misses of the memory it touches, not the instructions of its hash. Hence this layout
//! rather than a `HashMap<Box<[u8]>, u32>` (a separate allocation per id, whose bytes are one more
//! miss away behind a pointer):
//! - a slot is 8 bytes, the lead's index and 32 bits of the id's hash, so that the probe rejects
//!   other ids without reading their bytes and a cache line holds 8 slots of a probe sequence;
//! - the ids' bytes sit in one arena in lead order (no allocation per lead), with their ends;
//! - [`IdTable::find_many`] looks up a batch of ids in stages, loading the first slot of all of
//!   them before reading any, then the arena places of all the candidates before comparing any,
//!   so that the misses of a batch overlap instead of following one another.
//!
//! The hash is foldhash's (a fast, well-mixed non-cryptographic hash with a fixed seed): ids come
//! from files the user gives, not from an adversary the table must resist, and a fixed seed keeps
//! a run reproducible.

use std::hash::BuildHasher;

/// Every lead's id, in lead order, end to end.
#[derive(Debug, Default, Clone)]
pub struct IdArena {
    bytes: Vec<u8>,
    /// `ends[i]`: where lead `i`'s id ends in `bytes` (it starts where lead `i - 1`'s ends).
    ends: Vec<usize>,
}

impl IdArena {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn push(&mut self, id: &str) {
        self.bytes.extend_from_slice(id.as_bytes());
        self.ends.push(self.bytes.len());
    }

    /// Makes room for `n` more ids.
    pub fn reserve(&mut self, n: usize) {
        self.ends.reserve(n);
    }

    /// Removes the last id (one refused as a repeat).
    pub fn pop(&mut self) {
        self.ends.pop();
        self.bytes.truncate(self.ends.last().copied().unwrap_or(0));
    }

    fn range(&self, lead: usize) -> std::ops::Range<usize> {
        let start = if lead == 0 { 0 } else { self.ends[lead - 1] };
        start..self.ends[lead]
    }

    pub fn bytes_of(&self, lead: usize) -> &[u8] {
        &self.bytes[self.range(lead)]
    }

    /// Lead `lead`'s id.
    pub fn get(&self, lead: usize) -> &str {
        // Only whole `&str`s are pushed, so every range holds valid UTF-8.
        std::str::from_utf8(self.bytes_of(lead)).expect("ids are pushed as text")
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|lead| self.get(lead))
    }
}

/// A slot: `u64::MAX` when empty, else the high 32 bits of the id's hash above the lead's index.
const EMPTY: u64 = u64::MAX;

/// The leads' index by id, over an [`IdArena`] it does not own.
#[derive(Debug, Clone)]
pub struct IdTable {
    slots: Vec<u64>,
    /// `slots.len() - 1`; the length is a power of two.
    mask: usize,
    entries: usize,
}

/// The hash of an id; the table's slot comes from its low bits and its tag is the high 32.
pub fn hash_id(id: &[u8]) -> u64 {
    // An arbitrary fixed seed: the same ids always land in the same slots.
    foldhash::fast::FixedState::with_seed(0x5851_f42d_4c95_7f2d).hash_one(id)
}

fn tag(hash: u64) -> u64 {
    hash & 0xffff_ffff_0000_0000
}

/// Up to this many ids are looked up together by [`IdTable::find_many`].
pub const BATCH: usize = 16;

impl Default for IdTable {
    fn default() -> IdTable {
        IdTable::with_capacity(0)
    }
}

impl IdTable {
    /// A table that holds `n` ids without growing.
    pub fn with_capacity(n: usize) -> IdTable {
        // At most half full: probe sequences stay short (1.5 slots on average for a hit).
        let size = (n.max(8) * 2).next_power_of_two();
        IdTable { slots: vec![EMPTY; size], mask: size - 1, entries: 0 }
    }

    /// Indexes every id of `arena`; `Err(lead)` names the first lead whose id an earlier lead has.
    pub fn build(arena: &IdArena) -> Result<IdTable, usize> {
        let mut table = IdTable::with_capacity(arena.len());
        for lead in 0..arena.len() {
            if !table.insert(arena, lead as u32) {
                return Err(lead);
            }
        }
        Ok(table)
    }

    /// Indexes lead `lead` (whose id is in `arena`); `false` if another lead has the same id.
    pub fn insert(&mut self, arena: &IdArena, lead: u32) -> bool {
        debug_assert!(lead != u32::MAX);
        let id = arena.bytes_of(lead as usize);
        let hash = hash_id(id);
        let mut position = hash as usize & self.mask;
        loop {
            let slot = self.slots[position];
            if slot == EMPTY {
                break;
            }
            if slot & 0xffff_ffff_0000_0000 == tag(hash) && arena.bytes_of(slot as u32 as usize) == id {
                return false;
            }
            position = (position + 1) & self.mask;
        }
        self.slots[position] = tag(hash) | u64::from(lead);
        self.entries += 1;
        if self.entries * 2 > self.slots.len() {
            self.grow(arena);
        }
        true
    }

    fn grow(&mut self, arena: &IdArena) {
        let size = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; size]);
        self.mask = size - 1;
        for slot in old.into_iter().filter(|&s| s != EMPTY) {
            let hash = hash_id(arena.bytes_of(slot as u32 as usize));
            let mut position = hash as usize & self.mask;
            while self.slots[position] != EMPTY {
                position = (position + 1) & self.mask;
            }
            self.slots[position] = slot;
        }
    }

    /// The lead whose id is `id`.
    pub fn find(&self, arena: &IdArena, id: &[u8]) -> Option<u32> {
        self.find_hashed(arena, id, hash_id(id))
    }

    fn find_hashed(&self, arena: &IdArena, id: &[u8], hash: u64) -> Option<u32> {
        let mut position = hash as usize & self.mask;
        loop {
            let slot = self.slots[position];
            if slot == EMPTY {
                return None;
            }
            if slot & 0xffff_ffff_0000_0000 == tag(hash) && arena.bytes_of(slot as u32 as usize) == id {
                return Some(slot as u32);
            }
            position = (position + 1) & self.mask;
        }
    }

    /// Looks up up to [`BATCH`] ids at once: `found[i]` is the lead of `ids[i]`, as
    /// [`IdTable::find`] says. The look-ups go in stages over the whole batch (every first slot,
    /// then every candidate's place in the arena, then the bytes), so that each stage's loads
    /// do not wait for one another and their cache misses overlap.
    pub fn find_many(&self, arena: &IdArena, ids: &[&[u8]], found: &mut [Option<u32>]) {
        debug_assert!(ids.len() <= BATCH && found.len() == ids.len());
        let count = ids.len();
        let mut hashes = [0u64; BATCH];
        let mut first = [EMPTY; BATCH];
        for i in 0..count {
            hashes[i] = hash_id(ids[i]);
            first[i] = self.slots[hashes[i] as usize & self.mask];
        }
        // Where the first slot's lead's id lies in the arena, when its tag matches.
        let mut places = [(0usize, 0usize); BATCH];
        for i in 0..count {
            if first[i] != EMPTY && first[i] & 0xffff_ffff_0000_0000 == tag(hashes[i]) {
                let range = arena.range(first[i] as u32 as usize);
                places[i] = (range.start, range.end);
            } else {
                first[i] = EMPTY;
            }
        }
        for i in 0..count {
            let (start, end) = places[i];
            found[i] = if first[i] != EMPTY && arena.bytes[start..end] == *ids[i] {
                Some(first[i] as u32)
            } else if self.slots[hashes[i] as usize & self.mask] == EMPTY {
                None
            } else {
                // Another id in the first slot: probe on (rare at half load).
                self.find_hashed(arena, ids[i], hashes[i])
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arena_of(ids: &[&str]) -> IdArena {
        let mut arena = IdArena::default();
        ids.iter().for_each(|id| arena.push(id));
        arena
    }

    #[test]
    fn every_id_is_found_and_others_are_not() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("00Q5g0000{i:06}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let arena = arena_of(&refs);
        let table = IdTable::build(&arena).unwrap();
        for (lead, id) in ids.iter().enumerate() {
            assert_eq!(table.find(&arena, id.as_bytes()), Some(lead as u32));
            assert_eq!(arena.get(lead), id);
        }
        assert_eq!(table.find(&arena, b"00Q5g0000010000"), None);
        assert_eq!(table.find(&arena, b"00Q5g000000000"), None, "a prefix of an id is another id");
        assert_eq!(table.find(&arena, b""), None);
    }

    #[test]
    fn a_second_lead_with_an_id_is_refused() {
        let arena = arena_of(&["a", "b", "a"]);
        assert_eq!(IdTable::build(&arena).unwrap_err(), 2);
        let mut table = IdTable::default();
        assert!(table.insert(&arena, 0));
        assert!(table.insert(&arena, 1));
        assert!(!table.insert(&arena, 2));
        assert_eq!(table.find(&arena, b"a"), Some(0));
    }

    #[test]
    fn ids_that_read_as_numbers_stay_text() {
        let arena = arena_of(&["007", "7", "+7", "-7", "7.0", " 7", ""]);
        let table = IdTable::build(&arena).unwrap();
        for (lead, id) in arena.iter().enumerate() {
            assert_eq!(table.find(&arena, id.as_bytes()), Some(lead as u32), "{id:?}");
        }
        assert_eq!(table.find(&arena, b"07"), None);
    }

    #[test]
    fn colliding_slots_and_tags_are_told_apart_by_the_bytes() {
        // A table of 16 slots filled to the brim of its load: many ids share a first slot.
        let ids: Vec<String> = (0..8).map(|i| format!("id-{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let arena = arena_of(&refs);
        let mut table = IdTable { slots: vec![EMPTY; 16], mask: 15, entries: 0 };
        for lead in 0..8 {
            assert!(table.insert(&arena, lead));
        }
        assert_eq!(table.slots.len(), 16);
        // Same slot, same tag, different bytes: the tag alone must not make a match.
        // (Every slot but one holds lead 0, `id-0`, under the tag of `other`.)
        let mut forged = IdTable { slots: vec![tag(hash_id(b"other")); 16], mask: 15, entries: 15 };
        forged.slots[15] = EMPTY;
        assert_eq!(forged.find(&arena, b"other"), None);
        for (lead, id) in ids.iter().enumerate() {
            assert_eq!(table.find(&arena, id.as_bytes()), Some(lead as u32));
        }
    }

    proptest! {
        #[test]
        fn the_table_finds_what_a_map_finds(
            ids in prop::collection::vec("[0-9a-zA-Z@._+-]{0,40}", 0..300),
            probes in prop::collection::vec("[0-9a-zA-Z@._+-]{0,40}", 0..50),
        ) {
            let mut arena = IdArena::default();
            let mut table = IdTable::default();
            let mut map = std::collections::HashMap::new();
            for id in &ids {
                let lead = arena.len() as u32;
                arena.push(id);
                let inserted = table.insert(&arena, lead);
                prop_assert_eq!(inserted, !map.contains_key(id.as_str()));
                if inserted {
                    map.insert(id.clone(), lead);
                }
            }
            let all: Vec<&[u8]> = ids.iter().chain(&probes).map(|s| s.as_bytes()).collect();
            for chunk in all.chunks(BATCH) {
                let mut found = [None; BATCH];
                table.find_many(&arena, chunk, &mut found[..chunk.len()]);
                for (id, found) in chunk.iter().zip(&found) {
                    let id = std::str::from_utf8(id).unwrap();
                    prop_assert_eq!(*found, map.get(id).copied());
                    prop_assert_eq!(table.find(&arena, id.as_bytes()), map.get(id).copied());
                }
            }
        }
    }
}
