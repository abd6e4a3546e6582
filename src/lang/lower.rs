//! Lowering: a checked program -> attach points, one [`ProgSpec`] per attach
//! point in the code generator's intermediate form (the same form the CLI's
//! probe flags become), and the table user space formats records with.
//!
//! Every output call (`printf`, `print`, `time`, `exit`) of every attach point
//! gets an *event id*: the kernel sends the id and the run-time values; the
//! format, the literals, `probe` and `func` stay here, in [`Event`].

use std::path::PathBuf;

use super::ast::{self, ProbeKind, Target, UnOp};
use super::diag::Diagnostic;
use super::format::Piece;
use super::ir::{Builtin, Checked, IntTy, ProbeProgram, Site, SiteId, StackSpec, TExpr, TKind, TStmt, Ty};
use super::source::Span;
use crate::codegen::{pt_regs, Ctx, Depth, Emit, Expr, ProgSpec, Space, Stmt, StringOp, Value};
use crate::elf::{self, ElfFile};
use crate::kallsyms::{FilterFunctions, Kallsyms};
use crate::plan::{Attach, Kind, Plan, Probe, Skipped};
use crate::record;
use crate::tracefs::{Field, Tracefs};
use crate::util::{glob_match, is_glob};

/// What the lowering needs to know about the system.
pub struct Env<'a> {
    pub tracefs: Option<&'a Tracefs>,
    pub kallsyms: Option<&'a Kallsyms>,
    pub filter_functions: Option<&'a FilterFunctions>,
    /// Why kernel functions cannot be probed here (no kprobes), if so.
    pub no_kprobes: Option<String>,
    /// Where relative paths (`uprobe:./file-io:...`) start.
    pub cwd: PathBuf,
    /// The `-c`/`-p` program: what `uprobe:FUNC` (no path) means.
    pub program: Option<&'a ElfFile>,
    /// Read a uprobe's string argument again when the function returns, if
    /// its page was not in memory yet at entry (off only to test it).
    pub retry_strings: bool,
}

/// A constant argument of an output call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Const {
    Int { value: u64, signed: bool },
    Str(String),
}

/// Where the formatter finds one argument of an output call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    /// `vals[slot]`, an integer of this type, or a pointer.
    Int { slot: usize, ty: IntTy, pointer: bool },
    /// The record's command name.
    Comm,
    /// The record's string, cut to `max` bytes (`str(p, n)` keeps n, as bpftrace 0.17 does).
    Str { max: Option<usize> },
    /// Known before the program ran.
    Const(Const),
    /// A stack id in `vals[slot]`.
    Stack { slot: usize, spec: StackSpec },
}

/// What user space does with the records of one event id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Printf {
        format: Vec<Piece>,
        args: Vec<Arg>,
    },
    Print(Arg),
    Time {
        format: String,
    },
    Exit,
    /// The string that the entry event `entry` could not read, read again at
    /// the function's return: it completes that event's line.
    Fill {
        entry: u32,
    },
}

/// One event id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub action: Action,
    /// The probe it comes from (`kprobe:vfs_open`), for messages.
    pub probe: String,
    /// The call in the script.
    pub span: Span,
}

/// A lowered program.
#[derive(Debug, Default)]
pub struct Lowered {
    /// The attach points (`hidden` is empty).
    pub plan: Plan,
    /// Indexed by event id.
    pub events: Vec<Event>,
    /// `BEGIN` and `END` programs (indices into the checked programs), run by trace itself.
    pub begin: Vec<usize>,
    pub end: Vec<usize>,
    /// Whether any program takes stack traces (the session then makes the map).
    pub stacks: bool,
}

/// One concrete place a probe attaches to.
struct Point {
    attach: Attach,
    ret: bool,
    kind: Kind,
    /// bpftrace's name for it (`uprobe:/path/file-io:native`): the `probe` builtin.
    name: String,
    /// The function or event (`func`).
    func: String,
}

/// Lowers every program of `checked`. Unknown files, functions and events
/// are diagnostics at the probe that named them.
pub fn lower(checked: &Checked, env: &Env<'_>) -> Result<Lowered, Vec<Diagnostic>> {
    let mut out = Lowered::default();
    let mut diags = Vec::new();
    // Uprobe entries whose string may need reading again at return.
    let mut pending_refills = Vec::new();
    for (index, program) in checked.programs.iter().enumerate() {
        match program.probe.kind {
            ProbeKind::Begin => out.begin.push(index),
            ProbeKind::End => out.end.push(index),
            _ => match points(&program.probe, env) {
                Ok(Resolved::Points(points)) => {
                    for point in points {
                        let mut refills = Vec::new();
                        let retry = env.retry_strings.then_some(&mut refills);
                        match lower_point(program, checked, &point, &mut out.events, retry) {
                            Ok(spec) => {
                                if !refills.is_empty() {
                                    pending_refills.push((point.attach.clone(), point.func.clone(), refills));
                                }
                                out.stacks |= spec.uses_stacks();
                                let id = out.plan.probes.len() as u32;
                                out.plan.probes.push(Probe {
                                    id,
                                    kind: point.kind,
                                    ret: point.ret,
                                    func: point.func,
                                    attach: point.attach,
                                    spec,
                                    values: Vec::new(),
                                    string_arg: None,
                                    show_comm: false,
                                    pair: id,
                                });
                            }
                            Err(d) => diags.push(d),
                        }
                    }
                }
                Ok(Resolved::Skipped(s)) => out.plan.skipped.push(s),
                Err(d) => diags.push(d),
            },
        }
    }
    if !diags.is_empty() {
        return Err(once_each(diags));
    }
    for (attach, func, entries) in pending_refills {
        add_refills(&mut out, attach, func, &entries);
    }
    Ok(out)
}

/// The same error at several probes (six probes naming a missing
/// `./file-io`) is reported at the first, with how many more there are.
fn once_each(diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut out: Vec<(Diagnostic, usize)> = Vec::new();
    for d in diags {
        match out.iter_mut().find(|(first, _)| first.message == d.message) {
            Some((_, more)) => *more += 1,
            None => out.push((d, 0)),
        }
    }
    out.into_iter()
        .map(|(d, more)| match more {
            0 => d,
            1 => d.help("one more probe names it too"),
            n => d.help(format!("{n} more probes name it too")),
        })
        .collect()
}

/// Makes the return of the function read again the strings its entry events
/// `entries` could not read: at the start of the script's own return probe on
/// it (before its predicate), or in a hidden one.
fn add_refills(out: &mut Lowered, attach: Attach, func: String, entries: &[u32]) {
    let mut refills = Vec::new();
    for &entry in entries {
        let id = out.events.len() as u32;
        let (probe, span) = (out.events[entry as usize].probe.clone(), out.events[entry as usize].span);
        out.events.push(Event { action: Action::Fill { entry }, probe, span });
        refills.push(Stmt::Emit(Emit {
            id,
            probe_id: false,
            values: Vec::new(),
            string: StringOp::Refill { pair: entry },
            depth: Depth::None,
            time: false,
            comm: false,
        }));
    }
    if let Some(ret) = out.plan.probes.iter_mut().find(|p| p.ret && p.attach == attach) {
        ret.spec.body.splice(0..0, refills);
        return;
    }
    let id = (out.plan.probes.len() + out.plan.hidden.len()) as u32;
    out.plan.hidden.push(Probe {
        id,
        kind: Kind::LibFunc,
        ret: true,
        func,
        attach,
        spec: ProgSpec { ctx: Ctx::PtRegs, body: refills, vars: 0, floor: false },
        values: Vec::new(),
        string_arg: None,
        show_comm: false,
        pair: id,
    });
}

enum Resolved {
    Points(Vec<Point>),
    /// A probe this kernel cannot offer (kprobes on a kernel without them).
    Skipped(Skipped),
}

/// A probe or function name as a script prints it ([`crate::escape::Style::Utf8`]).
fn shown(name: &str) -> String {
    crate::escape::escape_as(name.as_bytes(), crate::escape::Style::Utf8).into_owned()
}

fn error(span: Span, message: String, help: Option<String>) -> Diagnostic {
    let d = Diagnostic::error(span, message);
    match help {
        Some(h) => d.help(h),
        None => d,
    }
}

fn points(probe: &ast::Probe, env: &Env<'_>) -> Result<Resolved, Diagnostic> {
    let ret = probe.kind.is_return();
    match &probe.target {
        Target::Kernel { func } => kernel_points(probe, func, ret, env),
        Target::User { path, func } => {
            user_points(probe, path.as_ref(), func, ret, env).map(Resolved::Points)
        }
        Target::Tracepoint { category, event } => {
            let tfs = env.tracefs.ok_or_else(|| {
                error(probe.span, "tracepoints need tracefs, which trace could not mount".into(), None)
            })?;
            let fmt = tfs
                .event_format(&category.text, &event.text)
                .map_err(|e| error(event.span, e.to_string(), None))?;
            Ok(Resolved::Points(vec![Point {
                attach: Attach::Tracepoint {
                    category: category.text.clone(),
                    name: event.text.clone(),
                    id: fmt.id,
                },
                ret: false,
                kind: Kind::Syscall,
                name: format!("tracepoint:{}:{}", category.text, event.text),
                func: event.text.clone(),
            }]))
        }
        Target::None => unreachable!("BEGIN and END are not attached"),
    }
}

fn kernel_points(
    probe: &ast::Probe,
    func: &ast::Name,
    ret: bool,
    env: &Env<'_>,
) -> Result<Resolved, Diagnostic> {
    let kind_name = probe.kind.name();
    let names: Vec<(String, u64)> = if is_glob(&func.text) {
        let ks = env.kallsyms.ok_or_else(|| {
            error(
                func.span,
                "cannot expand a kernel function wildcard: /proc/kallsyms is not readable".into(),
                None,
            )
        })?;
        let mut found: Vec<(String, u64)> = ks
            .names()
            .filter(|n| glob_match(&func.text, n))
            .filter(|n| env.filter_functions.is_none_or(|ff| ff.contains(n)))
            .map(|n| (n.to_string(), ks.function(n).unwrap_or(0)))
            .collect();
        found.sort();
        found.dedup_by(|a, b| a.0 == b.0);
        if found.is_empty() {
            return Err(error(
                func.span,
                format!("no traceable kernel function matches `{}`", func.text),
                None,
            ));
        }
        found
    } else {
        // The planner's check, so that a name is judged alike in a script and with -k.
        let addr = crate::plan::check_kernel_function(&func.text, env.kallsyms, env.filter_functions)
            .map_err(|e| error(func.span, e.to_string(), None))?;
        vec![(func.text.clone(), addr)]
    };
    if let Some(why) = &env.no_kprobes {
        return Ok(Resolved::Skipped(Skipped {
            what: format!("{kind_name}:{}", func.text),
            why: why.clone(),
        }));
    }
    Ok(Resolved::Points(
        names
            .into_iter()
            .map(|(name, addr)| Point {
                attach: Attach::Kprobe { func: name.clone(), addr },
                ret,
                kind: Kind::KFunc,
                name: format!("{kind_name}:{name}"),
                func: name,
            })
            .collect(),
    ))
}

/// The file a uprobe's PATH names, as bpftrace finds it: a path (relative to
/// the current directory), else a library in the ld.so cache, else a program on
/// PATH.
fn user_file(path: &ast::Name, env: &Env<'_>) -> Result<PathBuf, Diagnostic> {
    let text = &path.text;
    let found = if text.contains('/') {
        let p = env.cwd.join(text);
        p.is_file().then_some(p)
    } else {
        elf::find_library(text).or_else(|| crate::process::find_program(text).ok())
    };
    let found = found.ok_or_else(|| {
        let help = if text.contains('/') {
            format!(
                "looked for {} (relative paths start in {})",
                crate::escape::path(&env.cwd.join(text)),
                crate::escape::path(&env.cwd)
            )
        } else {
            format!("`{text}` is neither a library in /etc/ld.so.cache nor a program on PATH; give a path")
        };
        error(path.span, format!("no file `{text}`"), Some(help))
    })?;
    Ok(std::fs::canonicalize(&found).unwrap_or(found))
}

fn user_points(
    probe: &ast::Probe,
    path: Option<&ast::Name>,
    func: &ast::Name,
    ret: bool,
    env: &Env<'_>,
) -> Result<Vec<Point>, Diagnostic> {
    let owned;
    let file: &ElfFile = match path {
        Some(p) => {
            let file = user_file(p, env)?;
            owned = ElfFile::open(&file).map_err(|e| error(p.span, e.to_string(), None))?;
            &owned
        }
        None => env.program.ok_or_else(|| {
            error(
                func.span,
                format!("`{}:{}` names no file: which program is it in?", probe.kind.name(), func.text),
                Some(format!(
                    "write the path (`{}:./file-io:{}`), or give the program with -c or -p",
                    probe.kind.name(),
                    func.text
                )),
            )
        })?,
    };
    let canon = elf::uprobe_path(file.path());
    let symbols = if is_glob(&func.text) {
        let mut all = if file.is_shared_library() { file.functions() } else { file.program_functions() };
        all.retain(|s| glob_match(&func.text, &s.name));
        all.dedup_by_key(|s| s.offset);
        if all.is_empty() {
            return Err(error(
                func.span,
                format!("no function matching `{}` in {}", func.text, crate::escape::path(&canon)),
                Some(format!("`trace -l '{}:*'` lists them", crate::escape::path(&canon))),
            ));
        }
        all
    } else {
        vec![file.resolve(&func.text).map_err(|e| error(func.span, e.to_string(), None))?]
    };
    let kind_name = probe.kind.name();
    let kind = if file.is_shared_library() { Kind::LibFunc } else { Kind::ProgFunc };
    // `probe` names the path as written (`uprobe:./file-io:native`), as bpftrace does.
    let shown = path.map_or_else(|| canon.display().to_string(), |p| p.text.clone());
    Ok(symbols
        .into_iter()
        .map(|sym| Point {
            attach: Attach::Uprobe { path: canon.clone(), offset: sym.offset, symbol: Box::new(sym.clone()) },
            ret,
            kind,
            name: format!("{kind_name}:{shown}:{}", sym.name),
            func: sym.name,
        })
        .collect())
}

/// Lowers one program for one attach point.
/// `refills`: when given and the point is a uprobe entry, the events whose
/// user string is stashed for the return probe when unreadable are added to it.
fn lower_point(
    program: &ProbeProgram,
    checked: &Checked,
    point: &Point,
    events: &mut Vec<Event>,
    refills: Option<&mut Vec<u32>>,
) -> Result<ProgSpec, Diagnostic> {
    let ctx = match point.attach {
        Attach::Tracepoint { .. } => Ctx::Tracepoint,
        _ => Ctx::PtRegs,
    };
    let uprobe_entry = matches!(point.attach, Attach::Uprobe { .. }) && !point.ret;
    let refills = refills.filter(|_| uprobe_entry);
    let mut lw = Lowerer { checked, point, events, refills };
    let mut body = Vec::new();
    if let Some(pred) = &program.predicate {
        body.push(Stmt::Require(lw.expr(pred)?));
    }
    body.extend(lw.stmts(&program.body)?);
    Ok(ProgSpec { ctx, body, vars: program.vars.len() as u32, floor: false })
}

struct Lowerer<'a> {
    checked: &'a Checked,
    point: &'a Point,
    events: &'a mut Vec<Event>,
    refills: Option<&'a mut Vec<u32>>,
}

impl Lowerer<'_> {
    fn stmts(&mut self, stmts: &[TStmt]) -> Result<Vec<Stmt>, Diagnostic> {
        let mut out = Vec::new();
        for s in stmts {
            match s {
                TStmt::Assign { var, value } => {
                    out.push(Stmt::Assign { var: var.0, value: self.expr(value)? })
                }
                TStmt::If { cond, then, otherwise } => out.push(Stmt::If {
                    cond: self.expr(cond)?,
                    then: self.stmts(then)?,
                    otherwise: self.stmts(otherwise)?,
                }),
                TStmt::Printf { site, args } => {
                    let format = match self.checked.site(*site) {
                        Site::Printf { format, .. } => format.clone(),
                        other => unreachable!("a printf's site is a printf: {other:?}"),
                    };
                    let (emit, args) = self.output(args)?;
                    out.push(self.emit(emit, Action::Printf { format, args }, *site));
                }
                TStmt::Print { value, site } => {
                    let (emit, mut args) = self.output(std::slice::from_ref(value))?;
                    out.push(self.emit(emit, Action::Print(args.remove(0)), *site));
                }
                TStmt::Time { site } => {
                    let format = match self.checked.site(*site) {
                        Site::Time { format, .. } => format.clone(),
                        other => unreachable!("a time's site is a time: {other:?}"),
                    };
                    out.push(self.emit(Emit::default_for(), Action::Time { format }, *site));
                }
                TStmt::Exit { site } => {
                    out.push(self.emit(Emit::default_for(), Action::Exit, *site));
                    out.push(Stmt::Return);
                }
                TStmt::MapUpdate { map, key, value } => out.push(Stmt::MapUpdate {
                    map: map.0,
                    key: key.as_ref().map(|k| self.expr(k)).transpose()?,
                    value: self.expr(value)?,
                }),
                TStmt::MapDelete { map, key } => out.push(Stmt::MapDelete {
                    map: map.0,
                    key: key.as_ref().map(|k| self.expr(k)).transpose()?,
                }),
            }
        }
        Ok(out)
    }

    /// Registers an event id for this output call and returns its statement.
    fn emit(&mut self, mut emit: Emit, action: Action, site: SiteId) -> Stmt {
        emit.id = self.events.len() as u32;
        let span = match self.checked.site(site) {
            Site::Printf { span, .. }
            | Site::Print { span }
            | Site::Time { span, .. }
            | Site::Exit { span } => *span,
        };
        self.events.push(Event { action, probe: self.point.name.clone(), span });
        if let (Some(refills), StringOp::Read { space: Space::User, pair, .. }) =
            (&mut self.refills, &mut emit.string)
        {
            *pair = Some(emit.id);
            refills.push(emit.id);
        }
        Stmt::Emit(emit)
    }

    /// The record of an output call: run-time integers in `vals` (in order),
    /// the one run-time string in `str`, `comm` from the record, constants here.
    fn output(&mut self, args: &[TExpr]) -> Result<(Emit, Vec<Arg>), Diagnostic> {
        let mut emit = Emit::default_for();
        let mut out = Vec::new();
        for a in args {
            let arg = match (&a.kind, a.ty) {
                (TKind::Int(v), Ty::Int(t)) => Arg::Const(Const::Int { value: *v, signed: t.signed }),
                (TKind::Str(s), _) => Arg::Const(Const::Str(s.clone())),
                // Names from ELF files and paths (a wildcard's matches): escaped,
                // as the strings read at run time are.
                (TKind::Builtin(Builtin::Probe), _) => Arg::Const(Const::Str(shown(&self.point.name))),
                (TKind::Builtin(Builtin::Func), _) => Arg::Const(Const::Str(shown(&self.point.func))),
                (TKind::Builtin(Builtin::Comm), _) => {
                    emit.comm = true;
                    Arg::Comm
                }
                (TKind::ReadStr { ptr, len }, _) => {
                    let max = match len.as_deref().map(|l| &l.kind) {
                        None => None,
                        // bpftrace 0.17 keeps n characters.
                        Some(TKind::Int(n)) => Some(*n as usize),
                        Some(_) => {
                            return Err(error(
                                a.span,
                                "a length for str() that is not a constant is not supported yet".into(),
                                Some("write a number, as in str(arg0, 16)".into()),
                            ))
                        }
                    };
                    let ptr = self.expr(ptr)?;
                    self.string(&mut emit, a.span, ptr, Space::User)?;
                    Arg::Str { max }
                }
                (TKind::Field(f), Ty::Str) => {
                    let field = known(f.field.as_ref(), a.span)?;
                    if field.data_loc {
                        return Err(error(
                            a.span,
                            format!("`args->{}` is a __data_loc string, which is not supported yet", f.name),
                            None,
                        ));
                    }
                    self.string(&mut emit, a.span, Expr::CtxAddr(field.offset as i16), Space::Kernel)?;
                    Arg::Str { max: None }
                }
                (TKind::Stack(spec), _) => {
                    let slot = self.value(&mut emit, a.span, Expr::StackId { user: !spec.kernel })?;
                    Arg::Stack { slot, spec: *spec }
                }
                (_, Ty::Int(ty)) => {
                    let slot = self.value(&mut emit, a.span, self.expr(a)?)?;
                    Arg::Int { slot, ty, pointer: false }
                }
                (_, Ty::Ptr) => {
                    let slot = self.value(&mut emit, a.span, self.expr(a)?)?;
                    Arg::Int { slot, ty: IntTy::U64, pointer: true }
                }
                _ => {
                    return Err(error(a.span, format!("{} cannot be printed yet", a.ty), None));
                }
            };
            out.push(arg);
        }
        Ok((emit, out))
    }

    fn value(&self, emit: &mut Emit, span: Span, e: Expr) -> Result<usize, Diagnostic> {
        if emit.values.len() == record::NVALS {
            return Err(error(
                span,
                format!("at most {} run-time values fit in one call for now", record::NVALS),
                None,
            ));
        }
        emit.values.push(e);
        Ok(emit.values.len() - 1)
    }

    fn string(&self, emit: &mut Emit, span: Span, ptr: Expr, space: Space) -> Result<(), Diagnostic> {
        if emit.string != StringOp::None {
            return Err(error(
                span,
                "one run-time string (besides comm) fits in one call for now".into(),
                None,
            ));
        }
        emit.string = StringOp::Read { ptr, pair: None, space };
        Ok(())
    }

    fn expr(&self, e: &TExpr) -> Result<Expr, Diagnostic> {
        Ok(match &e.kind {
            TKind::Int(v) => Expr::Const(*v),
            TKind::Builtin(b) => match b {
                Builtin::Pid => Expr::Pid,
                Builtin::Tid => Expr::Tid,
                Builtin::Uid => Expr::Uid,
                Builtin::Cpu => Expr::Cpu,
                Builtin::Nsecs => Expr::Nsecs,
                Builtin::Retval => Expr::Ctx(Value::Reg(pt_regs::AX)),
                Builtin::Arg(n) => Expr::Ctx(Value::Reg(pt_regs::ARGS[*n as usize])),
                Builtin::Comm | Builtin::Probe | Builtin::Func => {
                    return Err(error(e.span, "a string here is not supported yet".into(), None))
                }
            },
            TKind::Field(f) => {
                let field = known(f.field.as_ref(), e.span)?;
                let value = Expr::Ctx(Value::Field { offset: field.offset as i16, size: field.size as u8 });
                if field.signed && field.size < 8 {
                    Expr::SignExtend(Box::new(value), (field.size * 8) as u8)
                } else {
                    value
                }
            }
            TKind::Var(v) => Expr::Var(v.0),
            TKind::Map { map, key } => Expr::MapRead {
                map: map.0,
                key: key.as_deref().map(|k| self.expr(k)).transpose()?.map(Box::new),
            },
            TKind::Unary(op, inner) => {
                let inner = Box::new(self.expr(inner)?);
                match op {
                    UnOp::Neg => Expr::Neg(inner),
                    UnOp::Not => Expr::Not(inner),
                    UnOp::BitNot => Expr::BitNot(inner),
                }
            }
            TKind::Binary(op, l, r) => Expr::Binary {
                op: *op,
                signed: super::check::signed_operation(l, r),
                lhs: Box::new(self.expr(l)?),
                rhs: Box::new(self.expr(r)?),
            },
            TKind::StrCmp { eq, value, literal } => {
                if literal.len() > crate::codegen::MAX_STR_LITERAL {
                    return Err(error(
                        e.span,
                        format!(
                            "a string literal to compare with is at most {} bytes",
                            crate::codegen::MAX_STR_LITERAL
                        ),
                        None,
                    ));
                }
                let literal = literal.as_bytes().to_vec();
                match &value.kind {
                    TKind::Builtin(Builtin::Comm) => Expr::CommEq { eq: *eq, literal },
                    TKind::ReadStr { ptr, .. } => {
                        Expr::StrEq { eq: *eq, ptr: Box::new(self.expr(ptr)?), space: Space::User, literal }
                    }
                    TKind::Field(f) => {
                        let field = known(f.field.as_ref(), value.span)?;
                        Expr::StrEq {
                            eq: *eq,
                            ptr: Box::new(Expr::CtxAddr(field.offset as i16)),
                            space: Space::Kernel,
                            literal,
                        }
                    }
                    TKind::Builtin(Builtin::Probe | Builtin::Func) => {
                        let name = if matches!(value.kind, TKind::Builtin(Builtin::Probe)) {
                            &self.point.name
                        } else {
                            &self.point.func
                        };
                        Expr::Const(u64::from((name.as_bytes() == literal.as_slice()) == *eq))
                    }
                    _ => return Err(error(value.span, "this comparison is not supported yet".into(), None)),
                }
            }
            TKind::Str(_) | TKind::ReadStr { .. } | TKind::Stack(_) => {
                return Err(error(e.span, format!("{} is not supported here yet", e.ty), None))
            }
        })
    }
}

impl Emit {
    /// An emit with nothing in it yet (its id is given by [`Lowerer::emit`]).
    fn default_for() -> Emit {
        Emit {
            id: 0,
            probe_id: false,
            values: Vec::new(),
            string: StringOp::None,
            depth: Depth::None,
            time: false,
            comm: false,
        }
    }
}

fn known(field: Option<&Field>, span: Span) -> Result<&Field, Diagnostic> {
    field.ok_or_else(|| error(span, "this tracepoint's format is unknown (no tracefs)".into(), None))
}
