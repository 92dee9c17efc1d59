//! Which candidates are worth scoring for a flow.
//!
//! A match can only hold when a unit starts with one of its possible first bytes (from its
//! prefix, its anchored regex, or its probe's declared `first_bytes`), holds its prefix's first
//! byte at the prefix's offset (or the byte after an anchored regex's fixed-size length field),
//! or, for a port-scoped match whose bytes are unbounded, when the flow uses one of its ports.
//! A signature's gate is the union over its matches; the admission turns every gate of one
//! transport into look-ups (per first byte, per port) so a flow costs a few ORs. A gate must be
//! a necessary condition: it never changes an answer, only spares work.
#![forbid(unsafe_code)]

use super::probes;
use super::pyregex::ByteSet;
use super::signature::{Signature, Transport};
// Built once from the signatures, looked up per packet: foldhash, not std's SipHash.
use hashbrown::HashMap;

/// A bit set over one transport's candidates (bit i: candidate i).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bits(Vec<u64>);

impl Bits {
    fn with_len(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }
    pub fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    fn or(&mut self, o: &Bits) {
        for (a, b) in self.0.iter_mut().zip(&o.0) {
            *a |= b;
        }
    }
    /// Set bits, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(k, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(k * 64 + b)
            })
        })
    }
}

/// What must hold for any match of a signature to hold; None (in `of`) when any bytes may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gate {
    pub first: ByteSet,
    /// (offset, bytes) of matches that fix a later byte.
    pub at: Vec<(usize, ByteSet)>,
    pub ports: Vec<u16>,
}

impl Gate {
    /// The gate of `sig` on transport `t`; None when some match may hold on any bytes.
    pub fn of(sig: &Signature, t: Transport) -> Option<Gate> {
        let mut g = Gate {
            first: ByteSet::EMPTY,
            at: Vec::new(),
            ports: Vec::new(),
        };
        for m in sig.matches.iter().filter(|m| m.transports.contains(&t)) {
            let mut known = match (&m.prefix, &m.regex) {
                (Some(p), _) if m.offset == 0 => p.first().map(|b| {
                    let mut s = ByteSet::EMPTY;
                    s.insert(*b);
                    s
                }),
                (_, Some(r)) => r.first_bytes(),
                _ => None,
            };
            if known.is_some_and(|k| k.len() == 256) {
                known = None; // a length field first: any byte, so look further in
            }
            if known.is_none() {
                if let Some(b) = m.prefix.as_ref().and_then(|p| p.first()) {
                    let mut s = ByteSet::EMPTY;
                    s.insert(*b);
                    g.at.push((m.offset, s));
                    continue;
                }
                if let Some(at) = m.regex.as_ref().and_then(|r| r.byte_at()) {
                    g.at.push(at);
                    continue;
                }
                if m.regex.is_none() {
                    if let Some(fb) = m
                        .probe
                        .as_deref()
                        .and_then(probes::lookup)
                        .and_then(|p| p.first_bytes)
                    {
                        let mut s = ByteSet::EMPTY;
                        for b in fb {
                            s.insert(*b);
                        }
                        known = Some(s);
                    }
                }
            }
            match known {
                Some(k) => g.first.union(&k),
                None if !m.ports.is_empty() => g.ports.extend(&m.ports),
                None => return None,
            }
        }
        g.ports.sort_unstable();
        g.ports.dedup();
        Some(g)
    }

    fn admits_later(&self, client: &[&[u8]], server: &[&[u8]]) -> bool {
        self.at.iter().any(|(off, allowed)| {
            client
                .iter()
                .chain(server)
                .any(|u| u.get(*off).is_some_and(|b| allowed.contains(*b)))
        })
    }
}

/// Every gate of one transport's candidate list as look-ups.
#[derive(Clone, Debug, Default)]
pub struct Admission {
    pub(crate) n: usize,
    by_first: Vec<Bits>,
    by_port: HashMap<u16, Bits>,
    always: Bits,
    later: Vec<(usize, Gate)>,
}

impl Admission {
    pub fn of(gates: &[Option<Gate>]) -> Admission {
        let n = gates.len();
        let mut a = Admission {
            n,
            by_first: vec![Bits::with_len(n); 256],
            by_port: HashMap::new(),
            always: Bits::with_len(n),
            later: Vec::new(),
        };
        for (i, gate) in gates.iter().enumerate() {
            let Some(gate) = gate else {
                a.always.set(i);
                continue;
            };
            for b in gate.first.bytes() {
                if let Some(bits) = a.by_first.get_mut(usize::from(b)) {
                    bits.set(i);
                }
            }
            for p in &gate.ports {
                a.by_port
                    .entry(*p)
                    .or_insert_with(|| Bits::with_len(n))
                    .set(i);
            }
            if !gate.at.is_empty() {
                a.later.push((i, gate.clone()));
            }
        }
        a
    }

    /// The candidates worth scoring for these units and ports.
    pub fn admitted(&self, client: &[&[u8]], server: &[&[u8]], ports: &[u16]) -> Bits {
        let mut mask = self.always.clone();
        if mask.0.len() < self.n.div_ceil(64) {
            mask = Bits::with_len(self.n);
        }
        for u in client.iter().chain(server) {
            if let Some(bits) = u.first().and_then(|b| self.by_first.get(usize::from(*b))) {
                mask.or(bits);
            }
        }
        for p in ports {
            if let Some(bits) = self.by_port.get(p) {
                mask.or(bits);
            }
        }
        for (i, gate) in &self.later {
            if !mask.get(*i) && gate.admits_later(client, server) {
                mask.set(*i);
            }
        }
        mask
    }
}
