//! The parsed program, as written: names are not resolved and nothing is typed
//! yet (that is [`super::check`]'s job). Every node keeps its [`Span`].

use std::fmt;

use super::source::Span;

/// A whole program: its action blocks in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    pub groups: Vec<Group>,
}

/// One action block and the probes that share it: `a, b /pred/ { ... }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub probes: Vec<Probe>,
    pub predicate: Option<Expr>,
    pub body: Block,
}

/// The kinds of probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Kprobe,
    Kretprobe,
    Uprobe,
    Uretprobe,
    Tracepoint,
    Begin,
    End,
}

impl ProbeKind {
    /// bpftrace's full name of the kind (`kprobe`, `BEGIN`).
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Kprobe => "kprobe",
            ProbeKind::Kretprobe => "kretprobe",
            ProbeKind::Uprobe => "uprobe",
            ProbeKind::Uretprobe => "uretprobe",
            ProbeKind::Tracepoint => "tracepoint",
            ProbeKind::Begin => "BEGIN",
            ProbeKind::End => "END",
        }
    }

    /// A return probe (`kretprobe`, `uretprobe`): `retval` is set, arguments are gone.
    pub fn is_return(self) -> bool {
        matches!(self, ProbeKind::Kretprobe | ProbeKind::Uretprobe)
    }

    /// A probe on a function, entry or return (`kprobe` ... `uretprobe`).
    pub fn is_function(self) -> bool {
        matches!(self, ProbeKind::Kprobe | ProbeKind::Kretprobe | ProbeKind::Uprobe | ProbeKind::Uretprobe)
    }

    /// `BEGIN` or `END`: runs once, in trace itself, not at a kernel event.
    pub fn is_special(self) -> bool {
        matches!(self, ProbeKind::Begin | ProbeKind::End)
    }
}

/// A name as written, with its place (a function, a path, a field, a variable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

/// What a probe attaches to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `BEGIN`, `END`.
    None,
    /// `kprobe:FUNC`, `kretprobe:FUNC` (wildcards allowed).
    Kernel { func: Name },
    /// `uprobe:PATH:FUNC`, `uretprobe:PATH:FUNC`. PATH may be relative
    /// (`./file-io`) or a library name (`libc`); without it (`uprobe:FUNC`) the
    /// function is looked up in the traced command (`-c`/`-p`).
    User { path: Option<Name>, func: Name },
    /// `tracepoint:CATEGORY:EVENT`.
    Tracepoint { category: Name, event: Name },
}

/// One probe of a block's probe list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub kind: ProbeKind,
    pub target: Target,
    /// The whole probe name.
    pub span: Span,
    /// The probe type as written (`k`, `kprobe`).
    pub kind_span: Span,
}

impl fmt::Display for Probe {
    /// The probe with its full type name: `kprobe:vfs_open`, `uprobe:./file-io:native`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.name())?;
        match &self.target {
            Target::None => Ok(()),
            Target::Kernel { func } => write!(f, ":{}", func.text),
            Target::User { path: Some(p), func } => write!(f, ":{}:{}", p.text, func.text),
            Target::User { path: None, func } => write!(f, ":{}", func.text),
            Target::Tracepoint { category, event } => write!(f, ":{}:{}", category.text, event.text),
        }
    }
}

/// `{ statements }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    /// The `{` and the `}`.
    pub open: Span,
    pub close: Span,
}

/// A statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stmt {
    /// An expression, usually a call: `printf(...)`, `exit()`.
    Expr(Expr),
    /// `$x = value`; `$x += v` is `op: Some(Add)`, and `$x++` is `$x += 1`.
    Assign { var: Name, op: Option<BinOp>, value: Expr, span: Span },
    /// `@name[key] = value`; `@m[k] += v` is `op: Some(Add)`, `@m[k]++` is `@m[k] += 1`.
    MapAssign { map: Expr, op: Option<BinOp>, value: Expr, span: Span },
    /// `if (cond) { } else { }`; `else if` is an else block holding one `If`.
    If { cond: Expr, then: Block, otherwise: Option<Block>, span: Span },
}

/// Binary operators, loosest-binding first in [`BinOp::precedence`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Or,
    And,
    BitOr,
    BitXor,
    BitAnd,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Shl,
    Shr,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    /// Higher binds tighter (C's order).
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And => 2,
            BinOp::BitOr => 3,
            BinOp::BitXor => 4,
            BinOp::BitAnd => 5,
            BinOp::Eq | BinOp::Ne => 6,
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => 7,
            BinOp::Shl | BinOp::Shr => 8,
            BinOp::Add | BinOp::Sub => 9,
            BinOp::Mul | BinOp::Div | BinOp::Rem => 10,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::BitOr => "|",
            BinOp::BitXor => "^",
            BinOp::BitAnd => "&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }

    /// `== != < <= > >=`
    pub fn is_comparison(self) -> bool {
        matches!(self, BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge)
    }

    /// `&& ||`
    pub fn is_logical(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or)
    }
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnOp {
    /// `-x`
    Neg,
    /// `!x`
    Not,
    /// `~x`
    BitNot,
}

impl UnOp {
    pub fn symbol(self) -> &'static str {
        match self {
            UnOp::Neg => "-",
            UnOp::Not => "!",
            UnOp::BitNot => "~",
        }
    }
}

/// An expression and its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// What an expression is, before names are resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExprKind {
    Int(u64),
    Str(String),
    /// A bare name: a builtin such as `comm` or `arg0`, or an unknown one.
    Ident(String),
    /// `$name`
    Var(String),
    /// `@name` or `@name[keys]` (not supported yet).
    Map {
        name: String,
        keys: Vec<Expr>,
    },
    /// `base->field` (`arrow`) or `base.field`; only `args` has fields.
    Field {
        base: Box<Expr>,
        field: Name,
        arrow: bool,
    },
    /// `name(args)`
    Call {
        func: Name,
        args: Vec<Expr>,
    },
    Unary {
        op: UnOp,
        expr: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
}
