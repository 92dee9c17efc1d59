//! Target `bpf`: the capture filter's checker and interpreter (`bpf::Program`), which runs a
//! program on every frame of a file read with `-f`: the program comes from libpcap, the frames
//! from whoever made the capture.
//!
//! Input: `[count][wire_len u16 BE][insn * count][frame]`, each instruction 8 bytes as in
//! `struct sock_filter` (code u16 BE, jt, jf, k u32 BE), at most 64 of them. Checked, beyond
//! "no panic" (overflow checks are on in fuzz builds): a refused program's reason is one line; an
//! accepted one gives the same answer twice, the same through a `Filter` of its link type, and
//! nothing (0) for a frame it could not read a byte of, when it reads the frame at all.
use _core::bpf::{Filter, Insn, Program};
use hashbrown::HashMap;

const MAX_INSNS: usize = 64;
const LINKTYPE: u32 = 1;

fn insn(b: &[u8]) -> Insn {
    Insn {
        code: u16::from_be_bytes([b[0], b[1]]),
        jt: b[2],
        jf: b[3],
        k: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
    }
}

pub fn run(data: &[u8]) {
    let [count, w0, w1, rest @ ..] = data else {
        return;
    };
    let count = usize::from(*count).min(MAX_INSNS).min(rest.len() / 8);
    let (code, frame) = rest.split_at(count * 8);
    let insns: Vec<Insn> = code.chunks_exact(8).map(insn).collect();
    let wire_len = u32::from(u16::from_be_bytes([*w0, *w1]));
    let program = match Program::new(insns) {
        Ok(p) => p,
        Err(e) => {
            assert!(!e.0.is_empty() && !e.0.contains('\n'), "reason: {e:?}");
            return;
        }
    };
    let answer = program.run(frame, wire_len);
    assert_eq!(program.run(frame, wire_len), answer, "not deterministic");
    let filter = Filter::new(HashMap::from([(LINKTYPE, Some(program.clone()))]));
    assert_eq!(filter.matches(LINKTYPE, frame, wire_len), answer != 0);
    // Another link type the filter was compiled for, to nothing: no frame passes; one it does
    // not know at all: every frame passes (the decoder counts it unsupported).
    let none = Filter::new(HashMap::from([(LINKTYPE, None)]));
    assert!(!none.matches(LINKTYPE, frame, wire_len));
    assert!(filter.matches(LINKTYPE + 1, frame, wire_len));
    // With no bytes captured, every load from the frame rejects: the answer can only come from
    // constants, the length and scratch memory, so a frame's bytes never matter to it.
    let empty = program.run(&[], wire_len);
    if empty != 0 {
        assert_eq!(
            program.run(&[0xa5; 64], wire_len),
            empty,
            "a program that reads no byte of an empty frame read one of another"
        );
    }
}
