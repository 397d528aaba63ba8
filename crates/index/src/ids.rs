//! The map between the user's string ids and the dense internal slots an index works with.

use std::collections::{HashMap, HashSet};

use crate::error::IndexError;

/// Most slots an index can address (slots are `u32`).
pub(crate) const MAX_SLOTS: usize = u32::MAX as usize;

/// String ids by slot, and the slot of every live id.
///
/// A flat index keeps slots dense (removal moves the last slot into the hole); an HNSW index
/// never moves slots (removal only forgets the id, leaving a tombstoned slot behind).
#[derive(Debug, Default, Clone)]
pub(crate) struct IdMap {
    by_slot: Vec<String>,
    slot_of: HashMap<String, u32>,
}

impl IdMap {
    /// Rebuilds the map from ids by slot, where `live(slot)` says which slots hold a live id.
    /// Fails with the first live id that appears twice.
    pub(crate) fn from_slots(
        by_slot: Vec<String>,
        live: impl Fn(usize) -> bool,
    ) -> Result<Self, String> {
        if by_slot.len() > MAX_SLOTS {
            return Err(format!(
                "{} ids exceed the limit of {MAX_SLOTS}",
                by_slot.len()
            ));
        }
        let mut slot_of = HashMap::with_capacity(by_slot.len());
        for (slot, id) in by_slot.iter().enumerate() {
            if live(slot) && slot_of.insert(id.clone(), slot as u32).is_some() {
                return Err(format!("id {id:?} appears twice"));
            }
        }
        Ok(IdMap { by_slot, slot_of })
    }

    /// Checks that `ids` can be added: none already live, none repeated, and room for them all.
    pub(crate) fn check_new(&self, ids: &[String]) -> Result<(), IndexError> {
        if self.by_slot.len() + ids.len() > MAX_SLOTS {
            return Err(IndexError::TooManyVectors { max: MAX_SLOTS });
        }
        let mut batch = HashSet::with_capacity(ids.len());
        for (position, id) in ids.iter().enumerate() {
            let reason = if self.slot_of.contains_key(id) {
                "already in the index"
            } else if !batch.insert(id.as_str()) {
                "repeated within the batch"
            } else {
                continue;
            };
            return Err(IndexError::DuplicateId {
                id: id.clone(),
                position,
                reason,
            });
        }
        Ok(())
    }

    /// The slots of `ids`, all of which must be live and distinct.
    pub(crate) fn slots_of(&self, ids: &[String]) -> Result<Vec<u32>, IndexError> {
        let mut seen = HashSet::with_capacity(ids.len());
        ids.iter()
            .enumerate()
            .map(|(position, id)| match self.slot_of.get(id) {
                Some(&slot) if seen.insert(slot) => Ok(slot),
                Some(_) => Err(IndexError::DuplicateId {
                    id: id.clone(),
                    position,
                    reason: "repeated within the batch",
                }),
                None => Err(IndexError::UnknownId {
                    id: id.clone(),
                    position,
                }),
            })
            .collect()
    }

    /// Appends `ids` (checked by [`IdMap::check_new`]) to new slots.
    pub(crate) fn push(&mut self, ids: &[String]) {
        for id in ids {
            self.slot_of.insert(id.clone(), self.by_slot.len() as u32);
            self.by_slot.push(id.clone());
        }
    }

    /// Forgets the id in `slot`; the slot itself stays (a tombstone).
    pub(crate) fn forget(&mut self, slot: u32) {
        self.slot_of.remove(&self.by_slot[slot as usize]);
    }

    /// Removes `slot` by moving the last slot into it (returns the slot that moved, if any).
    pub(crate) fn swap_remove(&mut self, slot: u32) -> Option<u32> {
        let last = self.by_slot.len() as u32 - 1;
        let removed = self.by_slot.swap_remove(slot as usize);
        self.slot_of.remove(&removed);
        if slot == last {
            return None;
        }
        self.slot_of
            .insert(self.by_slot[slot as usize].clone(), slot);
        Some(last)
    }

    /// The id in `slot`.
    pub(crate) fn id(&self, slot: usize) -> &str {
        &self.by_slot[slot]
    }

    /// Ids by slot (tombstoned slots included).
    pub(crate) fn by_slot(&self) -> &[String] {
        &self.by_slot
    }

    /// Number of slots, tombstones included.
    pub(crate) fn slots(&self) -> usize {
        self.by_slot.len()
    }

    /// Number of live ids.
    pub(crate) fn live(&self) -> usize {
        self.slot_of.len()
    }
}
