//! eBPF instruction set, builder and disassembler (pure, no syscalls).
//!
//! - [`Insn`]: one 8-byte slot in the kernel's layout ([`encode`], [`decode`]).
//! - [`Asm`]: a builder whose calls read like the instructions they emit, with
//!   labels resolved by [`Asm::link`] into a [`Program`].
//! - [`disasm`]: the kernel verifier's syntax (kernel/bpf/disasm.c), so a listing
//!   can be compared line by line with a verifier log.
//!
//! ```
//! use trace::bpf_asm::{Asm, Helper, JmpOp, Reg::*, Size};
//!
//! let mut a = Asm::new();
//! a.comment("filter")
//!     .call(Helper::GetCurrentPidTgid)
//!     .stx(Size::W, R10, -4, R0)
//!     .jmp(JmpOp::Jeq, R0, 0, "out")
//!     .label("out")
//!     .mov64(R0, 0)
//!     .exit();
//! let prog = a.link().unwrap();
//! assert_eq!(prog.disasm()[2], "if r0 == 0x0 goto pc+0");
//! ```

mod builder;
mod disasm;
mod error;
mod helper;
mod insn;
pub mod opcode;

#[cfg(test)]
mod tests;

pub use builder::{AluOp, Asm, JmpOp, Program};
pub use disasm::{disasm, disasm_insn, verifier_line};
pub use error::AsmError;
pub use helper::Helper;
pub use insn::{decode, encode, Insn, Reg, Size, Src};
