//! The flows' slots, allocated a chunk at a time as the table grows.
#![forbid(unsafe_code)]

use super::slot::Flow;
use super::table::FlowId;

/// Flows per slab chunk (a power of two: an id splits by shift and mask).
const SLAB_CHUNK_BITS: u32 = 10;
pub(super) const SLAB_CHUNK: usize = 1 << SLAB_CHUNK_BITS;

/// The flows' slots, in chunks of `SLAB_CHUNK` allocated as the table grows: a flow never
/// moves, and the spare room is at most one chunk (a `Vec` doubling would leave up to half of
/// a large table's slots spare, and for a moment hold the old and the new array at once).
#[derive(Default)]
pub(super) struct Slab {
    pub(super) chunks: Vec<Vec<Option<Flow>>>,
    len: usize,
}

impl Slab {
    pub(super) fn slot(&self, id: FlowId) -> Option<&Option<Flow>> {
        self.chunks
            .get(id >> SLAB_CHUNK_BITS)?
            .get(id & (SLAB_CHUNK - 1))
    }

    fn slot_mut(&mut self, id: FlowId) -> Option<&mut Option<Flow>> {
        self.chunks
            .get_mut(id >> SLAB_CHUNK_BITS)?
            .get_mut(id & (SLAB_CHUNK - 1))
    }

    pub(super) fn get(&self, id: FlowId) -> Option<&Flow> {
        self.slot(id)?.as_ref()
    }

    pub(super) fn get_mut(&mut self, id: FlowId) -> Option<&mut Flow> {
        self.slot_mut(id)?.as_mut()
    }

    pub(super) fn take(&mut self, id: FlowId) -> Option<Flow> {
        self.slot_mut(id)?.take()
    }

    /// Into a slot `push` made earlier (a freed one).
    pub(super) fn put(&mut self, id: FlowId, flow: Flow) {
        if let Some(slot) = self.slot_mut(id) {
            *slot = Some(flow);
        }
    }

    /// Into a new slot; its id.
    pub(super) fn push(&mut self, flow: Flow) -> FlowId {
        if self.len & (SLAB_CHUNK - 1) == 0 {
            self.chunks.push(Vec::with_capacity(SLAB_CHUNK));
        }
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.push(Some(flow));
        }
        self.len += 1;
        self.len - 1
    }
}
