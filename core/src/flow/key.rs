//! A flow's key (its transport and two endpoints, in the packet's direction) and its hash, the
//! same for both directions.
#![forbid(unsafe_code)]

use std::hash::BuildHasher;
use std::sync::OnceLock;

use crate::decode::Addr;

/// The flow index's hash of a key, the same for both of its directions: under one random key
/// a process (foldhash), crafted addresses cannot be made to collide, and the decoding thread
/// works it out for each packet ahead of the analysis (`Peeked::hash`), which then spends no
/// time on it.
pub fn flow_hash(key: &Key) -> u64 {
    hash_canonical(&key.canonical().0)
}

pub(super) fn hash_canonical(canonical: &Key) -> u64 {
    static HASHER: OnceLock<foldhash::fast::RandomState> = OnceLock::new();
    HASHER.get_or_init(Default::default).hash_one(canonical)
}

/// A directional key: endpoint `a` sent the packet to endpoint `b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub proto: u8,
    pub a: Addr,
    pub b: Addr,
    pub a_port: u16,
    pub b_port: u16,
}

impl Key {
    /// The key both directions share (the lower endpoint first) and whether this key is the
    /// reverse of it. Endpoints that compare equal (a host talking to itself on one port) keep
    /// their order, so every packet of such a flow is of direction 0.
    pub fn canonical(&self) -> (Key, bool) {
        if (self.b, self.b_port) < (self.a, self.a_port) {
            (self.reversed(), true)
        } else {
            (*self, false)
        }
    }

    pub fn reversed(&self) -> Key {
        Key {
            proto: self.proto,
            a: self.b,
            b: self.a,
            a_port: self.b_port,
            b_port: self.a_port,
        }
    }

    /// A shard number both directions agree on (XOR is symmetric in the endpoints), with the
    /// same arithmetic as the Python engine's `shard_of`.
    pub fn shard(&self, shards: u32) -> u32 {
        let a = u128_of(&self.a);
        let b = u128_of(&self.b);
        let mut mixed = a ^ b ^ u128::from(self.a_port) ^ u128::from(self.b_port);
        mixed ^= mixed >> 64;
        mixed ^= mixed >> 32;
        let low = (mixed & 0xFFFF_FFFF) as u64;
        (((low * 0x9E37_79B1) >> 16) % u64::from(shards.max(1))) as u32
    }
}

fn u128_of(addr: &Addr) -> u128 {
    match addr {
        Addr::V4(a) => u128::from(u32::from_be_bytes(*a)),
        Addr::V6(a) => u128::from_be_bytes(*a),
    }
}
