//! Opcode fields of an eBPF instruction, named as the kernel names them.
//!
//! An opcode byte is `class | size | mode` for loads and stores and
//! `class | op | source` for ALU and jump instructions. The values come from
//! `include/uapi/linux/bpf_common.h` (the classic-BPF part) and
//! `include/uapi/linux/bpf.h` (the eBPF extensions); each constant names its header.

// ---- Instruction classes (low 3 bits) ------------------------------------------

/// Mask of the class bits. include/uapi/linux/bpf_common.h `BPF_CLASS()`
pub const CLASS_MASK: u8 = 0x07;
/// Loads of immediates (ld_imm64) and legacy packet loads. include/uapi/linux/bpf_common.h
pub const BPF_LD: u8 = 0x00;
/// Loads from memory into a register. include/uapi/linux/bpf_common.h
pub const BPF_LDX: u8 = 0x01;
/// Stores of an immediate to memory. include/uapi/linux/bpf_common.h
pub const BPF_ST: u8 = 0x02;
/// Stores of a register to memory. include/uapi/linux/bpf_common.h
pub const BPF_STX: u8 = 0x03;
/// 32-bit arithmetic. include/uapi/linux/bpf_common.h
pub const BPF_ALU: u8 = 0x04;
/// 64-bit jumps, calls and exit. include/uapi/linux/bpf_common.h
pub const BPF_JMP: u8 = 0x05;
/// Jumps comparing the low 32 bits. include/uapi/linux/bpf.h
pub const BPF_JMP32: u8 = 0x06;
/// 64-bit arithmetic. include/uapi/linux/bpf.h
pub const BPF_ALU64: u8 = 0x07;

// ---- Load/store size (bits 3-4) --------------------------------------------------

/// Mask of the size bits. include/uapi/linux/bpf_common.h `BPF_SIZE()`
pub const SIZE_MASK: u8 = 0x18;
/// 32-bit word. include/uapi/linux/bpf_common.h
pub const BPF_W: u8 = 0x00;
/// 16-bit half word. include/uapi/linux/bpf_common.h
pub const BPF_H: u8 = 0x08;
/// Byte. include/uapi/linux/bpf_common.h
pub const BPF_B: u8 = 0x10;
/// 64-bit double word. include/uapi/linux/bpf.h
pub const BPF_DW: u8 = 0x18;

// ---- Load/store mode (bits 5-7) --------------------------------------------------

/// Mask of the mode bits. include/uapi/linux/bpf_common.h `BPF_MODE()`
pub const MODE_MASK: u8 = 0xe0;
/// Immediate (ld_imm64). include/uapi/linux/bpf_common.h
pub const BPF_IMM: u8 = 0x00;
/// Legacy packet load, absolute offset. include/uapi/linux/bpf_common.h
pub const BPF_ABS: u8 = 0x20;
/// Legacy packet load, register-relative offset. include/uapi/linux/bpf_common.h
pub const BPF_IND: u8 = 0x40;
/// Regular memory access `*(size *)(reg + off)`. include/uapi/linux/bpf_common.h
pub const BPF_MEM: u8 = 0x60;
/// Sign-extending load (kernel 6.6+). include/uapi/linux/bpf.h
pub const BPF_MEMSX: u8 = 0x80;
/// Atomic read-modify-write; the operation is in `imm`. include/uapi/linux/bpf.h
pub const BPF_ATOMIC: u8 = 0xc0;
/// Speculation barrier; kernel-internal mode of the ST class, not in UAPI
/// (kernel/bpf/disasm.c prints it as `nospec`).
pub const BPF_NOSPEC: u8 = 0xc0;

// ---- ALU and jump operations (bits 4-7) --------------------------------------------

/// Mask of the operation bits. include/uapi/linux/bpf_common.h `BPF_OP()`
pub const OP_MASK: u8 = 0xf0;
/// include/uapi/linux/bpf_common.h
pub const BPF_ADD: u8 = 0x00;
/// include/uapi/linux/bpf_common.h
pub const BPF_SUB: u8 = 0x10;
/// include/uapi/linux/bpf_common.h
pub const BPF_MUL: u8 = 0x20;
/// Unsigned division (signed when `off == 1`, kernel 6.6+). include/uapi/linux/bpf_common.h
pub const BPF_DIV: u8 = 0x30;
/// include/uapi/linux/bpf_common.h
pub const BPF_OR: u8 = 0x40;
/// include/uapi/linux/bpf_common.h
pub const BPF_AND: u8 = 0x50;
/// include/uapi/linux/bpf_common.h
pub const BPF_LSH: u8 = 0x60;
/// Logical shift right. include/uapi/linux/bpf_common.h
pub const BPF_RSH: u8 = 0x70;
/// include/uapi/linux/bpf_common.h
pub const BPF_NEG: u8 = 0x80;
/// Unsigned modulo (signed when `off == 1`, kernel 6.6+). include/uapi/linux/bpf_common.h
pub const BPF_MOD: u8 = 0x90;
/// include/uapi/linux/bpf_common.h
pub const BPF_XOR: u8 = 0xa0;
/// Register or immediate move. include/uapi/linux/bpf.h
pub const BPF_MOV: u8 = 0xb0;
/// Arithmetic (sign-extending) shift right. include/uapi/linux/bpf.h
pub const BPF_ARSH: u8 = 0xc0;
/// Byte swap; the width is in `imm`. include/uapi/linux/bpf.h
pub const BPF_END: u8 = 0xd0;

/// Unconditional jump. include/uapi/linux/bpf_common.h
pub const BPF_JA: u8 = 0x00;
/// include/uapi/linux/bpf_common.h
pub const BPF_JEQ: u8 = 0x10;
/// Unsigned `>`. include/uapi/linux/bpf_common.h
pub const BPF_JGT: u8 = 0x20;
/// Unsigned `>=`. include/uapi/linux/bpf_common.h
pub const BPF_JGE: u8 = 0x30;
/// Jump if `dst & src` is non-zero. include/uapi/linux/bpf_common.h
pub const BPF_JSET: u8 = 0x40;
/// include/uapi/linux/bpf.h
pub const BPF_JNE: u8 = 0x50;
/// Signed `>`. include/uapi/linux/bpf.h
pub const BPF_JSGT: u8 = 0x60;
/// Signed `>=`. include/uapi/linux/bpf.h
pub const BPF_JSGE: u8 = 0x70;
/// Helper or BPF-to-BPF call. include/uapi/linux/bpf.h
pub const BPF_CALL: u8 = 0x80;
/// Return from the program. include/uapi/linux/bpf.h
pub const BPF_EXIT: u8 = 0x90;
/// Unsigned `<`. include/uapi/linux/bpf.h
pub const BPF_JLT: u8 = 0xa0;
/// Unsigned `<=`. include/uapi/linux/bpf.h
pub const BPF_JLE: u8 = 0xb0;
/// Signed `<`. include/uapi/linux/bpf.h
pub const BPF_JSLT: u8 = 0xc0;
/// Signed `<=`. include/uapi/linux/bpf.h
pub const BPF_JSLE: u8 = 0xd0;
/// Conditional pseudo jump (`may_goto`, kernel 6.9+). include/uapi/linux/bpf.h
pub const BPF_JCOND: u8 = 0xe0;

// ---- Source operand (bit 3) ----------------------------------------------------------

/// Mask of the source bit. include/uapi/linux/bpf_common.h `BPF_SRC()`
pub const SRC_MASK: u8 = 0x08;
/// Source is the 32-bit immediate `imm`. include/uapi/linux/bpf_common.h
pub const BPF_K: u8 = 0x00;
/// Source is the register `src`. include/uapi/linux/bpf_common.h
pub const BPF_X: u8 = 0x08;
/// BPF_END: convert to little endian. include/uapi/linux/bpf.h
pub const BPF_TO_LE: u8 = 0x00;
/// BPF_END: convert to big endian. include/uapi/linux/bpf.h
pub const BPF_TO_BE: u8 = 0x08;

// ---- Atomic operations (in `imm` of BPF_STX | BPF_ATOMIC) -----------------------------

/// Also return the old value. include/uapi/linux/bpf.h
pub const BPF_FETCH: i32 = 0x01;
/// Atomic exchange. include/uapi/linux/bpf.h
pub const BPF_XCHG: i32 = 0xe0 | BPF_FETCH;
/// Atomic compare-and-exchange against r0. include/uapi/linux/bpf.h
pub const BPF_CMPXCHG: i32 = 0xf0 | BPF_FETCH;
/// Load-acquire (kernel 6.15+). include/uapi/linux/bpf.h
pub const BPF_LOAD_ACQ: i32 = 0x100;
/// Store-release (kernel 6.15+). include/uapi/linux/bpf.h
pub const BPF_STORE_REL: i32 = 0x110;

// ---- Pseudo sources (in the `src` field) ------------------------------------------------

/// ld_imm64: `imm` is a map file descriptor. include/uapi/linux/bpf.h
pub const BPF_PSEUDO_MAP_FD: u8 = 1;
/// ld_imm64: map fd plus an offset into its value. include/uapi/linux/bpf.h
pub const BPF_PSEUDO_MAP_VALUE: u8 = 2;
/// ld_imm64: a BTF id of a kernel variable. include/uapi/linux/bpf.h
pub const BPF_PSEUDO_BTF_ID: u8 = 3;
/// ld_imm64: address of a BPF function. include/uapi/linux/bpf.h
pub const BPF_PSEUDO_FUNC: u8 = 4;
/// ld_imm64: index into the fd_array given at load time. include/uapi/linux/bpf.h
pub const BPF_PSEUDO_MAP_IDX: u8 = 5;
/// ld_imm64: fd_array index plus value offset. include/uapi/linux/bpf.h
pub const BPF_PSEUDO_MAP_IDX_VALUE: u8 = 6;
/// call: `imm` is a pc-relative BPF-to-BPF call. include/uapi/linux/bpf.h
pub const BPF_PSEUDO_CALL: u8 = 1;
/// call: `imm` is a kernel function's BTF id. include/uapi/linux/bpf.h
pub const BPF_PSEUDO_KFUNC_CALL: u8 = 2;
/// JCOND: the `may_goto` form. include/uapi/linux/bpf.h
pub const BPF_MAY_GOTO: u8 = 0;
/// `off` of an ALU64 mov that casts between address spaces. include/uapi/linux/bpf.h
pub const BPF_ADDR_SPACE_CAST: i16 = 1;

// ---- Whole opcodes the builder emits ------------------------------------------------------

/// First slot of a 64-bit immediate load (`BPF_LD | BPF_IMM | BPF_DW`).
pub const LD_IMM64: u8 = BPF_LD | BPF_IMM | BPF_DW;
/// Helper call (`BPF_JMP | BPF_CALL`).
pub const CALL: u8 = BPF_JMP | BPF_CALL;
/// Program exit (`BPF_JMP | BPF_EXIT`).
pub const EXIT: u8 = BPF_JMP | BPF_EXIT;
/// Unconditional jump (`BPF_JMP | BPF_JA`).
pub const JA: u8 = BPF_JMP | BPF_JA;
