//! Flows: the bidirectional flow table, its timers, and TCP reassembly.
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
