//! Disassembler printing the kernel verifier's syntax.
//!
//! The text follows `print_bpf_insn()` of kernel/bpf/disasm.c (as of Linux 6.18):
//! `r1 = *(u64 *)(r6 +104)`, `if r0 == 0x0 goto pc+5`, `call bpf_ktime_get_ns#5`,
//! with C's `%+d`, `%d` and `0x%x` formatting. [`verifier_line`] returns a line
//! exactly as disasm.c formats it, including the `(code) ` prefix;
//! [`disasm_insn`] and [`disasm`] drop that prefix.
//!
//! Deliberate differences from disasm.c, all in places the verifier's own log
//! cannot help a reader of an unloaded program:
//! - `ld_imm64` with a map pseudo source prints the map reference
//!   (`r1 = map[fd:4]`, `map[fd:4][0]+16`, `map[idx:0]`, `map[idx:0][0]+16`,
//!   modelled on bpftool's `map[id:N]`). The verifier prints the kernel address the
//!   fd was replaced with, or `0x0` when pointers must not leak.
//! - A helper id [`Helper`] does not know prints as `unknown#id`; the kernel knows
//!   every helper of its version.
//! - An `ld_imm64` without its second slot (only possible in a hand-made slice;
//!   [`super::decode`] rejects it) prints its low half followed by
//!   `<truncated ld_imm64>`. The verifier rejects such a program before printing.
//! - The high-half multiply variants of `BPF_MUL` (not in a released UAPI header
//!   yet) print as a plain `*=`.
//!
//! Where disasm.c passes a missing table entry to `%s`, the kernel's printf prints
//! `(null)`; so does this module.

use super::helper::Helper;
use super::insn::{Insn, Size};
use super::opcode::*;

/// The text disasm.c prints for a NULL string argument.
const NULL: &str = "(null)";

/// One line per instruction, without the `(code) ` prefix; an `ld_imm64` gives
/// one line for its two slots.
pub fn disasm(insns: &[Insn]) -> Vec<String> {
    slots(insns).into_iter().map(|(slot, _)| disasm_insn(&insns[slot], insns.get(slot + 1))).collect()
}

/// The verifier text of one instruction without the `(code) ` prefix, e.g.
/// `r1 = *(u64 *)(r6 +104)`. `next` is the following slot, read by `ld_imm64`.
pub fn disasm_insn(insn: &Insn, next: Option<&Insn>) -> String {
    let line = verifier_line(insn, next);
    let prefix = format!("({:02x}) ", insn.code);
    match line.strip_prefix(&prefix) {
        Some(text) => text.to_string(),
        None => line,
    }
}

/// The line disasm.c's `print_bpf_insn()` prints for this instruction, prefix
/// included (`(79) r1 = *(u64 *)(r6 +104)`), without the trailing newline.
pub fn verifier_line(insn: &Insn, next: Option<&Insn>) -> String {
    match insn.code & CLASS_MASK {
        BPF_ALU | BPF_ALU64 => alu(insn),
        BPF_STX => stx(insn),
        BPF_ST => st(insn),
        BPF_LDX => ldx(insn),
        BPF_LD => ld(insn, next),
        _ => jmp(insn),
    }
}

/// The first slot of every instruction: ld_imm64 covers two slots.
pub(crate) fn slots(insns: &[Insn]) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(insns.len());
    let mut slot = 0;
    while slot < insns.len() {
        let width = if insns[slot].is_ld_imm64() && slot + 1 < insns.len() { 2 } else { 1 };
        out.push((slot, width));
        slot += width;
    }
    out
}

/// `r` for 64-bit classes, `w` for ALU (32-bit) and JMP32.
fn reg_letter(insn: &Insn) -> char {
    match insn.code & CLASS_MASK {
        BPF_ALU | BPF_JMP32 => 'w',
        _ => 'r',
    }
}

fn op_index(code: u8) -> usize {
    usize::from((code & OP_MASK) >> 4)
}

/// disasm.c `bpf_alu_string`.
fn alu_string(op: u8) -> &'static str {
    const TABLE: [&str; 14] =
        ["+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=", "neg", "%=", "^=", "=", "s>>=", "endian"];
    TABLE.get(op_index(op)).copied().unwrap_or(NULL)
}

/// disasm.c `bpf_jmp_string`.
fn jmp_string(op: u8) -> &'static str {
    const TABLE: [&str; 14] =
        ["jmp", "==", ">", ">=", "&", "!=", "s>", "s>=", "call", "exit", "<", "<=", "s<", "s<="];
    TABLE.get(op_index(op)).copied().unwrap_or(NULL)
}

/// disasm.c `bpf_atomic_alu_string`.
fn atomic_alu_string(op: u8) -> &'static str {
    match op {
        BPF_ADD => "add",
        BPF_AND => "and",
        BPF_OR => "or",
        BPF_XOR => "xor",
        _ => NULL,
    }
}

/// disasm.c `bpf_ldsx_string`: there is no sign-extending 64-bit load.
fn ldsx_string(code: u8) -> &'static str {
    match Size::from_code(code) {
        Size::B => "s8",
        Size::H => "s16",
        Size::W => "s32",
        Size::DW => NULL,
    }
}

fn ldst_string(code: u8) -> &'static str {
    Size::from_code(code).c_type()
}

/// Signed division or modulo (`off == 1`, kernel 6.6+).
fn is_sdiv_smod(insn: &Insn) -> bool {
    matches!(insn.code & OP_MASK, BPF_DIV | BPF_MOD) && insn.off == 1
}

/// Sign-extending move (`off` = 8, 16 or 32, kernel 6.6+).
fn is_movsx(insn: &Insn) -> bool {
    insn.code & OP_MASK == BPF_MOV && matches!(insn.off, 8 | 16 | 32)
}

/// The operator of an ALU instruction with a source operand.
fn alu_op_string(insn: &Insn) -> &'static str {
    if is_sdiv_smod(insn) {
        if insn.code & OP_MASK == BPF_DIV {
            "s/="
        } else {
            "s%="
        }
    } else {
        alu_string(insn.code)
    }
}

fn alu(insn: &Insn) -> String {
    let c = insn.code;
    let w = reg_letter(insn);
    let (dst, src) = (insn.dst, insn.src);
    if c & OP_MASK == BPF_END {
        if c & CLASS_MASK == BPF_ALU64 {
            return format!("({c:02x}) r{dst} = bswap{} r{dst}", insn.imm);
        }
        let order = if c & SRC_MASK == BPF_TO_BE { "be" } else { "le" };
        return format!("({c:02x}) r{dst} = {order}{} r{dst}", insn.imm);
    }
    if c & OP_MASK == BPF_NEG {
        return format!("({c:02x}) {w}{dst} = -{w}{dst}");
    }
    let mov_x = c == BPF_ALU64 | BPF_MOV | BPF_X;
    if mov_x && insn.off == BPF_ADDR_SPACE_CAST {
        let imm = insn.imm as u32;
        return format!("({c:02x}) r{dst} = addr_space_cast(r{src}, {}, {})", imm >> 16, imm & 0xffff);
    }
    if mov_x && insn.off == -1 {
        // BPF_ADDR_PERCPU: kernel-internal per-CPU address resolution.
        return format!("({c:02x}) r{dst} = &(void __percpu *)(r{src})");
    }
    let op = alu_op_string(insn);
    if c & SRC_MASK == BPF_X {
        let sx = if is_movsx(insn) { movsx_string(insn.off) } else { "" };
        format!("({c:02x}) {w}{dst} {op} {sx}{w}{src}")
    } else {
        format!("({c:02x}) {w}{dst} {op} {}", insn.imm)
    }
}

/// disasm.c `bpf_movsx_string`, indexed by the source width.
fn movsx_string(off: i16) -> &'static str {
    match off {
        8 => "(s8)",
        16 => "(s16)",
        _ => "(s32)",
    }
}

fn stx(insn: &Insn) -> String {
    let c = insn.code;
    let (dst, src, off) = (insn.dst, insn.src, insn.off);
    let size = ldst_string(c);
    let bits = if Size::from_code(c) == Size::DW { "64" } else { "" };
    let imm = insn.imm;
    let imm_op = (imm & i32::from(OP_MASK)) as u8;
    let simple_alu = matches!(imm, 0x00 | 0x40 | 0x50 | 0xa0);
    let fetch_alu = matches!(imm, 0x01 | 0x41 | 0x51 | 0xa1);
    match c & MODE_MASK {
        BPF_MEM => format!("({c:02x}) *({size} *)(r{dst} {off:+}) = r{src}"),
        BPF_ATOMIC if simple_alu => {
            format!("({c:02x}) lock *({size} *)(r{dst} {off:+}) {} r{src}", alu_string(imm_op))
        }
        BPF_ATOMIC if fetch_alu => format!(
            "({c:02x}) r{src} = atomic{bits}_fetch_{}(({size} *)(r{dst} {off:+}), r{src})",
            atomic_alu_string(imm_op)
        ),
        BPF_ATOMIC if imm == BPF_CMPXCHG => {
            format!("({c:02x}) r0 = atomic{bits}_cmpxchg(({size} *)(r{dst} {off:+}), r0, r{src})")
        }
        BPF_ATOMIC if imm == BPF_XCHG => {
            format!("({c:02x}) r{src} = atomic{bits}_xchg(({size} *)(r{dst} {off:+}), r{src})")
        }
        BPF_ATOMIC if imm == BPF_LOAD_ACQ => {
            format!("({c:02x}) r{dst} = load_acquire(({size} *)(r{src} {off:+}))")
        }
        BPF_ATOMIC if imm == BPF_STORE_REL => {
            format!("({c:02x}) store_release(({size} *)(r{dst} {off:+}), r{src})")
        }
        _ => format!("BUG_{c:02x}"),
    }
}

fn st(insn: &Insn) -> String {
    let c = insn.code;
    match c & MODE_MASK {
        BPF_MEM => format!("({c:02x}) *({} *)(r{} {:+}) = {}", ldst_string(c), insn.dst, insn.off, insn.imm),
        BPF_NOSPEC => format!("({c:02x}) nospec"),
        _ => format!("BUG_st_{c:02x}"),
    }
}

fn ldx(insn: &Insn) -> String {
    let c = insn.code;
    let size = match c & MODE_MASK {
        BPF_MEM => ldst_string(c),
        BPF_MEMSX => ldsx_string(c),
        _ => return format!("BUG_ldx_{c:02x}"),
    };
    format!("({c:02x}) r{} = *({size} *)(r{} {:+})", insn.dst, insn.src, insn.off)
}

fn ld(insn: &Insn, next: Option<&Insn>) -> String {
    let c = insn.code;
    let size = ldst_string(c);
    match c & MODE_MASK {
        BPF_ABS => format!("({c:02x}) r0 = *({size} *)skb[{}]", insn.imm),
        BPF_IND => format!("({c:02x}) r0 = *({size} *)skb[r{} + {}]", insn.src, insn.imm),
        BPF_IMM if c & SIZE_MASK == BPF_DW => {
            format!("({c:02x}) r{} = {}", insn.dst, ld_imm64_value(insn, next))
        }
        _ => format!("BUG_ld_{c:02x}"),
    }
}

/// The right-hand side of an `ld_imm64`: the 64-bit value or the map it names.
fn ld_imm64_value(insn: &Insn, next: Option<&Insn>) -> String {
    let Some(next) = next else {
        return format!("{:#x} <truncated ld_imm64>", insn.imm as u32);
    };
    let (lo, hi) = (insn.imm, next.imm);
    match insn.src {
        BPF_PSEUDO_MAP_FD => format!("map[fd:{lo}]"),
        BPF_PSEUDO_MAP_VALUE => format!("map[fd:{lo}][0]+{}", hi as u32),
        BPF_PSEUDO_MAP_IDX => format!("map[idx:{}]", lo as u32),
        BPF_PSEUDO_MAP_IDX_VALUE => format!("map[idx:{}][0]+{}", lo as u32, hi as u32),
        _ => format!("{:#x}", (u64::from(hi as u32) << 32) | u64::from(lo as u32)),
    }
}

fn jmp(insn: &Insn) -> String {
    let c = insn.code;
    let op = c & OP_MASK;
    let (dst, src, off, imm) = (insn.dst, insn.src, insn.off, insn.imm);
    let w = reg_letter(insn);
    if op == BPF_CALL {
        return call(insn);
    }
    match c {
        JA => format!("({c:02x}) goto pc{off:+}"),
        _ if c == BPF_JMP | BPF_JA | BPF_X => format!("({c:02x}) gotox r{dst}"),
        _ if c == BPF_JMP | BPF_JCOND && src == BPF_MAY_GOTO => {
            format!("({c:02x}) may_goto pc{off:+}")
        }
        _ if c == BPF_JMP32 | BPF_JA => format!("({c:02x}) gotol pc{imm:+}"),
        EXIT => format!("({c:02x}) exit"),
        _ if c & SRC_MASK == BPF_X => {
            format!("({c:02x}) if {w}{dst} {} {w}{src} goto pc{off:+}", jmp_string(c))
        }
        _ => format!("({c:02x}) if {w}{dst} {} {:#x} goto pc{off:+}", jmp_string(c), imm as u32),
    }
}

fn call(insn: &Insn) -> String {
    let c = insn.code;
    match insn.src {
        BPF_PSEUDO_CALL => format!("({c:02x}) call pc{:+}", insn.imm),
        0 => {
            let name = Helper::from_id(insn.imm).map_or("unknown", Helper::name);
            format!("({c:02x}) call {name}#{}", insn.imm)
        }
        BPF_PSEUDO_KFUNC_CALL => format!("({c:02x}) call kernel-function#{}", insn.imm),
        _ => format!("({c:02x}) call unknown#{}", insn.imm),
    }
}
