//! Registers, the 8-byte instruction and its byte encoding.

use std::fmt;

use super::error::AsmError;
use super::opcode::{BPF_B, BPF_DW, BPF_H, BPF_W, LD_IMM64};

/// An eBPF register. `R0` holds return values, `R1`-`R5` are helper arguments
/// (clobbered by calls), `R6`-`R9` survive calls, `R10` is the read-only frame pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Reg {
    R0 = 0,
    R1 = 1,
    R2 = 2,
    R3 = 3,
    R4 = 4,
    R5 = 5,
    R6 = 6,
    R7 = 7,
    R8 = 8,
    R9 = 9,
    R10 = 10,
}

impl Reg {
    /// Every register, in number order.
    pub const ALL: [Reg; 11] =
        [Reg::R0, Reg::R1, Reg::R2, Reg::R3, Reg::R4, Reg::R5, Reg::R6, Reg::R7, Reg::R8, Reg::R9, Reg::R10];

    /// The register number as it goes into an instruction's nibble.
    pub fn num(self) -> u8 {
        self as u8
    }

    /// The register with this number, if there is one (0..=10).
    pub fn from_num(n: u8) -> Option<Reg> {
        Reg::ALL.get(usize::from(n)).copied()
    }
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.num())
    }
}

/// The width of a memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Size {
    /// 1 byte (`u8`).
    B,
    /// 2 bytes (`u16`).
    H,
    /// 4 bytes (`u32`).
    W,
    /// 8 bytes (`u64`).
    DW,
}

impl Size {
    /// Every size, smallest first.
    pub const ALL: [Size; 4] = [Size::B, Size::H, Size::W, Size::DW];

    /// Width in bytes.
    pub fn bytes(self) -> usize {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::DW => 8,
        }
    }

    /// The size bits of the opcode (`BPF_B`, `BPF_H`, `BPF_W`, `BPF_DW`).
    pub fn code(self) -> u8 {
        match self {
            Size::B => BPF_B,
            Size::H => BPF_H,
            Size::W => BPF_W,
            Size::DW => BPF_DW,
        }
    }

    /// The size with these opcode bits (the size field is two bits: always one).
    pub fn from_code(code: u8) -> Size {
        match code & super::opcode::SIZE_MASK {
            BPF_B => Size::B,
            BPF_H => Size::H,
            BPF_W => Size::W,
            _ => Size::DW,
        }
    }

    /// The C type the verifier prints for an access of this size (`u8` .. `u64`).
    pub fn c_type(self) -> &'static str {
        match self {
            Size::B => "u8",
            Size::H => "u16",
            Size::W => "u32",
            Size::DW => "u64",
        }
    }
}

/// The second operand of an ALU or jump instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Src {
    /// A register (`BPF_X`).
    Reg(Reg),
    /// A 32-bit immediate (`BPF_K`); 64-bit operations sign-extend it.
    Imm(i32),
}

impl From<Reg> for Src {
    fn from(r: Reg) -> Src {
        Src::Reg(r)
    }
}

impl From<i32> for Src {
    fn from(imm: i32) -> Src {
        Src::Imm(imm)
    }
}

/// One 8-byte eBPF instruction slot, as in `struct bpf_insn`
/// (include/uapi/linux/bpf.h). `dst` and `src` are 4-bit register fields; an
/// `ld_imm64` occupies two slots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Insn {
    /// Opcode: class, size/mode or operation/source.
    pub code: u8,
    /// Destination register number (low nibble of byte 1).
    pub dst: u8,
    /// Source register number or pseudo-source tag (high nibble of byte 1).
    pub src: u8,
    /// Signed offset: memory displacement or jump distance in slots.
    pub off: i16,
    /// Signed 32-bit immediate.
    pub imm: i32,
}

impl Insn {
    /// An instruction from its fields.
    pub fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn { code, dst, src, off, imm }
    }

    /// The kernel's little-endian layout: code, `src << 4 | dst`, off, imm.
    /// Only the low 4 bits of `dst` and `src` are kept.
    pub fn to_bytes(&self) -> [u8; 8] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        let regs = (self.src & 0x0f) << 4 | (self.dst & 0x0f);
        [self.code, regs, off[0], off[1], imm[0], imm[1], imm[2], imm[3]]
    }

    /// Reads one slot from the kernel's layout.
    pub fn from_bytes(b: &[u8; 8]) -> Insn {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Is this the first slot of a two-slot 64-bit immediate load?
    pub fn is_ld_imm64(&self) -> bool {
        self.code == LD_IMM64
    }
}

/// The byte image of a program, as BPF_PROG_LOAD expects it.
pub fn encode(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(|i| i.to_bytes()).collect()
}

/// Splits a byte image into instruction slots. Fails when the length is not a
/// multiple of 8 or when the last slot opens an `ld_imm64` that has no second half.
pub fn decode(bytes: &[u8]) -> Result<Vec<Insn>, AsmError> {
    if !bytes.len().is_multiple_of(8) {
        return Err(AsmError::BadLength(bytes.len()));
    }
    let insns: Vec<Insn> = bytes
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            Insn::from_bytes(&b)
        })
        .collect();
    check_ld_imm64_pairs(&insns)?;
    Ok(insns)
}

/// Every `ld_imm64` must be followed by its second slot.
fn check_ld_imm64_pairs(insns: &[Insn]) -> Result<(), AsmError> {
    let mut slot = 0;
    while slot < insns.len() {
        if insns[slot].is_ld_imm64() {
            if slot + 1 == insns.len() {
                return Err(AsmError::TruncatedLdImm64 { slot });
            }
            slot += 2;
        } else {
            slot += 1;
        }
    }
    Ok(())
}
