//! A classic BPF interpreter: the capture filter (`portwatch analyze -f EXPR`) run on a file's
//! frames exactly as the kernel runs it on a live socket, or libpcap's `bpf_filter` on a
//! savefile, before anything is decoded.
//!
//! Programs are compiled from pcap-filter(7) text by libpcap in Python (`portwatch/bpf.py`:
//! `tcpdump -y DLT -dd`), one per link type, and checked here before use as the kernel checks a
//! program at SO_ATTACH_FILTER (`Program::new`): at most `MAX_INSNS` instructions, known opcodes,
//! jumps forward and inside the program (so every run ends within `len` steps), scratch memory
//! indices below `MEM_WORDS`, no division by a constant zero, a return at the end.
//!
//! Running is libpcap's `bpf_filter` (pcap-filter semantics): a load past the captured bytes
//! rejects the packet (returns 0), division by a zero X rejects it, `len` is the length on the
//! wire (the record's original length), not the captured one. The ancillary loads of Linux
//! (SKF_AD_*, offsets from 0xfffff000) are out of any frame's bounds here and so reject, as they
//! would in libpcap's interpreter.
#![forbid(unsafe_code)]

use hashbrown::HashMap;

/// The kernel's (and libpcap's) BPF_MAXINSNS.
pub const MAX_INSNS: usize = 4096;
/// Scratch memory words (BPF_MEMWORDS).
pub const MEM_WORDS: usize = 16;

// Instruction classes, sizes, modes, operations and sources (linux/filter.h, pcap/bpf.h).
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;

const W: u16 = 0x00;
const H: u16 = 0x08;
const B: u16 = 0x10;

const IMM: u16 = 0x00;
const ABS: u16 = 0x20;
const IND: u16 = 0x40;
const MEM: u16 = 0x60;
const LEN: u16 = 0x80;
const MSH: u16 = 0xa0;

const ADD: u16 = 0x00;
const SUB: u16 = 0x10;
const MUL: u16 = 0x20;
const DIV: u16 = 0x30;
const OR: u16 = 0x40;
const AND: u16 = 0x50;
const LSH: u16 = 0x60;
const RSH: u16 = 0x70;
const NEG: u16 = 0x80;
const MOD: u16 = 0x90;
const XOR: u16 = 0xa0;

const JA: u16 = 0x00;
const JEQ: u16 = 0x10;
const JGT: u16 = 0x20;
const JGE: u16 = 0x30;
const JSET: u16 = 0x40;

const K: u16 = 0x00;
const X: u16 = 0x08;
const RET_A: u16 = 0x10;

const TAX: u16 = 0x00;
const TXA: u16 = 0x80;

/// One instruction, as `struct sock_filter` / `struct bpf_insn` and `tcpdump -dd` print it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpfError(pub String);

impl std::fmt::Display for BpfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BpfError {}

/// A checked program: every run terminates and never indexes out of its tables.
#[derive(Debug, Clone)]
pub struct Program {
    insns: Vec<Insn>,
}

fn opcode_ok(code: u16, k: u32) -> Result<(), String> {
    let ok = match code & 0x07 {
        LD => matches!(
            code & !0x07,
            c if c == W | IMM
                || c == W | ABS || c == H | ABS || c == B | ABS
                || c == W | IND || c == H | IND || c == B | IND
                || c == W | MEM || c == W | LEN
        ),
        LDX => {
            matches!(code & !0x07, c if c == W | IMM || c == W | MEM || c == W | LEN || c == B | MSH)
        }
        ST | STX => code & !0x07 == 0,
        ALU => {
            let op = code & 0xf0;
            let src_ok = code & !0xff == 0;
            let known = matches!(
                op,
                ADD | SUB | MUL | DIV | OR | AND | LSH | RSH | NEG | MOD | XOR
            );
            if known && src_ok && code & X == K {
                if matches!(op, DIV | MOD) && k == 0 {
                    return Err("division by a constant zero".into());
                }
                if matches!(op, LSH | RSH) && k >= 32 {
                    return Err(format!("shift by {k}"));
                }
            }
            known && src_ok && !(op == NEG && code & X != 0)
        }
        JMP => {
            matches!(code & 0xf0, JA | JEQ | JGT | JGE | JSET)
                && code & !0xff == 0
                && !(code & 0xf0 == JA && code & X != 0)
        }
        RET => matches!(code & !0x07, c if c == K || c == RET_A),
        MISC => matches!(code & !0x07, TAX | TXA),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("unknown opcode {code:#06x}"))
    }
}

/// Jumps stay inside the program and go forward; scratch memory indices exist.
fn operands_ok(i: &Insn, left: usize) -> Result<(), String> {
    let class = i.code & 0x07;
    let uses_mem = matches!(class, ST | STX) || (matches!(class, LD | LDX) && i.code & 0xe0 == MEM);
    if uses_mem && i.k as usize >= MEM_WORDS {
        return Err(format!("scratch memory index {}", i.k));
    }
    if class != JMP {
        return Ok(());
    }
    let inside = if i.code & 0xf0 == JA {
        usize::try_from(i.k).is_ok_and(|k| k < left)
    } else {
        usize::from(i.jt) < left && usize::from(i.jf) < left
    };
    if inside {
        Ok(())
    } else {
        Err(format!(
            "jump past the end (jt {}, jf {}, k {})",
            i.jt, i.jf, i.k
        ))
    }
}

impl Program {
    /// Check `insns` as the kernel does before attaching them.
    pub fn new(insns: Vec<Insn>) -> Result<Self, BpfError> {
        let n = insns.len();
        if n == 0 || n > MAX_INSNS {
            return Err(BpfError(format!(
                "a BPF program has 1 to {MAX_INSNS} instructions, not {n}"
            )));
        }
        for (pc, i) in insns.iter().enumerate() {
            let bad = |why: String| BpfError(format!("BPF instruction {pc}: {why}"));
            opcode_ok(i.code, i.k).map_err(bad)?;
            // Instructions left after this one: a jump may skip at most that many.
            operands_ok(i, n - pc - 1).map_err(bad)?;
        }
        if insns.last().map(|i| i.code & 0x07) != Some(RET) {
            return Err(BpfError("a BPF program ends with a return".into()));
        }
        Ok(Program { insns })
    }

    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// The program's verdict on a frame: the bytes to keep, 0 to drop it. `pkt`: the captured
    /// bytes; `wire_len`: the frame's length on the wire (BPF's `len`).
    pub fn run(&self, pkt: &[u8], wire_len: u32) -> u32 {
        let mut a: u32 = 0;
        let mut x: u32 = 0;
        let mut mem = [0u32; MEM_WORDS];
        let mut pc = 0usize;
        // Jumps only go forward (checked in `new`): at most `len` steps; the bound is explicit.
        for _ in 0..self.insns.len() {
            let Some(&i) = self.insns.get(pc) else {
                return 0;
            };
            pc += 1;
            let k = i.k;
            match i.code & 0x07 {
                RET => return if i.code & RET_A != 0 { a } else { k },
                LD => {
                    a = match i.code & 0xe0 {
                        IMM => k,
                        LEN => wire_len,
                        MEM => mem.get(k as usize).copied().unwrap_or(0),
                        ABS => match load(pkt, k as usize, i.code & 0x18) {
                            Some(v) => v,
                            None => return 0,
                        },
                        IND => {
                            // libpcap: k + X must not wrap around.
                            let Some(at) = x.checked_add(k) else {
                                return 0;
                            };
                            match load(pkt, at as usize, i.code & 0x18) {
                                Some(v) => v,
                                None => return 0,
                            }
                        }
                        _ => return 0,
                    }
                }
                LDX => {
                    x = match i.code & 0xe0 {
                        IMM => k,
                        LEN => wire_len,
                        MEM => mem.get(k as usize).copied().unwrap_or(0),
                        MSH => match pkt.get(k as usize) {
                            Some(b) => u32::from(b & 0x0f) << 2,
                            None => return 0,
                        },
                        _ => return 0,
                    }
                }
                ST => {
                    if let Some(m) = mem.get_mut(k as usize) {
                        *m = a;
                    }
                }
                STX => {
                    if let Some(m) = mem.get_mut(k as usize) {
                        *m = x;
                    }
                }
                ALU => {
                    let v = if i.code & X != 0 { x } else { k };
                    a = match i.code & 0xf0 {
                        ADD => a.wrapping_add(v),
                        SUB => a.wrapping_sub(v),
                        MUL => a.wrapping_mul(v),
                        DIV => match a.checked_div(v) {
                            Some(q) => q,
                            None => return 0,
                        },
                        MOD => match a.checked_rem(v) {
                            Some(r) => r,
                            None => return 0,
                        },
                        OR => a | v,
                        AND => a & v,
                        XOR => a ^ v,
                        // libpcap: a shift by 32 or more gives 0.
                        LSH => a.checked_shl(v).unwrap_or(0),
                        RSH => a.checked_shr(v).unwrap_or(0),
                        NEG => a.wrapping_neg(),
                        _ => return 0,
                    }
                }
                JMP => {
                    let v = if i.code & X != 0 { x } else { k };
                    let skip = match i.code & 0xf0 {
                        JA => k as usize,
                        op => {
                            let taken = match op {
                                JEQ => a == v,
                                JGT => a > v,
                                JGE => a >= v,
                                JSET => a & v != 0,
                                _ => return 0,
                            };
                            usize::from(if taken { i.jt } else { i.jf })
                        }
                    };
                    pc = pc.saturating_add(skip);
                }
                MISC => {
                    if i.code & 0xf8 == TXA {
                        a = x;
                    } else {
                        x = a;
                    }
                }
                _ => return 0,
            }
        }
        0
    }
}

/// A big-endian word, half-word or byte at `at`; None past the captured bytes.
fn load(pkt: &[u8], at: usize, size: u16) -> Option<u32> {
    let n = match size {
        W => 4,
        H => 2,
        B => 1,
        _ => return None,
    };
    let bytes = pkt.get(at..at.checked_add(n)?)?;
    Some(bytes.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}

/// A capture filter: one program per link type, each compiled from the same expression.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// None: the expression does not apply to this link type (`vlan` on raw IP), so it matches
    /// none of its frames.
    programs: HashMap<u32, Option<Program>>,
}

impl Filter {
    pub fn new(programs: HashMap<u32, Option<Program>>) -> Self {
        Filter { programs }
    }

    /// Keep this frame? A link type the filter was not compiled for at all (one the decoder
    /// cannot read either) passes, to be counted as unsupported as without a filter.
    pub fn matches(&self, linktype: u32, frame: &[u8], wire_len: u32) -> bool {
        match self.programs.get(&linktype) {
            None => true,
            Some(None) => false,
            Some(Some(p)) => p.run(frame, wire_len) != 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }

    fn prog(insns: &[Insn]) -> Program {
        Program::new(insns.to_vec()).expect("valid program")
    }

    /// Run `body` then return A.
    fn a_after(body: &[Insn], pkt: &[u8], wire: u32) -> u32 {
        let mut v = body.to_vec();
        v.push(i(RET | RET_A, 0, 0, 0));
        prog(&v).run(pkt, wire)
    }

    const PKT: &[u8] = &[0x45, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07];

    #[test]
    fn ret_k_and_ret_a() {
        assert_eq!(prog(&[i(RET | K, 0, 0, 96)]).run(b"", 0), 96);
        assert_eq!(prog(&[i(RET | K, 0, 0, 0)]).run(PKT, 8), 0);
        assert_eq!(a_after(&[i(LD | W | IMM, 0, 0, 7)], b"", 0), 7);
    }

    #[test]
    fn absolute_loads_are_big_endian_and_bounded() {
        assert_eq!(a_after(&[i(LD | B | ABS, 0, 0, 0)], PKT, 8), 0x45);
        assert_eq!(a_after(&[i(LD | H | ABS, 0, 0, 1)], PKT, 8), 0x0102);
        assert_eq!(a_after(&[i(LD | W | ABS, 0, 0, 4)], PKT, 8), 0x0405_0607);
        // Past the captured bytes: rejected, even when the wire length covers the offset.
        assert_eq!(a_after(&[i(LD | W | ABS, 0, 0, 5)], PKT, 1500), 0);
        assert_eq!(a_after(&[i(LD | H | ABS, 0, 0, 7)], PKT, 1500), 0);
        assert_eq!(a_after(&[i(LD | B | ABS, 0, 0, 8)], PKT, 1500), 0);
        assert_eq!(a_after(&[i(LD | W | ABS, 0, 0, u32::MAX)], PKT, 8), 0);
        // Linux's ancillary offsets are just out of bounds here.
        assert_eq!(a_after(&[i(LD | W | ABS, 0, 0, 0xffff_f000)], PKT, 8), 0);
    }

    #[test]
    fn indirect_loads_add_x_and_never_wrap() {
        let x2 = i(LDX | W | IMM, 0, 0, 2);
        assert_eq!(a_after(&[x2, i(LD | B | IND, 0, 0, 1)], PKT, 8), 0x03);
        assert_eq!(a_after(&[x2, i(LD | H | IND, 0, 0, 2)], PKT, 8), 0x0405);
        assert_eq!(
            a_after(&[x2, i(LD | W | IND, 0, 0, 2)], PKT, 8),
            0x0405_0607
        );
        assert_eq!(a_after(&[x2, i(LD | W | IND, 0, 0, 3)], PKT, 8), 0);
        let xmax = i(LDX | W | IMM, 0, 0, u32::MAX);
        assert_eq!(a_after(&[xmax, i(LD | B | IND, 0, 0, 1)], PKT, 8), 0);
    }

    #[test]
    fn len_is_the_wire_length() {
        assert_eq!(a_after(&[i(LD | W | LEN, 0, 0, 0)], PKT, 1514), 1514);
        assert_eq!(
            a_after(
                &[i(LDX | W | LEN, 0, 0, 0), i(MISC | TXA, 0, 0, 0)],
                PKT,
                60
            ),
            60
        );
    }

    #[test]
    fn msh_is_the_ip_header_length() {
        let p = [i(LDX | B | MSH, 0, 0, 0), i(MISC | TXA, 0, 0, 0)];
        assert_eq!(a_after(&p, PKT, 8), 20);
        assert_eq!(a_after(&[i(LDX | B | MSH, 0, 0, 8)], PKT, 8), 0);
    }

    #[test]
    fn scratch_memory_st_stx_ld_ldx() {
        let p = [
            i(LD | W | IMM, 0, 0, 11),
            i(ST, 0, 0, 3),
            i(LDX | W | IMM, 0, 0, 5),
            i(STX, 0, 0, 15),
            i(LD | W | MEM, 0, 0, 15),
            i(LDX | W | MEM, 0, 0, 3),
            i(ALU | ADD | X, 0, 0, 0),
        ];
        assert_eq!(a_after(&p, b"", 0), 16);
        assert!(Program::new(vec![i(ST, 0, 0, 16), i(RET | K, 0, 0, 1)]).is_err());
        assert!(Program::new(vec![i(LD | W | MEM, 0, 0, 99), i(RET | K, 0, 0, 1)]).is_err());
    }

    #[test]
    fn alu_operations_with_k_and_x() {
        let a = |v: u32| i(LD | W | IMM, 0, 0, v);
        let xv = |v: u32| i(LDX | W | IMM, 0, 0, v);
        let cases: &[(u16, u32, u32, u32)] = &[
            (ADD, 7, 5, 12),
            (ADD, u32::MAX, 2, 1),
            (SUB, 5, 7, u32::MAX - 1),
            (MUL, 6, 7, 42),
            (DIV, 43, 7, 6),
            (MOD, 43, 7, 1),
            (OR, 0xf0, 0x0f, 0xff),
            (AND, 0xf0, 0x3c, 0x30),
            (XOR, 0xff, 0x0f, 0xf0),
            (LSH, 1, 4, 16),
            (RSH, 0x80, 4, 8),
        ];
        for &(op, av, v, want) in cases {
            assert_eq!(
                a_after(&[a(av), i(ALU | op | K, 0, 0, v)], b"", 0),
                want,
                "{op:#x} K"
            );
            assert_eq!(
                a_after(&[a(av), xv(v), i(ALU | op | X, 0, 0, 0)], b"", 0),
                want,
                "{op:#x} X"
            );
        }
        assert_eq!(
            a_after(&[a(5), i(ALU | NEG, 0, 0, 0)], b"", 0),
            5u32.wrapping_neg()
        );
        // Shifts by X of 32 or more give 0 (libpcap).
        assert_eq!(
            a_after(&[a(1), xv(32), i(ALU | LSH | X, 0, 0, 0)], b"", 0),
            0
        );
        assert_eq!(
            a_after(&[a(1), xv(40), i(ALU | RSH | X, 0, 0, 0)], b"", 0),
            0
        );
    }

    #[test]
    fn division_by_zero_rejects() {
        // By X at run time: the packet is rejected.
        let p = [
            i(LD | W | IMM, 0, 0, 9),
            i(LDX | W | IMM, 0, 0, 0),
            i(ALU | DIV | X, 0, 0, 0),
            i(RET | K, 0, 0, 1),
        ];
        assert_eq!(prog(&p).run(b"", 0), 0);
        let m = [
            i(LDX | W | IMM, 0, 0, 0),
            i(ALU | MOD | X, 0, 0, 0),
            i(RET | K, 0, 0, 1),
        ];
        assert_eq!(prog(&m).run(b"", 0), 0);
        // By a constant: the program is refused.
        for op in [DIV, MOD] {
            let bad = vec![i(ALU | op | K, 0, 0, 0), i(RET | K, 0, 0, 1)];
            assert!(Program::new(bad).is_err());
        }
        assert!(Program::new(vec![i(ALU | LSH | K, 0, 0, 32), i(RET | K, 0, 0, 1)]).is_err());
    }

    #[test]
    fn conditional_jumps_with_k_and_x() {
        // A op v ? ret 1 : ret 2
        let run = |op: u16, src: u16, av: u32, v: u32| {
            prog(&[
                i(LD | W | IMM, 0, 0, av),
                i(LDX | W | IMM, 0, 0, v),
                i(JMP | op | src, 0, 1, v),
                i(RET | K, 0, 0, 1),
                i(RET | K, 0, 0, 2),
            ])
            .run(b"", 0)
        };
        for src in [K, X] {
            assert_eq!(run(JEQ, src, 3, 3), 1);
            assert_eq!(run(JEQ, src, 3, 4), 2);
            assert_eq!(run(JGT, src, 4, 3), 1);
            assert_eq!(run(JGT, src, 3, 3), 2);
            assert_eq!(run(JGE, src, 3, 3), 1);
            assert_eq!(run(JGE, src, 2, 3), 2);
            assert_eq!(run(JSET, src, 6, 2), 1);
            assert_eq!(run(JSET, src, 6, 1), 2);
        }
    }

    #[test]
    fn ja_jumps_forward() {
        let p = [
            i(JMP | JA, 0, 0, 1),
            i(RET | K, 0, 0, 1),
            i(RET | K, 0, 0, 2),
        ];
        assert_eq!(prog(&p).run(b"", 0), 2);
    }

    #[test]
    fn tax_txa() {
        let p = [
            i(LD | W | IMM, 0, 0, 9),
            i(MISC | TAX, 0, 0, 0),
            i(LD | W | IMM, 0, 0, 1),
            i(MISC | TXA, 0, 0, 0),
        ];
        assert_eq!(a_after(&p, b"", 0), 9);
    }

    #[test]
    fn unsound_programs_are_refused() {
        assert!(Program::new(vec![]).is_err());
        assert!(Program::new(vec![i(RET | K, 0, 0, 1); MAX_INSNS + 1]).is_err());
        assert!(Program::new(vec![i(RET | K, 0, 0, 1); MAX_INSNS]).is_ok());
        // A jump past the end, conditional or not; no return at the end; unknown opcodes.
        assert!(Program::new(vec![i(JMP | JA, 0, 0, 1), i(RET | K, 0, 0, 1)]).is_err());
        assert!(Program::new(vec![i(JMP | JA, 0, 0, u32::MAX), i(RET | K, 0, 0, 1)]).is_err());
        assert!(Program::new(vec![i(JMP | JEQ, 1, 0, 0), i(RET | K, 0, 0, 1)]).is_err());
        assert!(Program::new(vec![i(JMP | JEQ, 0, 1, 0), i(RET | K, 0, 0, 1)]).is_err());
        assert!(Program::new(vec![i(LD | W | IMM, 0, 0, 1)]).is_err());
        for code in [
            0x0008u16, 0x00e0, 0x0058, 0x00c4, 0x0055, 0x0088, 0x0047, 0x0009, 0xff06, 0x000e,
        ] {
            assert!(
                Program::new(vec![i(code, 0, 0, 1), i(RET | K, 0, 0, 1)]).is_err(),
                "{code:#x}"
            );
        }
    }

    #[test]
    fn tcpdump_program_for_tcp_port_443() {
        // `tcpdump -y EN10MB -dd 'tcp port 443'` (libpcap 1.10), IPv4 part kept.
        let raw: &[(u16, u8, u8, u32)] = &[
            (0x28, 0, 0, 0x0000000c),
            (0x15, 0, 10, 0x00000800),
            (0x30, 0, 0, 0x00000017),
            (0x15, 0, 8, 0x00000006),
            (0x28, 0, 0, 0x00000014),
            (0x45, 6, 0, 0x00001fff),
            (0xb1, 0, 0, 0x0000000e),
            (0x48, 0, 0, 0x0000000e),
            (0x15, 2, 0, 0x000001bb),
            (0x48, 0, 0, 0x00000010),
            (0x15, 0, 1, 0x000001bb),
            (0x6, 0, 0, 0x00040000),
            (0x6, 0, 0, 0x00000000),
        ];
        let p = prog(
            &raw.iter()
                .map(|&(c, t, f, k)| i(c, t, f, k))
                .collect::<Vec<_>>(),
        );
        let mut frame = vec![0u8; 54];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        frame[14] = 0x45;
        frame[23] = 6;
        frame[34..36].copy_from_slice(&50000u16.to_be_bytes());
        frame[36..38].copy_from_slice(&443u16.to_be_bytes());
        assert_eq!(p.run(&frame, 54), 0x40000);
        frame[36..38].copy_from_slice(&80u16.to_be_bytes());
        assert_eq!(p.run(&frame, 54), 0);
        // Cut before the ports: a load out of bounds rejects.
        frame[36..38].copy_from_slice(&443u16.to_be_bytes());
        assert_eq!(p.run(&frame[..36], 54), 0);
        // A later fragment (offset != 0) never matches a port.
        frame[20] = 0x00;
        frame[21] = 0x10;
        assert_eq!(p.run(&frame, 54), 0);
    }

    #[test]
    fn filter_by_link_type() {
        let mut m = HashMap::new();
        m.insert(1u32, Some(prog(&[i(RET | K, 0, 0, 1)])));
        m.insert(101u32, None);
        let f = Filter::new(m);
        assert!(f.matches(1, b"", 0));
        assert!(!f.matches(101, b"\x45", 1));
        // A link type outside the filter's: passed on (the decoder counts it unsupported).
        assert!(f.matches(147, b"", 0));
    }

    #[test]
    fn never_panics_on_any_program_shape() {
        // Every opcode byte with a few operands, over short frames: run must not panic.
        for code in 0u16..=0xff {
            for k in [0u32, 1, 3, 15, 16, 31, 32, 0xffff_f000, u32::MAX] {
                let insns = vec![
                    i(LDX | W | IMM, 0, 0, k),
                    i(code, 0, 0, k),
                    i(RET | RET_A, 0, 0, 0),
                ];
                if let Ok(p) = Program::new(insns) {
                    for len in 0..6 {
                        let _ = p.run(&PKT[..len], u32::MAX);
                    }
                }
            }
        }
    }
}
