//! The assembler: a builder whose calls read like the instructions they emit,
//! labels resolved at link time, and the linked [`Program`].

use std::collections::HashMap;

use super::disasm::{disasm, disasm_insn, slots, verifier_line};
use super::error::AsmError;
use super::helper::Helper;
use super::insn::{encode, Insn, Reg, Size, Src};
use super::opcode::*;

/// An arithmetic operation (the `BPF_OP` bits of an ALU instruction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AluOp {
    /// `dst += src`
    Add,
    /// `dst -= src`
    Sub,
    /// `dst *= src`
    Mul,
    /// `dst /= src`, unsigned; division by zero yields 0.
    Div,
    /// `dst |= src`
    Or,
    /// `dst &= src`
    And,
    /// `dst <<= src`
    Lsh,
    /// `dst >>= src`, logical.
    Rsh,
    /// `dst = -dst`; takes no source (pass `0`).
    Neg,
    /// `dst %= src`, unsigned; modulo zero leaves dst unchanged.
    Mod,
    /// `dst ^= src`
    Xor,
    /// `dst = src`
    Mov,
    /// `dst s>>= src`, arithmetic.
    Arsh,
}

impl AluOp {
    /// Every operation, in opcode order.
    pub const ALL: [AluOp; 13] = [
        AluOp::Add,
        AluOp::Sub,
        AluOp::Mul,
        AluOp::Div,
        AluOp::Or,
        AluOp::And,
        AluOp::Lsh,
        AluOp::Rsh,
        AluOp::Neg,
        AluOp::Mod,
        AluOp::Xor,
        AluOp::Mov,
        AluOp::Arsh,
    ];

    /// The operation bits (`BPF_ADD` .. `BPF_ARSH`).
    pub fn code(self) -> u8 {
        match self {
            AluOp::Add => BPF_ADD,
            AluOp::Sub => BPF_SUB,
            AluOp::Mul => BPF_MUL,
            AluOp::Div => BPF_DIV,
            AluOp::Or => BPF_OR,
            AluOp::And => BPF_AND,
            AluOp::Lsh => BPF_LSH,
            AluOp::Rsh => BPF_RSH,
            AluOp::Neg => BPF_NEG,
            AluOp::Mod => BPF_MOD,
            AluOp::Xor => BPF_XOR,
            AluOp::Mov => BPF_MOV,
            AluOp::Arsh => BPF_ARSH,
        }
    }

    /// The operation in an opcode's `BPF_OP` bits (`None` for `BPF_END` and unused values).
    pub fn from_code(code: u8) -> Option<AluOp> {
        AluOp::ALL.iter().copied().find(|op| op.code() == code & OP_MASK)
    }
}

/// A conditional jump comparison (the `BPF_OP` bits of a jump instruction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JmpOp {
    /// `==`
    Jeq,
    /// `>`, unsigned.
    Jgt,
    /// `>=`, unsigned.
    Jge,
    /// `dst & src != 0`
    Jset,
    /// `!=`
    Jne,
    /// `>`, signed.
    Jsgt,
    /// `>=`, signed.
    Jsge,
    /// `<`, unsigned.
    Jlt,
    /// `<=`, unsigned.
    Jle,
    /// `<`, signed.
    Jslt,
    /// `<=`, signed.
    Jsle,
}

impl JmpOp {
    /// Every comparison, in opcode order.
    pub const ALL: [JmpOp; 11] = [
        JmpOp::Jeq,
        JmpOp::Jgt,
        JmpOp::Jge,
        JmpOp::Jset,
        JmpOp::Jne,
        JmpOp::Jsgt,
        JmpOp::Jsge,
        JmpOp::Jlt,
        JmpOp::Jle,
        JmpOp::Jslt,
        JmpOp::Jsle,
    ];

    /// The operation bits (`BPF_JEQ` .. `BPF_JSLE`).
    pub fn code(self) -> u8 {
        match self {
            JmpOp::Jeq => BPF_JEQ,
            JmpOp::Jgt => BPF_JGT,
            JmpOp::Jge => BPF_JGE,
            JmpOp::Jset => BPF_JSET,
            JmpOp::Jne => BPF_JNE,
            JmpOp::Jsgt => BPF_JSGT,
            JmpOp::Jsge => BPF_JSGE,
            JmpOp::Jlt => BPF_JLT,
            JmpOp::Jle => BPF_JLE,
            JmpOp::Jslt => BPF_JSLT,
            JmpOp::Jsle => BPF_JSLE,
        }
    }

    /// The comparison in an opcode's `BPF_OP` bits (`None` for ja, call, exit, ...).
    pub fn from_code(code: u8) -> Option<JmpOp> {
        JmpOp::ALL.iter().copied().find(|op| op.code() == code & OP_MASK)
    }
}

/// A linked program: instruction slots plus the annotations of its listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Program {
    /// The instruction slots, jump offsets resolved.
    pub insns: Vec<Insn>,
    /// Slot index -> annotation, in the order they were written.
    pub comments: Vec<(usize, String)>,
    /// Slot index -> label bound there, in the order they were bound.
    pub labels: Vec<(usize, String)>,
}

impl Program {
    /// The byte image for BPF_PROG_LOAD.
    pub fn bytes(&self) -> Vec<u8> {
        encode(&self.insns)
    }

    /// Number of instruction slots (BPF_PROG_LOAD's `insn_cnt`).
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// Has the program no instructions?
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// One line of verifier syntax per instruction (see [`super::disasm()`]).
    pub fn disasm(&self) -> Vec<String> {
        disasm(&self.insns)
    }

    /// A listing for humans: `; comment` lines, `label:` lines and one
    /// `slot: (code) text` line per instruction, the way the verifier log numbers
    /// them; jumps name their target label.
    pub fn listing(&self) -> String {
        let width = self.insns.len().saturating_sub(1).to_string().len();
        let mut out = String::new();
        for (slot, span) in slots(&self.insns) {
            self.annotations(slot, &mut out);
            let line = verifier_line(&self.insns[slot], self.insns.get(slot + 1));
            out.push_str(&format!("{slot:>width$}: {line}"));
            if let Some(label) = self.jump_target_label(slot) {
                out.push_str(&format!("  ; -> {label}"));
            }
            out.push('\n');
            // A label or comment cannot point inside an ld_imm64; show any anyway.
            for inner in slot + 1..slot + span {
                self.annotations(inner, &mut out);
            }
        }
        self.annotations(self.insns.len(), &mut out);
        out
    }

    /// Appends the label and comment lines attached to `slot`.
    fn annotations(&self, slot: usize, out: &mut String) {
        for (_, label) in self.labels.iter().filter(|(s, _)| *s == slot) {
            out.push_str(&format!("{label}:\n"));
        }
        for (_, text) in self.comments.iter().filter(|(s, _)| *s == slot) {
            out.push_str(&format!("; {text}\n"));
        }
    }

    /// The first label bound at the target of the jump at `slot`, if any.
    fn jump_target_label(&self, slot: usize) -> Option<&str> {
        let insn = &self.insns[slot];
        let class = insn.code & CLASS_MASK;
        // `goto` and the conditional jumps; not call, exit or JMP32's `gotol`.
        let conditional = (class == BPF_JMP || class == BPF_JMP32) && JmpOp::from_code(insn.code).is_some();
        if insn.code != JA && !conditional {
            return None;
        }
        let target = slot as i64 + 1 + i64::from(insn.off);
        self.labels.iter().find(|(s, _)| *s as i64 == target).map(|(_, l)| l.as_str())
    }
}

/// The assembler. Methods append one instruction and return `&mut Self`, so calls
/// chain: `a.mov64(R1, R10).add64(R1, -8).call(Helper::KtimeGetNs)`. Mistakes
/// found while building (a duplicate label, a write to r10, ...) are reported by
/// [`Asm::link`], which also resolves the labels.
#[derive(Clone, Debug, Default)]
pub struct Asm {
    insns: Vec<Insn>,
    /// Label name -> slot it is bound to.
    labels: HashMap<String, usize>,
    /// Labels in the order they were bound, for the listing.
    label_order: Vec<(usize, String)>,
    /// (jump slot, label) pairs to patch at link time.
    fixups: Vec<(usize, String)>,
    comments: Vec<(usize, String)>,
    /// The first mistake found while building.
    error: Option<AsmError>,
}

macro_rules! alu_shortcuts {
    ($( $op:ident: $name64:ident, $name32:ident, $sym:literal; )*) => {
        $(
            #[doc = concat!("`dst ", $sym, " src`, 64-bit: `alu64(AluOp::", stringify!($op), ", ..)`.")]
            pub fn $name64(&mut self, dst: Reg, src: impl Into<Src>) -> &mut Self {
                self.alu64(AluOp::$op, dst, src)
            }

            #[doc = concat!("`dst ", $sym, " src`, 32-bit: `alu32(AluOp::", stringify!($op), ", ..)`.")]
            pub fn $name32(&mut self, dst: Reg, src: impl Into<Src>) -> &mut Self {
                self.alu32(AluOp::$op, dst, src)
            }
        )*
    };
}

impl Asm {
    /// An empty program.
    pub fn new() -> Asm {
        Asm::default()
    }

    /// 64-bit arithmetic: `dst op= src` (`BPF_ALU64` class).
    pub fn alu64(&mut self, op: AluOp, dst: Reg, src: impl Into<Src>) -> &mut Self {
        self.alu(BPF_ALU64, op, dst, src.into())
    }

    /// 32-bit arithmetic on the low halves; the result is zero-extended
    /// (`BPF_ALU` class).
    pub fn alu32(&mut self, op: AluOp, dst: Reg, src: impl Into<Src>) -> &mut Self {
        self.alu(BPF_ALU, op, dst, src.into())
    }

    alu_shortcuts! {
        Mov: mov64, mov32, "=";
        Add: add64, add32, "+=";
        Sub: sub64, sub32, "-=";
        Mul: mul64, mul32, "*=";
        Div: div64, div32, "/=";
        Mod: mod64, mod32, "%=";
        And: and64, and32, "&=";
        Or: or64, or32, "|=";
        Xor: xor64, xor32, "^=";
        Lsh: lsh64, lsh32, "<<=";
        Rsh: rsh64, rsh32, ">>=";
        Arsh: arsh64, arsh32, "s>>=";
    }

    /// `dst = -dst`, 64-bit.
    pub fn neg64(&mut self, dst: Reg) -> &mut Self {
        self.alu64(AluOp::Neg, dst, 0)
    }

    /// `dst = -dst`, 32-bit.
    pub fn neg32(&mut self, dst: Reg) -> &mut Self {
        self.alu32(AluOp::Neg, dst, 0)
    }

    fn alu(&mut self, class: u8, op: AluOp, dst: Reg, src: Src) -> &mut Self {
        let insn = match src {
            Src::Reg(s) => Insn::new(class | op.code() | BPF_X, dst.num(), s.num(), 0, 0),
            Src::Imm(imm) => Insn::new(class | op.code() | BPF_K, dst.num(), 0, 0, imm),
        };
        self.check(insn, alu_problem(class, op, dst, src));
        self.push(insn)
    }

    /// `dst = imm`, a full 64-bit constant; takes two slots.
    pub fn ld_imm64(&mut self, dst: Reg, imm: u64) -> &mut Self {
        self.ld_imm64_raw(dst, 0, imm)
    }

    /// `dst = map`: an `ld_imm64` with `src = BPF_PSEUDO_MAP_FD`, which the kernel
    /// replaces with the map's address at load time; takes two slots.
    pub fn ld_map_fd(&mut self, dst: Reg, map_fd: i32) -> &mut Self {
        self.ld_imm64_raw(dst, BPF_PSEUDO_MAP_FD, u64::from(map_fd as u32))
    }

    fn ld_imm64_raw(&mut self, dst: Reg, src: u8, imm: u64) -> &mut Self {
        let first = Insn::new(LD_IMM64, dst.num(), src, 0, imm as u32 as i32);
        let second = Insn::new(0, 0, 0, 0, (imm >> 32) as u32 as i32);
        self.check_writes(first, dst);
        self.push(first).push(second)
    }

    /// `dst = *(size *)(src + off)`.
    pub fn ldx(&mut self, size: Size, dst: Reg, src: Reg, off: i16) -> &mut Self {
        let insn = Insn::new(BPF_LDX | BPF_MEM | size.code(), dst.num(), src.num(), off, 0);
        self.check_writes(insn, dst);
        self.push(insn)
    }

    /// `*(size *)(dst + off) = src`.
    pub fn stx(&mut self, size: Size, dst: Reg, off: i16, src: Reg) -> &mut Self {
        self.push(Insn::new(BPF_STX | BPF_MEM | size.code(), dst.num(), src.num(), off, 0))
    }

    /// `*(size *)(dst + off) = imm`; for `Size::DW` the immediate is sign-extended.
    pub fn st(&mut self, size: Size, dst: Reg, off: i16, imm: i32) -> &mut Self {
        self.push(Insn::new(BPF_ST | BPF_MEM | size.code(), dst.num(), 0, off, imm))
    }

    /// `if dst op src goto label`, comparing 64 bits (`BPF_JMP` class).
    pub fn jmp(&mut self, op: JmpOp, dst: Reg, src: impl Into<Src>, label: &str) -> &mut Self {
        self.cond_jump(BPF_JMP, op, dst, src.into(), label)
    }

    /// `if dst op src goto label`, comparing the low 32 bits (`BPF_JMP32` class).
    pub fn jmp32(&mut self, op: JmpOp, dst: Reg, src: impl Into<Src>, label: &str) -> &mut Self {
        self.cond_jump(BPF_JMP32, op, dst, src.into(), label)
    }

    fn cond_jump(&mut self, class: u8, op: JmpOp, dst: Reg, src: Src, label: &str) -> &mut Self {
        let insn = match src {
            Src::Reg(s) => Insn::new(class | op.code() | BPF_X, dst.num(), s.num(), 0, 0),
            Src::Imm(imm) => Insn::new(class | op.code() | BPF_K, dst.num(), 0, 0, imm),
        };
        self.jump_to(insn, label)
    }

    /// `goto label`.
    pub fn ja(&mut self, label: &str) -> &mut Self {
        self.jump_to(Insn::new(JA, 0, 0, 0, 0), label)
    }

    fn jump_to(&mut self, insn: Insn, label: &str) -> &mut Self {
        self.fixups.push((self.insns.len(), label.to_string()));
        self.push(insn)
    }

    /// `call helper`: arguments in r1-r5, result in r0; r1-r5 are clobbered.
    pub fn call(&mut self, helper: Helper) -> &mut Self {
        self.push(Insn::new(CALL, 0, 0, 0, helper.id()))
    }

    /// `exit`: return r0.
    pub fn exit(&mut self) -> &mut Self {
        self.push(Insn::new(EXIT, 0, 0, 0, 0))
    }

    /// Binds `name` to the next instruction emitted.
    pub fn label(&mut self, name: &str) -> &mut Self {
        let slot = self.insns.len();
        if self.labels.insert(name.to_string(), slot).is_some() {
            self.fail(AsmError::DuplicateLabel(name.to_string()));
        } else {
            self.label_order.push((slot, name.to_string()));
        }
        self
    }

    /// Attaches an annotation to the next instruction emitted (shown by
    /// [`Program::listing`]).
    pub fn comment(&mut self, text: &str) -> &mut Self {
        self.comments.push((self.insns.len(), text.to_string()));
        self
    }

    /// Instruction slots emitted so far (an `ld_imm64` counts two).
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// Has nothing been emitted yet?
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// Resolves every jump's label into its offset (`target - (jump + 1)`) and
    /// returns the program, or the first mistake made while building it.
    pub fn link(&self) -> Result<Program, AsmError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let mut insns = self.insns.clone();
        for (slot, label) in &self.fixups {
            insns[*slot].off = self.offset_to(*slot, label)?;
        }
        Ok(Program { insns, comments: self.comments.clone(), labels: self.label_order.clone() })
    }

    /// The offset a jump at `slot` needs to reach `label`.
    fn offset_to(&self, slot: usize, label: &str) -> Result<i16, AsmError> {
        let target = *self.labels.get(label).ok_or_else(|| AsmError::UndefinedLabel(label.to_string()))?;
        if target >= self.insns.len() {
            return Err(AsmError::LabelAtEnd(label.to_string()));
        }
        let distance = target as i64 - (slot as i64 + 1);
        i16::try_from(distance).map_err(|_| AsmError::JumpOutOfRange {
            label: label.to_string(),
            from: slot,
            distance,
        })
    }

    fn push(&mut self, insn: Insn) -> &mut Self {
        self.insns.push(insn);
        self
    }

    /// Records the first mistake; later ones are usually its consequences.
    fn fail(&mut self, e: AsmError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// Records `problem` (if any) as an invalid instruction at the next slot.
    fn check(&mut self, insn: Insn, problem: Option<String>) {
        if let Some(reason) = problem {
            let slot = self.insns.len();
            self.fail(AsmError::InvalidInsn { slot, insn: disasm_insn(&insn, None), reason });
        }
    }

    fn check_writes(&mut self, insn: Insn, dst: Reg) {
        self.check(insn, frame_pointer_write(dst));
    }
}

fn frame_pointer_write(dst: Reg) -> Option<String> {
    (dst == Reg::R10).then(|| {
        "r10 is the read-only frame pointer: copy it to another register first \
         (e.g. mov64(R1, R10)) and change that one"
            .to_string()
    })
}

/// What the verifier would reject in this ALU instruction, if anything.
fn alu_problem(class: u8, op: AluOp, dst: Reg, src: Src) -> Option<String> {
    if let Some(p) = frame_pointer_write(dst) {
        return Some(p);
    }
    let bits = if class == BPF_ALU64 { 64 } else { 32 };
    match (op, src) {
        (AluOp::Neg, Src::Imm(0)) => None,
        (AluOp::Neg, _) => Some(format!("neg takes no source operand: pass 0 or use neg{bits}({dst:?})")),
        (AluOp::Lsh | AluOp::Rsh | AluOp::Arsh, Src::Imm(n)) if !(0..bits).contains(&n) => {
            Some(format!("a {bits}-bit shift by {n} is out of range: shift by 0..={}", bits - 1))
        }
        (AluOp::Div | AluOp::Mod, Src::Imm(0)) => {
            Some("division by the constant 0: the verifier rejects it".to_string())
        }
        _ => None,
    }
}
