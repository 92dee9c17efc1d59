//! Modbus/TCP: the MBAP header and the PDU's function code (Modbus Messaging on TCP/IP
//! Implementation Guide V1.0b, section 3.1.3; Modbus Application Protocol V1.1b3, sections 5-7).
//!
//! The MBAP header is a transaction id, a protocol id that must be 0, a length counting the unit
//! id and the PDU (2..=254: a PDU holds at most 253 bytes), and the unit id. The PDU starts with
//! a public function code, or in an answer that code plus 0x80 and an exception code.
//!
//! Meta, as Zeek's modbus.log names them: `modbus_unit`, `modbus_function` (the first ADU's
//! function, "read_holding_registers"...; the server's answer under `modbus_function_server`),
//! and `modbus_exception` when the server's first answer is an exception.
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] =
    &[Probe::single("modbus", probe).answers(answers!["modbus_function"])];

const MBAP: usize = 7;
const MAX_LENGTH: u16 = 254;
const EXCEPTION: u8 = 0x80;

/// The public function codes (Application Protocol V1.1b3, section 5.1).
fn function(code: u8) -> Option<&'static str> {
    Some(match code {
        1 => "read_coils",
        2 => "read_discrete_inputs",
        3 => "read_holding_registers",
        4 => "read_input_registers",
        5 => "write_single_coil",
        6 => "write_single_register",
        7 => "read_exception_status",
        8 => "diagnostics",
        11 => "get_comm_event_counter",
        12 => "get_comm_event_log",
        15 => "write_multiple_coils",
        16 => "write_multiple_registers",
        17 => "report_server_id",
        20 => "read_file_record",
        21 => "write_file_record",
        22 => "mask_write_register",
        23 => "read_write_multiple_registers",
        24 => "read_fifo_queue",
        43 => "encapsulated_interface_transport",
        _ => return None,
    })
}

/// The exception codes (section 7).
fn exception(code: u8) -> Option<&'static str> {
    Some(match code {
        1 => "illegal_function",
        2 => "illegal_data_address",
        3 => "illegal_data_value",
        4 => "server_device_failure",
        5 => "acknowledge",
        6 => "server_device_busy",
        8 => "memory_parity_error",
        10 => "gateway_path_unavailable",
        11 => "gateway_target_device_failed_to_respond",
        _ => return None,
    })
}

/// The first ADU of a stream: a client's request, or a server's answer (which alone may be an
/// exception). Done once that ADU is whole.
pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    let Some(&[_, _, p0, p1, l0, l1, unit, code]) = data.get(..MBAP + 1) else {
        return ProbeResult::more();
    };
    let length = u16::from_be_bytes([l0, l1]);
    if [p0, p1] != [0, 0] || !(2..=MAX_LENGTH).contains(&length) {
        return ProbeResult::no();
    }
    let mut meta = Meta::new();
    meta.insert("modbus_unit".into(), json!(unit));
    if code & EXCEPTION != 0 {
        // An exception answer is the function code, the flag and one exception code.
        let Some(name) = function(code & !EXCEPTION) else {
            return ProbeResult::no();
        };
        if from_client || length != 3 {
            return ProbeResult::no();
        }
        let Some(&why) = data.get(MBAP + 1) else {
            return ProbeResult::more();
        };
        let Some(why) = exception(why) else {
            return ProbeResult::no();
        };
        meta.insert("modbus_function".into(), json!(name));
        meta.insert("modbus_exception".into(), json!(why));
        return ProbeResult::hit_done(meta, true);
    }
    let Some(name) = function(code) else {
        return ProbeResult::no();
    };
    meta.insert("modbus_function".into(), json!(name));
    let whole = data.len() >= MBAP - 1 + usize::from(length);
    ProbeResult::hit_done(meta, whole)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::vectors::text;
    use crate::detect::probes::Status;
    use serde_json::Value;

    #[test]
    fn a_request_and_its_answer_name_the_function_and_the_unit() {
        // mbpoll reading four holding registers of unit 1 from pymodbus, and the answer.
        let request = [0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 4];
        let r = probe(&request, true);
        assert_eq!((r.status, r.done), (Status::Match, true));
        assert_eq!(
            text(&r, "modbus_function").as_deref(),
            Some("read_holding_registers")
        );
        assert_eq!(r.meta.get("modbus_unit").and_then(Value::as_u64), Some(1));
        let answer = [
            0, 1, 0, 0, 0, 11, 1, 3, 8, 3, 0xe9, 3, 0xea, 3, 0xeb, 3, 0xec,
        ];
        let r = probe(&answer, false);
        assert_eq!((r.status, r.done), (Status::Match, true));
        let cut = probe(&answer[..10], false);
        assert_eq!((cut.status, cut.done), (Status::Match, false));
    }

    #[test]
    fn an_exception_answer_names_its_reason() {
        let answer = [0, 1, 0, 0, 0, 3, 1, 0x83, 2];
        let r = probe(&answer, false);
        assert_eq!(r.status, Status::Match);
        assert_eq!(
            text(&r, "modbus_exception").as_deref(),
            Some("illegal_data_address")
        );
        assert_eq!(
            text(&r, "modbus_function").as_deref(),
            Some("read_holding_registers")
        );
        // A client never sends one; an unknown reason or a longer PDU is not one.
        assert_eq!(probe(&answer, true).status, Status::No);
        assert_eq!(
            probe(&[0, 1, 0, 0, 0, 3, 1, 0x83, 9], false).status,
            Status::No
        );
        assert_eq!(
            probe(&[0, 1, 0, 0, 0, 4, 1, 0x83, 2, 0], false).status,
            Status::No
        );
        assert_eq!(probe(&answer[..8], false).status, Status::More);
    }

    #[test]
    fn another_protocol_id_length_or_function_is_not_modbus() {
        assert_eq!(
            probe(&[0, 1, 0, 1, 0, 6, 1, 3, 0, 0, 0, 4], true).status,
            Status::No
        );
        assert_eq!(
            probe(&[0, 1, 0, 0, 1, 0, 1, 3, 0, 0, 0, 4], true).status,
            Status::No
        );
        assert_eq!(probe(&[0, 1, 0, 0, 0, 1, 1, 3], true).status, Status::No);
        assert_eq!(
            probe(&[0, 1, 0, 0, 0, 6, 1, 9, 0, 0, 0, 4], true).status,
            Status::No
        );
        assert_eq!(probe(b"GET / HT", true).status, Status::No);
        assert_eq!(probe(&[0, 1, 0, 0], true).status, Status::More);
    }

    #[test]
    fn hostile_shapes_stay_in_bounds() {
        let mut adu = vec![0xff, 0xff, 0, 0, 0, 0xfe, 0xff, 16];
        adu.extend([0xff; 300]);
        for cut in 0..adu.len() {
            let _ = probe(&adu[..cut], true);
            let _ = probe(&adu[..cut], false);
        }
        assert!(probe(&adu, true).done);
    }

    #[test]
    fn no_panic_on_hostile_shapes() {
        crate::detect::probes::vectors::never_panics("modbus");
    }
}
