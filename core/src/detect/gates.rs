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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bits(Words);

/// Up to `INLINE_WORDS` words in place: a set is made for every classification, and the
/// signatures of one transport (about a hundred) fit; more (a user's many signatures) are
/// allocated.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Words {
    Inline([u64; INLINE_WORDS], usize),
    Heap(Vec<u64>),
}

const INLINE_WORDS: usize = 4;

impl Default for Bits {
    fn default() -> Self {
        Bits::with_len(0)
    }
}

impl Bits {
    fn with_len(n: usize) -> Bits {
        let words = n.div_ceil(64);
        Bits(if words <= INLINE_WORDS {
            Words::Inline([0; INLINE_WORDS], words)
        } else {
            Words::Heap(vec![0; words])
        })
    }
    fn words(&self) -> &[u64] {
        match &self.0 {
            Words::Inline(w, n) => &w[..*n],
            Words::Heap(w) => w,
        }
    }
    fn words_mut(&mut self) -> &mut [u64] {
        match &mut self.0 {
            Words::Inline(w, n) => &mut w[..*n],
            Words::Heap(w) => w,
        }
    }
    fn len(&self) -> usize {
        self.words().len()
    }
    fn set(&mut self, i: usize) {
        if let Some(w) = self.words_mut().get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }
    pub fn get(&self, i: usize) -> bool {
        self.words()
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    fn or(&mut self, o: &Bits) {
        for (a, b) in self.words_mut().iter_mut().zip(o.words()) {
            *a |= b;
        }
    }
    /// Set bits, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words().iter().enumerate().flat_map(|(k, &w)| {
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
        if mask.len() < self.n.div_ceil(64) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_in_place_and_allocated_behave_alike() {
        for n in [0, 1, 64, 100, 256, 257, 1000] {
            let mut a = Bits::with_len(n);
            let mut b = Bits::with_len(n);
            assert_eq!(matches!(a.0, Words::Inline(..)), n <= 256, "{n}");
            let picks: Vec<usize> = (0..n).filter(|i| i % 7 == 3).collect();
            for &i in &picks {
                a.set(i);
            }
            b.set(n.saturating_sub(1));
            b.set(n + 64); // past the set: ignored, never a panic
            assert!(!b.get(n + 64));
            a.or(&b);
            let mut want = picks.clone();
            if n > 0 && !want.contains(&(n - 1)) {
                want.push(n - 1);
            }
            assert_eq!(a.iter().collect::<Vec<_>>(), want, "{n}");
            assert!(want.iter().all(|&i| a.get(i)));
            assert_eq!(a.len(), n.div_ceil(64));
        }
    }
}
