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
pub mod key;
pub mod reassembly;
pub mod resume;
pub mod shape;
mod slab;
pub mod slot;
pub mod table;
pub mod timers;
pub mod verdicts;

pub use key::Key;
pub use slot::Flow;
pub use table::{FlowId, FlowTable};

/// TCP header flags, as the flow table and the pipeline read them.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;
