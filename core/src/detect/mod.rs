//! Detection: signatures (data), the engine that scores them, and the structural probes.
pub mod announce;
pub mod builtin;
pub mod engine;
pub mod entropy;
pub mod gates;
pub mod probes;
pub mod pyregex;
pub mod signature;
pub mod upgrades;
