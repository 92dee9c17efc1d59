//! BACnet/IP (ASHRAE 135 Annex J): a BVLC header whose length is the datagram's, then an NPDU.
//!
//! `bacnet`: type 0x81, a known BVLC function, a 2-byte length equal to the datagram length;
//! functions that carry an NPDU (original unicast/broadcast, forwarded, distribute) must show
//! NPDU version 1 where it belongs. The APDU past the NPDU's header (clause 6.2) names the
//! exchange (clause 20.1) and says who sent it: a confirmed request, Who-Is and Who-Has come
//! from the requesting side, and ACKs, errors, rejects, I-Am and I-Have from the device that
//! answers (as do BVLC results and table reads' ACKs, Annex J.2). A datagram on the wrong side
//! is refused, so the engine tries the roles the other way round: a flow that begins with a
//! device's I-Am (answering a broadcast Who-Is, or announcing itself) has the device as server.
//!
//! Meta: `bvlc_function` ("original-unicast", "original-broadcast", "forwarded"...),
//! `bacnet_apdu` ("confirmed-request", "complex-ack"...) and `bacnet_service` (the request's or
//! the ACK's service, "read-property", "i-am"...; an error's too), the server's first datagram's
//! as `bvlc_function_server`, `bacnet_apdu_server` and `bacnet_service_server`.
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[Probe::single("bacnet", probe).answers(answers![
    "bvlc_function",
    "bacnet_apdu",
    "bacnet_service"
])];

const BVLC_TYPE: u8 = 0x81;

fn function(f: u8) -> Option<&'static str> {
    Some(match f {
        0x00 => "result",
        0x01 => "write-bdt",
        0x02 => "read-bdt",
        0x03 => "read-bdt-ack",
        0x04 => "forwarded",
        0x05 => "register-foreign-device",
        0x06 => "read-fdt",
        0x07 => "read-fdt-ack",
        0x08 => "delete-fdt-entry",
        0x09 => "distribute-broadcast",
        0x0A => "original-unicast",
        0x0B => "original-broadcast",
        0x0C => "secure-bvll",
        _ => return None,
    })
}

/// Where the NPDU starts, for the functions that carry one (forwarded: after the origin B/IP
/// address and port).
fn npdu_at(f: u8) -> Option<usize> {
    match f {
        0x04 => Some(10),
        0x09..=0x0B => Some(4),
        _ => None,
    }
}

/// Which side sends a message, where the standard says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Requester,
    Responder,
}

/// BVLC functions that only one side sends (Annex J.2): a BBMD answers the others.
fn bvlc_role(f: u8) -> Option<Role> {
    match f {
        0x00 | 0x03 | 0x07 => Some(Role::Responder),
        0x01 | 0x02 | 0x05 | 0x06 | 0x08 => Some(Role::Requester),
        _ => None,
    }
}

/// The APDU after the NPDU that starts at `at` (clause 6.2: version, control, then the
/// destination and source specifiers and a hop count as the control bits say); None for a
/// network-layer message or a header cut short.
fn apdu(data: &[u8], at: usize) -> Option<&[u8]> {
    let control = *data.get(at + 1)?;
    let mut i = at + 2;
    let specifier = |i: usize| data.get(i + 2).map(|len| i + 3 + usize::from(*len));
    if control & 0x20 != 0 {
        i = specifier(i)?;
    }
    if control & 0x08 != 0 {
        i = specifier(i)?;
    }
    if control & 0x20 != 0 {
        i += 1;
    }
    if control & 0x80 != 0 {
        return None;
    }
    data.get(i..).filter(|a| !a.is_empty())
}

/// BACnetConfirmedServiceChoice (clause 21).
fn confirmed_service(c: u8) -> Option<&'static str> {
    Some(match c {
        0 => "acknowledge-alarm",
        1 => "confirmed-cov-notification",
        2 => "confirmed-event-notification",
        3 => "get-alarm-summary",
        4 => "get-enrollment-summary",
        5 => "subscribe-cov",
        6 => "atomic-read-file",
        7 => "atomic-write-file",
        8 => "add-list-element",
        9 => "remove-list-element",
        10 => "create-object",
        11 => "delete-object",
        12 => "read-property",
        13 => "read-property-conditional",
        14 => "read-property-multiple",
        15 => "write-property",
        16 => "write-property-multiple",
        17 => "device-communication-control",
        18 => "confirmed-private-transfer",
        19 => "confirmed-text-message",
        20 => "reinitialize-device",
        21 => "vt-open",
        22 => "vt-close",
        23 => "vt-data",
        24 => "authenticate",
        25 => "request-key",
        26 => "read-range",
        27 => "life-safety-operation",
        28 => "subscribe-cov-property",
        29 => "get-event-information",
        30 => "subscribe-cov-property-multiple",
        31 => "confirmed-cov-notification-multiple",
        32 => "confirmed-audit-notification",
        33 => "audit-log-query",
        _ => return None,
    })
}

/// BACnetUnconfirmedServiceChoice (clause 21), with the side that sends it where one does.
fn unconfirmed_service(c: u8) -> Option<(&'static str, Option<Role>)> {
    Some(match c {
        0 => ("i-am", Some(Role::Responder)),
        1 => ("i-have", Some(Role::Responder)),
        2 => ("unconfirmed-cov-notification", None),
        3 => ("unconfirmed-event-notification", None),
        4 => ("unconfirmed-private-transfer", None),
        5 => ("unconfirmed-text-message", None),
        6 => ("time-synchronization", None),
        7 => ("who-has", Some(Role::Requester)),
        8 => ("who-is", Some(Role::Requester)),
        9 => ("utc-time-synchronization", None),
        10 => ("write-group", None),
        11 => ("unconfirmed-cov-notification-multiple", None),
        12 => ("unconfirmed-audit-notification", None),
        13 => ("who-am-i", None),
        14 => ("you-are", None),
        _ => return None,
    })
}

/// An APDU's type, its service where it names one, and who sends it (clause 20.1). A confirmed
/// request's service follows its max-segments and invoke-id octets (and the sequence number
/// and window when segmented), a complex ACK's its invoke id (and the same two).
fn apdu_facts(a: &[u8]) -> (&'static str, Option<&'static str>, Option<Role>) {
    let first = a[0];
    let segmented = first & 0x08 != 0;
    let at = |i: usize| a.get(i).copied();
    match first >> 4 {
        0 => (
            "confirmed-request",
            at(if segmented { 5 } else { 3 }).and_then(confirmed_service),
            Some(Role::Requester),
        ),
        1 => match at(1).and_then(unconfirmed_service) {
            Some((name, role)) => ("unconfirmed-request", Some(name), role),
            None => ("unconfirmed-request", None, None),
        },
        2 => (
            "simple-ack",
            at(2).and_then(confirmed_service),
            Some(Role::Responder),
        ),
        3 => (
            "complex-ack",
            at(if segmented { 4 } else { 2 }).and_then(confirmed_service),
            Some(Role::Responder),
        ),
        4 => ("segment-ack", None, None),
        5 => (
            "error",
            at(2).and_then(confirmed_service),
            Some(Role::Responder),
        ),
        6 => ("reject", None, Some(Role::Responder)),
        7 => ("abort", None, None),
        _ => ("unknown", None, None),
    }
}

pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    let Some(&[kind, func, hi, lo]) = data.get(..4) else {
        return ProbeResult::no();
    };
    let Some(name) = function(func).filter(|_| kind == BVLC_TYPE) else {
        return ProbeResult::no();
    };
    if usize::from(u16::from_be_bytes([hi, lo])) != data.len() {
        return ProbeResult::no();
    }
    let mut meta = Meta::new();
    meta.insert("bvlc_function".into(), json!(name));
    let mut role = bvlc_role(func);
    if let Some(at) = npdu_at(func) {
        // The NPDU: version 1 and a control byte at least.
        if data.len() < at + 2 || data[at] != 1 {
            return ProbeResult::no();
        }
        if let Some(a) = apdu(data, at) {
            let (kind, service, sender) = apdu_facts(a);
            meta.insert("bacnet_apdu".into(), json!(kind));
            if let Some(service) = service {
                meta.insert("bacnet_service".into(), json!(service));
            }
            role = sender;
        }
    }
    let expected = if from_client {
        Role::Requester
    } else {
        Role::Responder
    };
    if role.is_some_and(|r| r != expected) {
        return ProbeResult::no();
    }
    ProbeResult::hit(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("bacnet");
    }

    #[test]
    fn no_panic_on_hostile_shapes() {
        crate::detect::probes::vectors::never_panics("bacnet");
    }

    #[test]
    fn who_is_broadcast() {
        // Original-Broadcast-NPDU, length 12: NPDU v1, control 0x20 (DNET present), DNET 0xffff,
        // DLEN 0, hop count 255, then the unconfirmed Who-Is APDU (0x10 0x08).
        let who_is = [
            0x81, 0x0b, 0x00, 0x0c, 0x01, 0x20, 0xff, 0xff, 0x00, 0xff, 0x10, 0x08,
        ];
        assert_eq!(
            probe(&who_is, true).meta,
            json!({"bvlc_function": "original-broadcast", "bacnet_apdu": "unconfirmed-request",
                   "bacnet_service": "who-is"})
            .as_object()
            .cloned()
            .unwrap()
        );
        assert_eq!(probe(&who_is[..11], true).status, Status::No);
        let mut v2 = who_is;
        v2[4] = 2;
        assert_eq!(probe(&v2, true).status, Status::No);
        // A Who-Is is the asking side's: sent by the other, the roles are the other way round.
        assert_eq!(probe(&who_is, false).status, Status::No);
        // BVLC-Result (no NPDU): result code 0 (successful completion), the BBMD's answer.
        let result = [0x81, 0x00, 0x00, 0x06, 0x00, 0x00];
        assert_eq!(probe(&result, false).meta["bvlc_function"], "result");
        assert_eq!(probe(&result, true).status, Status::No);
    }

    /// Original-Unicast-NPDU around `apdu`, with NPDU control `control` and `specifiers`.
    fn unicast(control: u8, specifiers: &[u8], apdu: &[u8]) -> Vec<u8> {
        let len = 4 + 2 + specifiers.len() + apdu.len();
        let mut d = vec![0x81, 0x0a, (len >> 8) as u8, len as u8, 0x01, control];
        d.extend_from_slice(specifiers);
        d.extend_from_slice(apdu);
        d
    }

    fn facts(d: &[u8], from_client: bool) -> (Status, Option<String>, Option<String>) {
        let r = probe(d, from_client);
        let text = |k: &str| r.meta.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        (r.status, text("bacnet_apdu"), text("bacnet_service"))
    }

    #[test]
    fn the_apdu_names_the_exchange_and_the_side_that_sends_it() {
        let hit = |apdu: &str, service: &str| {
            (
                Status::Match,
                Some(apdu.to_owned()),
                Some(service.to_owned()),
            )
        };
        // ReadProperty (invoke id 1) of device,1001's object-name, expecting a reply (0x04).
        let read = unicast(
            0x04,
            &[],
            &[
                0x00, 0x05, 0x01, 0x0c, 0x0c, 0x02, 0x00, 0x03, 0xe9, 0x19, 0x4d,
            ],
        );
        assert_eq!(
            facts(&read, true),
            hit("confirmed-request", "read-property")
        );
        assert_eq!(facts(&read, false).0, Status::No);
        // Its ComplexACK, and a segmented one (sequence number and window before the service).
        let ack = unicast(0x00, &[], &[0x30, 0x01, 0x0c, 0x0c, 0x02, 0x00, 0x03, 0xe9]);
        assert_eq!(facts(&ack, false), hit("complex-ack", "read-property"));
        assert_eq!(facts(&ack, true).0, Status::No);
        let segmented = unicast(0x00, &[], &[0x3c, 0x01, 0x00, 0x04, 0x0e, 0x1e]);
        assert_eq!(
            facts(&segmented, false),
            hit("complex-ack", "read-property-multiple")
        );
        // A segmented WriteProperty request; a SimpleACK; an Error for ReadProperty.
        let write = unicast(0x04, &[], &[0x0a, 0x05, 0x02, 0x00, 0x04, 0x0f, 0x0c]);
        assert_eq!(
            facts(&write, true),
            hit("confirmed-request", "write-property")
        );
        let simple = unicast(0x00, &[], &[0x20, 0x02, 0x0f]);
        assert_eq!(facts(&simple, false), hit("simple-ack", "write-property"));
        let error = unicast(0x00, &[], &[0x50, 0x03, 0x0c, 0x91, 0x01, 0x91, 0x1f]);
        assert_eq!(facts(&error, false), hit("error", "read-property"));
        // I-Am through a router (source specifier SNET 5, SLEN 1, SADR 7): the device's.
        let i_am = unicast(
            0x08,
            &[0x00, 0x05, 0x01, 0x07],
            &[0x10, 0x00, 0xc4, 0x02, 0x00, 0x03, 0xe9],
        );
        assert_eq!(facts(&i_am, false), hit("unconfirmed-request", "i-am"));
        assert_eq!(facts(&i_am, true).0, Status::No);
        // Either side may send these: a time synchronization, an abort, a network message.
        let sync = unicast(0x00, &[], &[0x10, 0x06, 0xa4]);
        assert_eq!(
            facts(&sync, true),
            hit("unconfirmed-request", "time-synchronization")
        );
        assert_eq!(facts(&sync, false).0, Status::Match);
        let abort = unicast(0x00, &[], &[0x71, 0x01, 0x04]);
        assert_eq!(
            facts(&abort, true),
            (Status::Match, Some("abort".into()), None)
        );
        let who_is_router = unicast(0x80, &[], &[0x00]);
        assert_eq!(facts(&who_is_router, false), (Status::Match, None, None));
        // A specifier cut short leaves the APDU unread, not misread.
        let cut = unicast(0x20, &[0xff], &[]);
        assert_eq!(facts(&cut, true), (Status::Match, None, None));
    }
}
