//! Flows: the bidirectional flow table, its timers, and TCP reassembly.

/// Pins the size of a type every open flow holds one of (the message names the size it found).
#[cfg(test)]
macro_rules! assert_size_at_most {
    ($t:ty, $bytes:expr) => {
        assert!(
            std::mem::size_of::<$t>() <= $bytes,
            "{}",
            std::mem::size_of::<$t>()
        )
    };
}

pub mod community_id;
pub mod conn_state;
pub mod datagrams;
pub mod expect;
pub mod index;
pub mod reassembly;
pub mod shape;
pub mod table;
pub mod timers;
pub mod verdicts;

pub use table::{Flow, FlowId, FlowTable, Key};
