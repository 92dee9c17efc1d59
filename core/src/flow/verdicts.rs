//! One shared copy of each distinct verdict, which the flows that reached it point to.
//!
//! A verdict is a signature, a protocol, a confidence and the evidence's text, and a link's
//! flows reach few distinct ones (13 for the 84,000 flows of a generated 60,000-flow capture):
//! a verdict of its own per classified flow was some 50 bytes of every such flow's memory.
#![forbid(unsafe_code)]

use std::sync::Arc;

use super::slot::Verdict;

/// Distinct verdicts kept for sharing at most; past it a verdict is a flow's own. Evidence
/// texts come from the signatures, not the bytes, so a set's verdicts are far fewer.
pub const MAX_SHARED_VERDICTS: usize = 4096;

#[derive(PartialEq, Eq, Hash)]
struct Key {
    sig: Option<usize>,
    protocol: Arc<str>,
    confidence: u64,
    evidence: Arc<str>,
}

impl Key {
    fn of(v: &Verdict) -> Self {
        Key {
            sig: v.sig(),
            protocol: Arc::clone(&v.protocol),
            confidence: v.confidence.to_bits(),
            evidence: Arc::clone(&v.evidence),
        }
    }
}

#[derive(Default)]
pub struct Verdicts {
    shared: hashbrown::HashMap<Key, Arc<Verdict>>,
}

impl Verdicts {
    /// The shared copy of `v` (made now if it is new and there is room).
    pub fn share(&mut self, v: Verdict) -> Arc<Verdict> {
        let key = Key::of(&v);
        if let Some(known) = self.shared.get(&key) {
            return Arc::clone(known);
        }
        let v = Arc::new(v);
        if self.shared.len() < MAX_SHARED_VERDICTS {
            self.shared.insert(key, Arc::clone(&v));
        }
        v
    }

    /// Forget every copy (a new signature set numbers its signatures anew).
    pub fn clear(&mut self) {
        self.shared.clear();
    }

    pub fn len(&self) -> usize {
        self.shared.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shared.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(protocol: &str, confidence: f64, evidence: &str) -> Verdict {
        Verdict::new(Some(3), protocol.into(), confidence, evidence.into())
    }

    #[test]
    fn equal_verdicts_share_one_copy_and_different_ones_do_not() {
        let mut shared = Verdicts::default();
        let a = shared.share(verdict(
            "tls",
            0.99,
            "client bytes confirmed by the tls probe",
        ));
        let b = shared.share(verdict(
            "tls",
            0.99,
            "client bytes confirmed by the tls probe",
        ));
        assert!(Arc::ptr_eq(&a, &b));
        for other in [
            verdict("ssh", 0.99, "client bytes confirmed by the tls probe"),
            verdict("tls", 0.9, "client bytes confirmed by the tls probe"),
            verdict("tls", 0.99, "server bytes confirmed by the tls probe"),
            Verdict::new(
                None,
                "tls".into(),
                0.99,
                "client bytes confirmed by the tls probe".into(),
            ),
        ] {
            let c = shared.share(other);
            assert!(!Arc::ptr_eq(&a, &c));
        }
        assert_eq!(shared.len(), 5);
        shared.clear();
        assert!(shared.is_empty());
        assert!(!Arc::ptr_eq(
            &a,
            &shared.share(verdict(
                "tls",
                0.99,
                "client bytes confirmed by the tls probe"
            ))
        ));
    }

    #[test]
    fn the_copies_kept_are_bounded() {
        let mut shared = Verdicts::default();
        for i in 0..MAX_SHARED_VERDICTS + 10 {
            let v = shared.share(verdict("x", 0.5, &format!("evidence {i}")));
            assert_eq!(&*v.evidence, format!("evidence {i}"));
        }
        assert_eq!(shared.len(), MAX_SHARED_VERDICTS);
    }
}
