//! Errors of the assembler, the linker and the decoder.

use std::fmt;

/// Why a program could not be linked or a byte string decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AsmError {
    /// A jump names a label that was never bound.
    UndefinedLabel(String),
    /// The same label was bound twice.
    DuplicateLabel(String),
    /// A jump target is farther away than a 16-bit offset reaches.
    JumpOutOfRange {
        /// The label jumped to.
        label: String,
        /// Slot of the jump instruction.
        from: usize,
        /// `target - (from + 1)`, in slots.
        distance: i64,
    },
    /// A label jumped to is bound after the last instruction.
    LabelAtEnd(String),
    /// A byte string whose length is not a multiple of 8.
    BadLength(usize),
    /// A byte string ending in the first half of an `ld_imm64`.
    TruncatedLdImm64 {
        /// Slot of the lone first half.
        slot: usize,
    },
    /// An instruction the verifier would reject for a reason known before loading.
    InvalidInsn {
        /// Slot of the instruction.
        slot: usize,
        /// The instruction in verifier syntax.
        insn: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for AsmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsmError::UndefinedLabel(l) => write!(
                f,
                "jump to label `{l}`, which is never bound: bind it with .label(\"{l}\") \
                 before the instruction the jump should reach"
            ),
            AsmError::DuplicateLabel(l) => {
                write!(f, "label `{l}` is bound twice: give each jump target its own name")
            }
            AsmError::JumpOutOfRange { label, from, distance } => write!(
                f,
                "the jump at slot {from} to label `{label}` spans {distance} instructions, \
                 but a BPF jump offset must lie in {}..={}: move the target closer or \
                 split the program",
                i16::MIN,
                i16::MAX
            ),
            AsmError::LabelAtEnd(l) => write!(
                f,
                "label `{l}` is bound after the last instruction, so a jump to it would leave \
                 the program: emit an instruction (e.g. exit) after .label(\"{l}\")"
            ),
            AsmError::BadLength(n) => write!(
                f,
                "{n} bytes is not a whole number of 8-byte BPF instructions: \
                 the program image is truncated or is not BPF bytecode"
            ),
            AsmError::TruncatedLdImm64 { slot } => write!(
                f,
                "the ld_imm64 at slot {slot} is the last slot, but it needs a second slot: \
                 the program image is truncated"
            ),
            AsmError::InvalidInsn { slot, insn, reason } => {
                write!(f, "slot {slot} `{insn}`: {reason}")
            }
        }
    }
}

impl std::error::Error for AsmError {}
