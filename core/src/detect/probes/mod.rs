//! Structural parsers: bytes in, facts out, no I/O.
//!
//! A probe looks at the first bytes of one direction (TCP: the reassembled prefix; UDP: one
//! datagram, or every datagram of the direction for a `units` probe) and answers no, need more,
//! or yes with facts. A signature names a probe where a byte pattern cannot check the structure.
//!
//! The contract, beyond the status and the metadata:
//! - `ProbeResult::done`: this direction's facts are complete (a whole ClientHello, a banner and
//!   its KEXINIT, HTTP headers up to the blank line); the engine then stops re-reading that
//!   direction. Say it only when later bytes can add nothing to the metadata.
//! - `Probe::first_bytes`: every input the probe can match starts with one of these bytes; the
//!   engine skips the probe for flows whose units all start otherwise. It must be a necessary
//!   condition (tests try every first byte on real messages).
//! - Probes never panic and never allocate without a bound: the input is at most `MAX_INPUT`.
#![forbid(unsafe_code)]

use crate::meta::Meta;

/// The longest input a probe is shown (the engine cuts units to this).
pub const MAX_INPUT: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    No,
    Match,
    /// The bytes so far are consistent but incomplete.
    More,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProbeResult {
    pub status: Status,
    pub meta: Meta,
    /// This direction's facts are all in: later bytes of it add nothing.
    pub done: bool,
    /// A match whose unit ends inside a message whose facts are still to come (an HTTP head
    /// cut before its blank line): a growth that adds nothing yet does not end the side.
    pub partial: bool,
}

impl ProbeResult {
    pub fn no() -> Self {
        Self {
            status: Status::No,
            meta: Meta::new(),
            done: false,
            partial: false,
        }
    }
    pub fn more() -> Self {
        Self {
            status: Status::More,
            meta: Meta::new(),
            done: false,
            partial: false,
        }
    }
    pub fn hit(meta: Meta) -> Self {
        Self {
            status: Status::Match,
            meta,
            done: false,
            partial: false,
        }
    }
    pub fn hit_done(meta: Meta, done: bool) -> Self {
        Self {
            status: Status::Match,
            meta,
            done,
            partial: false,
        }
    }
    pub fn is_match(&self) -> bool {
        self.status == Status::Match
    }
}

/// One direction's bytes (`from_client` says which direction) -> a verdict.
pub type SingleFn = fn(&[u8], bool) -> ProbeResult;
/// Every datagram of one direction at once (RTP sequence numbers, QUIC coalesced Initials).
pub type UnitsFn = fn(&[&[u8]], bool) -> ProbeResult;

#[derive(Clone, Copy)]
pub enum Kind {
    Single(SingleFn),
    Units(UnitsFn),
}

#[derive(Clone, Copy)]
pub struct Probe {
    /// The name signatures use (`probe = "tls"`).
    pub name: &'static str,
    pub kind: Kind,
    /// Necessary first bytes of any input the probe can match (see the module docs).
    pub first_bytes: Option<&'static [u8]>,
    /// Facts the server states under the name of one the client states, but as an answer of its
    /// own (a reply's message type, the version or ALPN a ServerHello picked, the server's RTP
    /// SSRC): from the server's side they are named `<name>_server` (`side_facts`). Each comes
    /// with that name written out (`answers!`), so that renaming makes no text.
    pub answers: &'static [Answer],
}

/// A fact a server states as an answer: its name and the name it gets from the server's side.
pub type Answer = [&'static str; 2];

/// `Probe::answers`' list: each name with `<name>_server` beside it.
macro_rules! answers {
    ($($name:literal),* $(,)?) => {
        &[$([$name, concat!($name, "_server")]),*]
    };
}

/// The `N` byte values from `first` on, for a `gated` probe whose first byte is a range.
pub const fn byte_range<const N: usize>(first: u8) -> [u8; N] {
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = first + i as u8;
        i += 1;
    }
    out
}

impl Probe {
    pub const fn single(name: &'static str, f: SingleFn) -> Self {
        Self {
            name,
            kind: Kind::Single(f),
            first_bytes: None,
            answers: &[],
        }
    }
    pub const fn units(name: &'static str, f: UnitsFn) -> Self {
        Self {
            name,
            kind: Kind::Units(f),
            first_bytes: None,
            answers: &[],
        }
    }
    pub const fn gated(self, first_bytes: &'static [u8]) -> Self {
        Self {
            first_bytes: Some(first_bytes),
            ..self
        }
    }
    pub const fn answers(self, answers: &'static [Answer]) -> Self {
        Self { answers, ..self }
    }
    /// One side's facts as the flow keeps them: from the server's side, its `answers` renamed
    /// `<name>_server`, so that they stand beside the client's facts of the same name.
    pub fn side_facts(&self, mut meta: Meta, from_client: bool) -> Meta {
        if !from_client {
            for &[name, server_name] in self.answers {
                meta.rename(name, server_name.into());
            }
        }
        meta
    }
    pub fn is_units(&self) -> bool {
        matches!(self.kind, Kind::Units(_))
    }
}

pub mod amqp;
pub mod bacnet;
pub mod ber;
pub mod bittorrent;
pub mod coap;
pub mod dcerpc;
pub mod dhcp;
pub mod diameter;
pub mod dnp3;
pub mod dns;
pub mod dsi;
pub mod dtls;
pub mod elasticsearch;
pub mod gtpc;
pub mod gtpu;
pub mod h323;
pub mod http;
pub mod iec104;
pub mod ipsec;
pub mod kafka;
pub mod kerberos;
pub mod ldap;
pub mod mdns;
pub mod modbus;
pub mod mongodb;
pub mod mqtt;
pub mod mssql;
pub mod mysql;
pub mod netbios;
pub mod nfs;
pub mod ntp;
pub mod openvpn;
pub mod quic;
pub mod quic_short;
pub mod radius;
pub mod rdp;
pub mod rdpeudp;
pub mod rfb;
pub mod rtmp;
pub mod rtp;
pub mod s7comm;
pub mod slp;
pub mod smb;
pub mod snmp;
pub mod socks;
pub mod ssh;
pub mod stun;
pub mod syslog;
pub mod teredo;
pub mod tftp;
pub mod tls;
pub mod tls_cert;
pub mod tls_hello;
pub mod wireguard;
pub mod x11;
// One line per protocol module: `pub mod x;` above, `x::PROBES` in REGISTRY below.

/// Every probe module's table of probes.
static REGISTRY: &[&[Probe]] = &[
    amqp::PROBES,
    dnp3::PROBES,
    dcerpc::PROBES,
    s7comm::PROBES,
    diameter::PROBES,
    gtpc::PROBES,
    gtpu::PROBES,
    elasticsearch::PROBES,
    h323::PROBES,
    iec104::PROBES,
    kafka::PROBES,
    kerberos::PROBES,
    ldap::PROBES,
    modbus::PROBES,
    mongodb::PROBES,
    mqtt::PROBES,
    mssql::PROBES,
    mysql::PROBES,
    nfs::PROBES,
    rdp::PROBES,
    rdpeudp::PROBES,
    rfb::PROBES,
    smb::PROBES,
    snmp::PROBES,
    bacnet::PROBES,
    bittorrent::PROBES,
    coap::PROBES,
    dhcp::PROBES,
    ipsec::PROBES,
    ntp::PROBES,
    openvpn::PROBES,
    rtmp::PROBES,
    rtp::PROBES,
    slp::PROBES,
    stun::PROBES,
    syslog::PROBES,
    teredo::PROBES,
    tftp::PROBES,
    wireguard::PROBES,
    dns::PROBES,
    dsi::PROBES,
    mdns::PROBES,
    netbios::PROBES,
    http::PROBES,
    ssh::PROBES,
    socks::PROBES,
    tls::PROBES,
    dtls::PROBES,
    quic::PROBES,
    quic_short::PROBES,
    radius::PROBES,
    x11::PROBES,
];

/// The probe a signature names, if there is one by that name.
pub fn lookup(name: &str) -> Option<&'static Probe> {
    REGISTRY
        .iter()
        .flat_map(|t| t.iter())
        .find(|p| p.name == name)
}

/// Every probe name, for error messages that list them.
pub fn names() -> Vec<&'static str> {
    let mut out: Vec<_> = REGISTRY
        .iter()
        .flat_map(|t| t.iter())
        .map(|p| p.name)
        .collect();
    out.sort_unstable();
    out
}

#[cfg(test)]
pub(crate) mod vectors;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::Value;

    #[test]
    fn a_servers_answers_take_the_server_name_and_other_facts_keep_theirs() {
        let probe = lookup("tls").unwrap();
        let mut facts = Meta::new();
        facts.insert("tls_version".into(), Value::from("1.3"));
        facts.insert("cipher".into(), Value::from("0x1301"));
        let server = probe.side_facts(facts.clone(), false);
        assert_eq!(
            server.keys().collect::<Vec<_>>(),
            ["tls_version_server", "cipher"]
        );
        assert_eq!(server["tls_version_server"], "1.3");
        assert_eq!(probe.side_facts(facts.clone(), true), facts);
    }

    #[test]
    fn every_answer_is_renamed_to_its_own_name_for_the_server() {
        let answers: Vec<Answer> = REGISTRY
            .iter()
            .flat_map(|t| t.iter())
            .flat_map(|p| p.answers.iter().copied())
            .collect();
        assert!(answers.len() > 30);
        for [name, server_name] in answers {
            assert_eq!(server_name, format!("{name}_server"));
        }
    }
}
