//! The checked program: names resolved, every expression typed, one
//! [`ProbeProgram`] per probe (a block shared by several probes is checked, and
//! appears, once for each). This is what the lowering step turns into
//! [`crate::codegen::ProgSpec`]s and the user-space formatter's tables.

use std::fmt;

use super::ast::{BinOp, Probe, UnOp};
use super::diag::Diagnostic;
use super::format::Piece;
use super::source::Span;
use crate::tracefs::Field;

/// An integer type: its width in bits and whether it is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntTy {
    pub bits: u8,
    pub signed: bool,
}

impl IntTy {
    pub const U32: IntTy = IntTy { bits: 32, signed: false };
    pub const U64: IntTy = IntTy { bits: 64, signed: false };
    pub const I64: IntTy = IntTy { bits: 64, signed: true };
}

/// The type of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Int(IntTy),
    /// An address (a `char *` tracepoint field); `str()` reads what it points to.
    Ptr,
    /// A string: a literal, `comm`, `probe`, `func`, `str(...)`, a `char[]` field.
    Str,
    /// A stack trace (`kstack`, `ustack`): an id in a stack map, symbolised in user space.
    Stack,
    /// What `printf` and friends return: nothing.
    Void,
}

impl Ty {
    /// A value that can be a condition or take part in arithmetic.
    pub fn is_integer(self) -> bool {
        matches!(self, Ty::Int(_) | Ty::Ptr)
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ty::Int(_) => "an integer",
            Ty::Ptr => "a pointer",
            Ty::Str => "a string",
            Ty::Stack => "a stack trace",
            Ty::Void => "nothing (it is a statement)",
        })
    }
}

/// The builtins that are single values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Builtin {
    /// The thread's command name (16 bytes, bpf_get_current_comm).
    Comm,
    /// Process id (tgid).
    Pid,
    /// Thread id.
    Tid,
    Uid,
    Cpu,
    /// bpf_ktime_get_ns().
    Nsecs,
    /// The return value (return probes only).
    Retval,
    /// A register argument, arg0..arg5 (function entry probes only).
    Arg(u8),
    /// The probe's full name (`kprobe:vfs_open`): known when the program is built.
    Probe,
    /// The traced function's name: known when the program is built.
    Func,
}

impl Builtin {
    pub fn ty(self) -> Ty {
        match self {
            Builtin::Comm | Builtin::Probe | Builtin::Func => Ty::Str,
            Builtin::Pid | Builtin::Tid | Builtin::Uid | Builtin::Cpu => Ty::Int(IntTy::U32),
            Builtin::Nsecs => Ty::Int(IntTy::U64),
            // Signed, so that `retval < 0` finds errors (bpftrace calls it uint64).
            Builtin::Retval | Builtin::Arg(_) => Ty::Int(IntTy::I64),
        }
    }
}

/// How a stack trace is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackMode {
    /// `        vfs_open+45`, one frame a line (bpftrace's default).
    Bpftrace,
    /// `        ffffffff8123abcd vfs_open+45`
    Perf,
    /// Addresses only, no symbols.
    Raw,
}

/// `kstack`, `ustack(perf, 5)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackSpec {
    /// kstack (true) or ustack.
    pub kernel: bool,
    pub mode: StackMode,
    /// At most this many frames.
    pub limit: Option<u32>,
}

/// `args->NAME`, with the field's format when the schema knew it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRef {
    pub name: String,
    pub field: Option<Field>,
}

/// A map: an index into [`Checked::maps`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MapId(pub u32);

/// A map of the program (`@name`): 64-bit signed values, under one integer
/// key or none (`@name = v`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapDecl {
    pub name: String,
    /// The key's type; None for a map without keys.
    pub key: Option<IntTy>,
    /// Where it is first used.
    pub span: Span,
}

/// A scratch variable: an index into [`ProbeProgram::vars`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VarId(pub u32);

/// A scratch variable of one probe (`$x`); one 8-byte slot each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Var {
    pub name: String,
    pub ty: Ty,
    /// Where it is first given a value.
    pub span: Span,
}

/// A typed expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TExpr {
    pub kind: TKind,
    pub ty: Ty,
    pub span: Span,
}

/// What a typed expression computes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TKind {
    /// A constant (literals and constant arithmetic are folded).
    Int(u64),
    /// A string literal.
    Str(String),
    Builtin(Builtin),
    /// A tracepoint field.
    Field(FieldRef),
    Var(VarId),
    Unary(UnOp, Box<TExpr>),
    /// Integer arithmetic, comparison or logic (`&&` and `||` short-circuit).
    Binary(BinOp, Box<TExpr>, Box<TExpr>),
    /// A run-time string compared with a literal: `comm == "echo"` (`eq`) or `!=`.
    StrCmp {
        eq: bool,
        value: Box<TExpr>,
        literal: String,
    },
    /// `str(ptr[, len])`: read a NUL-terminated user string.
    ReadStr {
        ptr: Box<TExpr>,
        len: Option<Box<TExpr>>,
    },
    Stack(StackSpec),
    /// The value of a map element (0 when absent).
    Map {
        map: MapId,
        key: Option<Box<TExpr>>,
    },
}

impl TExpr {
    /// A value fixed before the program runs: a literal, or `probe`/`func`.
    pub fn is_constant(&self) -> bool {
        matches!(self.kind, TKind::Int(_) | TKind::Str(_) | TKind::Builtin(Builtin::Probe | Builtin::Func))
    }
}

/// An output call site: user space looks it up by id to format what a probe sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteId(pub u32);

/// What user space does when a record of a site arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Site {
    /// Format the values with this format.
    Printf { format: Vec<Piece>, span: Span },
    /// Print the value with its type's default format and a newline.
    Print { span: Span },
    /// Print the wall-clock time with this strftime format.
    Time { format: String, span: Span },
    /// Stop tracing (after running END).
    Exit { span: Span },
}

/// A typed statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TStmt {
    Assign {
        var: VarId,
        value: TExpr,
    },
    If {
        cond: TExpr,
        then: Vec<TStmt>,
        otherwise: Vec<TStmt>,
    },
    /// Send the arguments (not the format: user space has it) under `site`.
    Printf {
        site: SiteId,
        args: Vec<TExpr>,
    },
    Print {
        site: SiteId,
        value: TExpr,
    },
    Time {
        site: SiteId,
    },
    Exit {
        site: SiteId,
    },
    /// `@m[key] = value` (`+=` and `++` are folded into the value).
    MapUpdate {
        map: MapId,
        key: Option<TExpr>,
        value: TExpr,
    },
    /// `delete(@m[key])`
    MapDelete {
        map: MapId,
        key: Option<TExpr>,
    },
}

/// One probe and the checked action it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeProgram {
    /// The probe; a tracepoint wildcard the schema knew is expanded, one
    /// program per event.
    pub probe: Probe,
    /// Index of its block in [`super::ast::Script::groups`].
    pub group: usize,
    pub predicate: Option<TExpr>,
    pub body: Vec<TStmt>,
    pub vars: Vec<Var>,
}

/// A program that passed the checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    pub programs: Vec<ProbeProgram>,
    /// Indexed by [`SiteId`]; shared by the probes of one block.
    pub sites: Vec<Site>,
    /// Indexed by [`MapId`].
    pub maps: Vec<MapDecl>,
    /// Things that look wrong but do not stop the program.
    pub warnings: Vec<Diagnostic>,
}

impl Checked {
    pub fn site(&self, id: SiteId) -> &Site {
        &self.sites[id.0 as usize]
    }
}
