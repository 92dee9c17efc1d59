//! The DNS-tunnel policy's bookkeeping (portwatch/policy/dnstunnel.py says what it looks for and
//! words the findings): per registered domain, the unique names, the encoded-looking ones, the
//! query types; per client socket, the queries already counted. The policy runs it for every DNS
//! record, a fifth of a busy link's records, where Python's dictionaries and string work were
//! its largest single cost; the thresholds and lists are the policy's data (`Settings`), handed
//! over when the tracker is made.
//!
//! Bounded whatever the names: `max_domains` domains and as many sockets (least recently seen
//! out), `max_names` remembered name hashes a domain (past them its unique count is an upper
//! bound), `MAX_QTYPES` query types counted by name a domain.
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::num::NonZeroUsize;

use foldhash::fast::RandomState;
use lru::LruCache;

use crate::detect::entropy::byte_entropy;
use crate::dns_name::NameParts;

/// The policy's thresholds and lists (the constants of portwatch/policy/dnstunnel.py).
#[derive(Debug, Clone)]
pub struct Settings {
    pub max_domains: usize,
    pub max_names: usize,
    /// A data label this long, or `long_data` characters of data, with `min_char_entropy` bits
    /// a character, is an encoded-looking name.
    pub long_label: usize,
    pub long_data: usize,
    pub min_char_entropy: f64,
    /// Bytes of a NULL/KEY/private answer, or characters of a TXT one, that make it large.
    pub large_answer: u64,
    pub agg_suspicious_names: u64,
    pub agg_suspicious_share: f64,
    pub agg_unusual_queries: u64,
    pub agg_unusual_names: u64,
    pub flow_queries: u64,
    pub unusual_qtypes: HashSet<String>,
    /// Services of DNS-format protocols that are not resolution (mDNS, LLMNR, NetBIOS).
    pub not_resolution: HashSet<String>,
    /// Registered domains the site expects encoded names under.
    pub allowed: HashSet<String>,
}

/// Query types a domain counts by name at most; later ones count in its totals only.
pub const MAX_QTYPES: usize = 16;

/// What a query name looks like (`name_shape` in the policy).
#[derive(Debug, PartialEq)]
pub struct NameShape {
    pub parts: NameParts,
    /// Bits a character of `parts.data` (0 when the name is too short to be asked).
    pub entropy: f64,
    pub suspicious: bool,
}

/// The socket a flow record came from, as the policy tells flows apart (a flow reported when
/// classified and again when it ends is one socket).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Socket {
    pub src_ip: String,
    pub src_port: i64,
    pub dst_ip: String,
    pub dst_port: i64,
    /// `ts_start`'s bits (0.0 for -0.0, as the policy's tuples compared them).
    pub ts_start: u64,
}

/// One DNS flow record's facts.
#[derive(Debug)]
pub struct Query<'a> {
    pub qname: &'a str,
    pub qtype: &'a str,
    /// The client's packets (`packets_c2s`).
    pub packets: i64,
    pub socket: Socket,
    /// The record's answers that are text, in order.
    pub answers: &'a [&'a str],
}

/// What one flow showed: the reasons to call its domain a tunnel, or the marks of data carried
/// in DNS seen once (an encoded-looking name, a large answer).
#[derive(Debug, PartialEq)]
pub struct Signal {
    pub shape: NameShape,
    pub answer: Option<String>,
    pub reasons: Vec<String>,
}

#[derive(Debug, Default)]
struct Domain {
    names: HashSet<u64, RandomState>,
    unique: u64,
    suspicious: u64,
    unusual_queries: u64,
    queries: u64,
    /// Queries per type, in the order the types came.
    qtypes: Vec<(String, u64)>,
    longest_label: usize,
    max_entropy: f64,
}

/// A domain's counts as the policy's tests and reports read them.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainCounts {
    pub remembered_names: usize,
    pub unique: u64,
    pub suspicious: u64,
    pub unusual_queries: u64,
    pub queries: u64,
    pub longest_label: usize,
    pub max_entropy: f64,
}

pub struct Tracker {
    settings: Settings,
    // foldhash with a per-process random seed: fast, and names a client chooses cannot be
    // crafted into collisions without the seed.
    domains: LruCache<String, Domain, RandomState>,
    sockets: LruCache<Socket, u64, RandomState>,
    pub evicted: u64,
    names_hash: RandomState,
}

impl Tracker {
    pub fn new(settings: Settings) -> Self {
        let cap = NonZeroUsize::new(settings.max_domains).unwrap_or(NonZeroUsize::MIN);
        Tracker {
            settings,
            domains: LruCache::with_hasher(cap, RandomState::default()),
            sockets: LruCache::with_hasher(cap, RandomState::default()),
            evicted: 0,
            names_hash: RandomState::default(),
        }
    }

    pub fn set_allowed(&mut self, allowed: HashSet<String>) {
        self.settings.allowed = allowed;
    }

    pub fn domain_count(&self) -> usize {
        self.domains.len()
    }

    /// `name`'s counts, without making it the most recently seen.
    pub fn counts(&self, name: &str) -> Option<DomainCounts> {
        self.domains.peek(name).map(|d| DomainCounts {
            remembered_names: d.names.len(),
            unique: d.unique,
            suspicious: d.suspicious,
            unusual_queries: d.unusual_queries,
            queries: d.queries,
            longest_label: d.longest_label,
            max_entropy: d.max_entropy,
        })
    }

    /// Whether `service` (a name the port's assignment gives) is a DNS-format protocol other
    /// than resolution, whose records are not counted.
    pub fn not_resolution(&self, service: &str) -> bool {
        self.settings.not_resolution.contains(service)
    }

    /// `name`'s shape; `split` splits a name into its registered domain and data.
    pub fn shape(
        &self,
        name: &str,
        split: &dyn Fn(&str) -> Option<NameParts>,
    ) -> Option<NameShape> {
        let parts = split(name)?;
        let s = &self.settings;
        let data_chars = parts.data.chars().count();
        let long = parts.longest_label >= s.long_label || data_chars >= s.long_data;
        let entropy = if long { char_entropy(&parts.data) } else { 0.0 };
        Some(NameShape {
            suspicious: long && entropy >= s.min_char_entropy,
            entropy,
            parts,
        })
    }

    /// Count one DNS resolution record (the caller checked the protocol and `not_resolution`):
    /// what it showed when it, or its domain so far, looks like a tunnel, else None.
    pub fn account(
        &mut self,
        q: &Query<'_>,
        split: &dyn Fn(&str) -> Option<NameParts>,
    ) -> Option<Signal> {
        let shape = self.shape(q.qname, split)?;
        let domain = shape.parts.domain.as_str();
        if domain.ends_with("arpa") || self.settings.allowed.contains(domain) {
            return None; // reverse look-ups: many unique names by design
        }
        let unusual = self.unusual(q.qtype);
        let queries = q.packets.max(1).unsigned_abs();
        let counted = self.sockets.put(q.socket.clone(), queries).unwrap_or(0);
        let new_queries = queries.saturating_sub(counted);
        let name_key = self.names_hash.hash_one(lowercase(q.qname).as_ref());
        let max_names = self.settings.max_names;
        let d = self.domain(domain);
        if !d.names.contains(&name_key) {
            if d.names.len() < max_names {
                d.names.insert(name_key);
            }
            d.unique += 1;
            if shape.suspicious {
                d.suspicious += 1;
            }
        }
        d.queries += new_queries;
        if let Some(i) = d.qtypes.iter().position(|(t, _)| t == q.qtype) {
            d.qtypes[i].1 += new_queries;
        } else if d.qtypes.len() < MAX_QTYPES {
            d.qtypes.push((q.qtype.to_owned(), new_queries));
        }
        if unusual {
            d.unusual_queries += new_queries;
        }
        d.longest_label = d.longest_label.max(shape.parts.longest_label);
        if shape.suspicious && shape.entropy > d.max_entropy {
            d.max_entropy = shape.entropy;
        }
        let (suspicious, unique, longest, max_entropy, unusual_queries) = (
            d.suspicious,
            d.unique,
            d.longest_label,
            d.max_entropy,
            d.unusual_queries,
        );
        let types = (unusual_queries >= self.settings.agg_unusual_queries)
            .then(|| self.unusual_types(domain));
        let answer = self.large_answer(q.answers, split);

        let s = &self.settings;
        let mut reasons = Vec::new();
        if suspicious >= s.agg_suspicious_names
            && suspicious as f64 >= s.agg_suspicious_share * unique as f64
        {
            reasons.push(format!(
                "{suspicious} of {unique} unique names under {domain} carry encoded-looking labels \
                 (up to {longest} characters, {max_entropy:.2} bits/character)"
            ));
        }
        if unusual_queries >= s.agg_unusual_queries && unique >= s.agg_unusual_names {
            let types = types.unwrap_or_default();
            reasons.push(format!(
                "{unusual_queries} {types} queries over {unique} unique names under {domain}"
            ));
        }
        if queries >= s.flow_queries && (unusual || shape.suspicious || answer.is_some()) {
            let qtype = if q.qtype.is_empty() { "?" } else { q.qtype };
            reasons.push(format!(
                "one client socket sent {queries} queries ({qtype} for names under {domain})"
            ));
        }
        if reasons.is_empty() && !shape.suspicious && answer.is_none() {
            return None;
        }
        Some(Signal {
            shape,
            answer,
            reasons,
        })
    }

    /// The domain's counts, made the most recently seen; a new one pushes out the least
    /// recently seen when `max_domains` are kept.
    fn domain(&mut self, name: &str) -> &mut Domain {
        if !self.domains.contains(name) {
            if let Some((old, _)) = self.domains.push(name.to_owned(), Domain::default()) {
                if old != name {
                    self.evicted += 1;
                }
            }
        }
        self.domains.get_mut(name).expect("kept above")
    }

    fn unusual(&self, qtype: &str) -> bool {
        self.settings.unusual_qtypes.contains(qtype) || private_use(qtype)
    }

    /// The unusual ones among a domain's three most asked query types, joined by "/"
    /// ("unusual-type" when none is).
    fn unusual_types(&self, domain: &str) -> String {
        let Some(d) = self.domains.peek(domain) else {
            return String::new();
        };
        let mut by_count: Vec<&(String, u64)> = d.qtypes.iter().collect();
        // Stable: types asked as often keep the order they came in (Counter.most_common).
        by_count.sort_by_key(|t| std::cmp::Reverse(t.1));
        let names: Vec<&str> = by_count
            .iter()
            .take(3)
            .map(|(t, _)| t.as_str())
            .filter(|t| self.unusual(t))
            .collect();
        if names.is_empty() {
            "unusual-type".to_owned()
        } else {
            names.join("/")
        }
    }

    /// The first answer large enough to carry data: a NULL, KEY or numbered type's data of
    /// `large_answer` bytes or more (the probe writes them "(N bytes)"), a TXT of as many
    /// characters, a CNAME to an encoded-looking name.
    fn large_answer(
        &self,
        answers: &[&str],
        split: &dyn Fn(&str) -> Option<NameParts>,
    ) -> Option<String> {
        for &a in answers {
            // Only these kinds can be large: the rest (A, AAAA...) are passed over on their first
            // letter.
            if !matches!(a.as_bytes().first(), Some(b'N' | b'K' | b'T' | b'C')) {
                continue;
            }
            let (kind, rest) = a.split_once(' ').unwrap_or((a, ""));
            if kind == "NULL" || kind == "KEY" || kind.starts_with("TYPE") {
                if let Some(digits) = byte_count(rest).filter(|d| self.at_least_large(d)) {
                    return Some(format!("{kind} answer of {digits} bytes"));
                }
            } else if kind == "TXT" {
                let chars = rest.chars().count();
                if chars as u64 >= self.settings.large_answer {
                    return Some(format!("TXT answer of {chars}+ characters"));
                }
            } else if kind == "CNAME" {
                if let Some(shape) = self.shape(rest, split).filter(|s| s.suspicious) {
                    return Some(format!(
                        "CNAME answer with encoded-looking labels ({}-character label)",
                        shape.parts.longest_label
                    ));
                }
            }
        }
        None
    }
}

impl Tracker {
    /// Whether the decimal `digits` (any number of them) make at least `large_answer`.
    fn at_least_large(&self, digits: &str) -> bool {
        let significant = digits.trim_start_matches('0');
        significant.len() > 19
            || significant
                .parse::<u64>()
                .is_ok_and(|n| n >= self.settings.large_answer)
    }
}

/// The digits of a "(N bytes)" at the start of `rest`.
fn byte_count(rest: &str) -> Option<&str> {
    let inner = rest.strip_prefix('(')?;
    let end = inner.find(|c: char| !c.is_ascii_digit())?;
    (end > 0 && inner[end..].starts_with(" bytes)")).then(|| &inner[..end])
}

/// A private-use type (RFC 6895: 65280-65534), which iodine offers as "PRIVATE".
fn private_use(qtype: &str) -> bool {
    qtype
        .strip_prefix("TYPE")
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .is_some_and(|n| n.parse::<u64>().is_ok_and(|v| (65280..=65534).contains(&v)))
}

fn lowercase(name: &str) -> std::borrow::Cow<'_, str> {
    if name.is_ascii() {
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            name.to_ascii_lowercase().into()
        } else {
            name.into()
        }
    } else {
        name.to_lowercase().into()
    }
}

/// Shannon entropy of `text`'s characters in bits, summed in the order each character first
/// appears (the policy's `_char_entropy`, to its last bit). An ASCII text's characters are its
/// bytes (`entropy::byte_entropy`); others are counted by character.
pub fn char_entropy(text: &str) -> f64 {
    if text.is_ascii() {
        return byte_entropy(text.as_bytes());
    }
    let mut counts: Vec<(char, u32)> = Vec::new();
    let mut index: hashbrown::HashMap<char, usize, RandomState> = Default::default();
    for c in text.chars() {
        match index.get(&c) {
            Some(&i) => counts[i].1 += 1,
            None => {
                index.insert(c, counts.len());
                counts.push((c, 1));
            }
        }
    }
    let n = f64::from(counts.iter().map(|&(_, k)| k).sum::<u32>());
    -counts
        .iter()
        .map(|&(_, k)| {
            let p = f64::from(k) / n;
            p * p.log2()
        })
        .fold(0.0, |sum, x| sum + x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns_name::split_name;

    fn settings() -> Settings {
        let set = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        Settings {
            max_domains: 8,
            max_names: 4,
            long_label: 40,
            long_data: 64,
            min_char_entropy: 3.5,
            large_answer: 200,
            agg_suspicious_names: 5,
            agg_suspicious_share: 0.3,
            agg_unusual_queries: 20,
            agg_unusual_names: 10,
            flow_queries: 20,
            unusual_qtypes: set(&["NULL", "TXT", "CNAME", "MX", "SRV", "KEY", "PRIVATE"]),
            not_resolution: set(&["mdns", "llmnr", "netbios-ns"]),
            allowed: set(&["allowed.example"]),
        }
    }

    fn split(name: &str) -> Option<NameParts> {
        split_name(name, |l| ["co", "com"].contains(&l))
    }

    fn query<'a>(
        qname: &'a str,
        qtype: &'a str,
        packets: i64,
        port: i64,
        answers: &'a [&'a str],
    ) -> Query<'a> {
        Query {
            qname,
            qtype,
            packets,
            socket: Socket {
                src_ip: "10.0.0.1".into(),
                src_port: port,
                dst_ip: "10.0.0.53".into(),
                dst_port: 53,
                ts_start: 0,
            },
            answers,
        }
    }

    const B32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";

    /// `n` base32 characters, different for each `seed`.
    fn encoded(seed: u64, n: usize) -> String {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(B32[(x % 32) as usize])
            })
            .collect()
    }

    #[test]
    fn entropy_is_summed_in_order_of_first_appearance() {
        assert_eq!(char_entropy(""), 0.0);
        assert_eq!(char_entropy("aaaa"), 0.0);
        assert_eq!(char_entropy("abcdefgh"), 3.0);
        // Python: -sum(c / n * math.log2(c / n) for c in map(t.count, dict.fromkeys(t)))
        assert_eq!(
            char_entropy("aab").to_bits(),
            0.918_295_834_054_489_6_f64.to_bits()
        );
        assert_eq!(char_entropy("ééa"), char_entropy("xxa"));
    }

    #[test]
    fn an_ordinary_name_is_counted_and_says_nothing() {
        let mut t = Tracker::new(settings());
        assert_eq!(
            t.account(&query("www.Example.com.", "A", 1, 1, &[]), &split),
            None
        );
        let c = t.counts("example.com").unwrap();
        assert_eq!((c.unique, c.queries, c.suspicious), (1, 1, 0));
    }

    #[test]
    fn an_encoded_name_is_a_signal_without_reasons() {
        let mut t = Tracker::new(settings());
        let name = format!("{}.t.example.com.", encoded(1, 52));
        let s = t.account(&query(&name, "A", 1, 1, &[]), &split).unwrap();
        assert!(s.shape.suspicious && s.reasons.is_empty() && s.answer.is_none());
        assert_eq!(s.shape.parts.domain, "example.com");
    }

    #[test]
    fn many_unusual_queries_over_unique_names_give_a_reason() {
        let mut t = Tracker::new(settings());
        let mut last = None;
        for i in 0..12 {
            let name = format!("p{i}x.c.tun.example.");
            last = t.account(&query(&name, "TXT", 2, i, &[]), &split);
        }
        let reasons = last.unwrap().reasons;
        assert_eq!(
            reasons,
            ["24 TXT queries over 12 unique names under tun.example"]
        );
    }

    #[test]
    fn one_socket_with_many_null_queries_is_a_reason_at_once() {
        let mut t = Tracker::new(settings());
        let s = t.account(
            &query("vaaaakardli.t.example.test.", "NULL", 40, 1, &[]),
            &split,
        );
        assert_eq!(
            s.unwrap().reasons,
            ["one client socket sent 40 queries (NULL for names under example.test)"]
        );
    }

    #[test]
    fn a_socket_reported_twice_counts_its_queries_once() {
        let mut t = Tracker::new(settings());
        t.account(&query("q1.c.tun.example.", "TXT", 5, 1, &[]), &split);
        t.account(&query("q1.c.tun.example.", "TXT", 8, 1, &[]), &split);
        let c = t.counts("tun.example").unwrap();
        assert_eq!((c.queries, c.unusual_queries, c.unique), (8, 8, 1));
    }

    #[test]
    fn reverse_lookups_and_allowed_domains_are_not_counted() {
        let mut t = Tracker::new(settings());
        assert_eq!(
            t.account(&query("1.0.0.10.in-addr.arpa.", "PTR", 1, 1, &[]), &split),
            None
        );
        assert_eq!(
            t.account(&query("x.allowed.example", "TXT", 50, 1, &[]), &split),
            None
        );
        assert_eq!(t.domain_count(), 0);
        assert!(t.not_resolution("mdns") && !t.not_resolution("domain"));
    }

    #[test]
    fn large_answers_are_named() {
        let t = Tracker::new(settings());
        let txt = format!("TXT {}", "v".repeat(200));
        let cname = format!("CNAME {}.edge.example.net.", encoded(2, 50));
        let cases: [(&str, Option<&str>); 8] = [
            ("A 10.0.0.1", None),
            ("NULL (300 bytes)", Some("NULL answer of 300 bytes")),
            (
                "TYPE65300 (0200 bytes)",
                Some("TYPE65300 answer of 0200 bytes"),
            ),
            ("KEY (199 bytes)", None),
            ("NULL (300 bytes", None),
            (&txt, Some("TXT answer of 200+ characters")),
            (
                &cname,
                Some("CNAME answer with encoded-looking labels (50-character label)"),
            ),
            ("CNAME www.example.net.", None),
        ];
        for (answer, want) in cases {
            assert_eq!(
                t.large_answer(&[answer], &split).as_deref(),
                want,
                "{answer}"
            );
        }
        let huge = format!("NULL ({} bytes)", "9".repeat(30));
        assert!(t.large_answer(&[&huge], &split).is_some());
        let zeros = format!("NULL ({}1 bytes)", "0".repeat(30));
        assert!(t.large_answer(&[&zeros], &split).is_none());
    }

    #[test]
    fn private_use_types_are_unusual() {
        let t = Tracker::new(settings());
        assert!(t.unusual("TYPE65280") && t.unusual("TYPE65534") && t.unusual("NULL"));
        assert!(
            !t.unusual("TYPE65535")
                && !t.unusual("TYPE")
                && !t.unusual("TYPE6x")
                && !t.unusual("A")
        );
    }

    #[test]
    fn state_is_bounded() {
        let mut t = Tracker::new(settings());
        for i in 0..50u64 {
            let name = format!("{}.d{}.example.", encoded(i, 8), i % 20);
            t.account(&query(&name, "A", 1, i as i64, &[]), &split);
        }
        // 20 domains in rotation through 8 slots: every look-up after the first 8 evicts one.
        assert_eq!((t.domain_count(), t.evicted), (8, 42));
        assert_eq!(t.sockets.len(), 8);
        for i in 0..30u64 {
            let name = format!("{}.one.example.", encoded(100 + i, 8));
            let qtype = format!("TYPE{i}");
            t.account(&query(&name, &qtype, 1, i as i64, &[]), &split);
        }
        let c = t.counts("one.example").unwrap();
        assert_eq!((c.remembered_names, c.unique), (4, 30));
        assert_eq!(
            t.domains.peek("one.example").unwrap().qtypes.len(),
            MAX_QTYPES
        );
    }
}
