//! Detection: signatures (data), the engine that scores them, and the structural probes.
pub mod builtin;
pub mod probes;
