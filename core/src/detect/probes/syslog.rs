//! Syslog: the PRI part of the first message (RFC 5424 6.2.1, RFC 3164 4.1.1), over UDP or TCP.
//!
//! Over TCP a message may be octet-counted, `MSG-LEN SP` ahead of it (RFC 6587 3.4.1), or end
//! with a line feed (3.4.2). `<PRI>` is 1-3 digits, facility * 8 + severity, at most 191. An RFC
//! 5424 message follows it with its version, `1`, then the timestamp, hostname and app-name.
//!
//! Meta, as Zeek's syslog.log has them: `syslog_facility` ("auth", "daemon", "local0"...),
//! `syslog_severity` ("err", "notice"...), `syslog_format` ("rfc5424" or "rfc3164"),
//! `syslog_framing` ("octet-counting" when a length leads), and for RFC 5424 `syslog_hostname`
//! and `syslog_app` unless nil (`-`). The message itself is never kept.
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};
use crate::text::clean_text;

pub static PROBES: &[Probe] = &[Probe::single("syslog", probe)];

const MAX_PRI: u16 = 191;
/// RFC 5424 6: HOSTNAME is at most 255 printable characters, APP-NAME 48.
const MAX_HOSTNAME: usize = 255;
const MAX_APP: usize = 48;
/// RFC 6587 3.4.1: MSG-LEN is a nonzero decimal; more than this many digits is no length.
const MAX_LEN_DIGITS: usize = 6;

const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];
const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// The decimal at the start of `data` (at most `max` digits) and the bytes after it.
fn digits(data: &[u8], max: usize) -> Option<(u32, &[u8])> {
    let n = data
        .iter()
        .take(max + 1)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if n == 0 || n > max {
        return None;
    }
    let value = data[..n]
        .iter()
        .fold(0u32, |v, &b| v * 10 + u32::from(b - b'0'));
    Some((value, &data[n..]))
}

/// The next space-separated field of an RFC 5424 header, and what follows its space.
fn field(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = data.iter().position(|&b| b == b' ')?;
    Some((&data[..end], &data[end + 1..]))
}

pub fn probe(data: &[u8], _from_client: bool) -> ProbeResult {
    let (framing, rest) = match digits(data, MAX_LEN_DIGITS) {
        Some((len, [b' ', rest @ ..])) if len > 0 => (Some("octet-counting"), rest),
        _ => (None, data),
    };
    let Some(rest) = rest.strip_prefix(b"<") else {
        return if rest.is_empty() {
            ProbeResult::more()
        } else {
            ProbeResult::no()
        };
    };
    let Some((pri, [b'>', after @ ..])) = digits(rest, 3) else {
        return ProbeResult::no();
    };
    let Ok(pri) = u16::try_from(pri) else {
        return ProbeResult::no();
    };
    if pri > MAX_PRI || (rest[0] == b'0' && pri != 0) {
        return ProbeResult::no();
    }
    let mut meta = Meta::new();
    meta.insert(
        "syslog_facility".into(),
        json!(FACILITIES[usize::from(pri / 8)]),
    );
    meta.insert(
        "syslog_severity".into(),
        json!(SEVERITIES[usize::from(pri % 8)]),
    );
    if let Some(framing) = framing {
        meta.insert("syslog_framing".into(), json!(framing));
    }
    let Some(header) = after.strip_prefix(b"1 ") else {
        meta.insert("syslog_format".into(), json!("rfc3164"));
        return ProbeResult::hit_done(meta, true);
    };
    meta.insert("syslog_format".into(), json!("rfc5424"));
    // TIMESTAMP SP HOSTNAME SP APP-NAME SP
    let facts = field(header)
        .and_then(|(_time, r)| field(r))
        .and_then(|(host, r)| {
            let (app, _) = field(r)?;
            Some((host, app))
        });
    if let Some((host, app)) = facts {
        for (key, value, max) in [
            ("syslog_hostname", host, MAX_HOSTNAME),
            ("syslog_app", app, MAX_APP),
        ] {
            if value != b"-" && !value.is_empty() && value.len() <= max {
                meta.insert(key.into(), json!(clean_text(value, max)));
            }
        }
    }
    ProbeResult::hit_done(meta, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::vectors::text;
    use crate::detect::probes::Status;

    #[test]
    fn an_rfc3164_message_gives_facility_and_severity() {
        // logger --rfc3164 -p auth.notice: PRI 37
        let r = probe(b"<37>Dec  5 12:46:01 pwcli portwatch: test message\n", true);
        assert_eq!((r.status, r.done), (Status::Match, true));
        assert_eq!(text(&r, "syslog_facility").as_deref(), Some("auth"));
        assert_eq!(text(&r, "syslog_severity").as_deref(), Some("notice"));
        assert_eq!(text(&r, "syslog_format").as_deref(), Some("rfc3164"));
        assert!(!r.meta.contains_key("syslog_framing"));
    }

    #[test]
    fn an_octet_counted_rfc5424_message_names_host_and_app() {
        let msg = b"130 <28>1 2026-12-05T12:46:01.5+00:00 pwcli portwatch - - [timeQuality tzKnown=\"1\"] test";
        let r = probe(msg, true);
        assert_eq!(text(&r, "syslog_facility").as_deref(), Some("daemon"));
        assert_eq!(text(&r, "syslog_severity").as_deref(), Some("warning"));
        assert_eq!(text(&r, "syslog_format").as_deref(), Some("rfc5424"));
        assert_eq!(
            text(&r, "syslog_framing").as_deref(),
            Some("octet-counting")
        );
        assert_eq!(text(&r, "syslog_hostname").as_deref(), Some("pwcli"));
        assert_eq!(text(&r, "syslog_app").as_deref(), Some("portwatch"));
        // Nil fields are left out.
        let nil = probe(b"<14>1 - - - - - - hello", true);
        assert!(!nil.meta.contains_key("syslog_hostname") && !nil.meta.contains_key("syslog_app"));
    }

    #[test]
    fn a_pri_out_of_range_or_padded_is_not_syslog() {
        for bad in [
            &b"<192>x"[..],
            b"<012>x",
            b"<>x",
            b"<1234>x",
            b"GET / HTTP/1.1",
            b"0 <13>x",
        ] {
            assert_eq!(probe(bad, true).status, Status::No, "{bad:?}");
        }
        assert_eq!(probe(b"<0>x", true).status, Status::Match);
        assert_eq!(probe(b"", true).status, Status::More);
    }

    #[test]
    fn no_panic_on_hostile_shapes() {
        crate::detect::probes::vectors::never_panics("syslog");
    }
}
