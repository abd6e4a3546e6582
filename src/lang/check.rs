//! The checker: [`Script`] -> [`Checked`]. It resolves names (builtins,
//! functions, variables, tracepoint fields), types every expression, matches
//! printf formats with their arguments, and applies the rules of each probe
//! kind (`retval` only in return probes, `args` only in tracepoints, ...).
//! It reports every error it finds, not only the first.

use crate::util::{glob_match, is_glob};
use std::collections::{HashMap, HashSet};

use super::ast::*;
use super::diag::suggest as close_matches;
use super::diag::Diagnostic;
use super::format::{parse_format, specs, Conv};
use super::ir::*;
use super::lexer::decode_string;
use super::schema::Schema;
use super::source::{Source, Span};
use crate::record::{NVALS, STR_LEN};
use crate::tracefs::{EventFormat, Field};

/// Checks a parsed program. On failure, the diagnostics (errors and warnings).
pub fn check(script: &Script, src: &Source, schema: &dyn Schema) -> Result<Checked, Vec<Diagnostic>> {
    let mut ck = Checker {
        src,
        schema,
        diags: Vec::new(),
        seen: HashSet::new(),
        sites: Vec::new(),
        site_ids: HashMap::new(),
        maps: Vec::new(),
    };
    let mut programs = Vec::new();
    for (group_index, group) in script.groups.iter().enumerate() {
        for probe in &group.probes {
            for (probe, format) in ck.expand(probe) {
                programs.push(ck.program(group_index, group, probe, format));
            }
        }
    }
    if ck.diags.iter().any(|d| d.severity == super::diag::Severity::Error) {
        return Err(ck.diags);
    }
    Ok(Checked { programs, sites: ck.sites, maps: ck.maps, warnings: ck.diags })
}

/// The builtins that are values, by name.
const BUILTINS: [(&str, Builtin); 15] = [
    ("comm", Builtin::Comm),
    ("pid", Builtin::Pid),
    ("tid", Builtin::Tid),
    ("uid", Builtin::Uid),
    ("cpu", Builtin::Cpu),
    ("nsecs", Builtin::Nsecs),
    ("retval", Builtin::Retval),
    ("arg0", Builtin::Arg(0)),
    ("arg1", Builtin::Arg(1)),
    ("arg2", Builtin::Arg(2)),
    ("arg3", Builtin::Arg(3)),
    ("arg4", Builtin::Arg(4)),
    ("arg5", Builtin::Arg(5)),
    ("probe", Builtin::Probe),
    ("func", Builtin::Func),
];

/// Every name that may stand alone, for "did you mean".
const NAMES: [&str; 18] = [
    "comm", "pid", "tid", "uid", "cpu", "nsecs", "retval", "arg0", "arg1", "arg2", "arg3", "arg4", "arg5",
    "args", "probe", "func", "kstack", "ustack",
];

/// Every function, for "did you mean".
const FUNCTIONS: [&str; 7] = ["printf", "print", "str", "exit", "time", "kstack", "ustack"];

/// The functions that are statements (they send something to user space).
const OUTPUT_FUNCTIONS: [&str; 4] = ["printf", "print", "exit", "time"];

/// bpftrace builtins and functions that trace does not offer yet.
const LATER: [&str; 44] = [
    "gid",
    "cgroup",
    "curtask",
    "rand",
    "elapsed",
    "jiffies",
    "ncpus",
    "ppid",
    "pcomm",
    "probetype",
    "cpid",
    "numaid",
    "username",
    "sarg0",
    "sarg1",
    "sarg2",
    "ksym",
    "usym",
    "kaddr",
    "uaddr",
    "reg",
    "signal",
    "override",
    "system",
    "cat",
    "join",
    "buf",
    "ntop",
    "pton",
    "strftime",
    "strncmp",
    "strcontains",
    "sizeof",
    "offsetof",
    "macaddr",
    "path",
    "len",
    "errorf",
    "cgroup_path",
    "kptr",
    "uptr",
    "bswap",
    "strerror",
    "percpu_kaddr",
];

/// Functions that only make sense with maps.
const MAP_FUNCTIONS: [&str; 13] = [
    "count", "sum", "avg", "min", "max", "stats", "hist", "lhist", "delete", "clear", "zero", "has_key",
    "tseries",
];

const MAP_HELP: &str =
    "maps take integers (@m[key] = v, ++, +=), count() and sum(v); print what else you need with printf";

/// The type of comparisons and logic: 0 or 1.
const BOOL: Ty = Ty::Int(IntTy::U64);

/// The longest command name the kernel keeps (TASK_COMM_LEN 16, with its NUL;
/// include/linux/sched.h).
const COMM_MAX: usize = 15;

/// The deepest stack a BPF stack map records by default
/// (kernel.perf_event_max_stack, PERF_MAX_STACK_DEPTH in include/uapi/linux/perf_event.h).
const MAX_FRAMES: u64 = 127;

fn builtin_named(name: &str) -> Option<Builtin> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

struct Checker<'a> {
    src: &'a Source,
    schema: &'a dyn Schema,
    diags: Vec<Diagnostic>,
    /// (span, key) of the errors reported: a block shared by several probes
    /// reports each mistake once.
    seen: HashSet<(Span, String)>,
    sites: Vec<Site>,
    site_ids: HashMap<usize, SiteId>,
    maps: Vec<MapDecl>,
}

/// What the checker knows while checking one probe's block.
struct Cx {
    probe: Probe,
    /// The tracepoint's format, when the schema knew it.
    format: Option<EventFormat>,
    /// Visible variables, innermost block last.
    scopes: Vec<HashMap<String, VarId>>,
    vars: Vec<Var>,
    /// Variables of blocks already closed, and where they were given a value.
    closed: HashMap<String, Span>,
}

impl Checker<'_> {
    fn report(&mut self, key: String, d: Diagnostic) {
        if self.seen.insert((d.span, key)) {
            self.diags.push(d);
        }
    }

    fn error(&mut self, d: Diagnostic) {
        self.report(d.message.clone(), d);
    }

    /// The text of a span, for messages: `args->filename`, or "this value" if long.
    fn text(&self, span: Span) -> String {
        let t = self.src.slice(span);
        if t.len() <= 40 && !t.contains('\n') {
            format!("`{t}`")
        } else {
            "this value".to_string()
        }
    }

    fn program(
        &mut self,
        group_index: usize,
        group: &Group,
        probe: Probe,
        format: Option<EventFormat>,
    ) -> ProbeProgram {
        let mut cx =
            Cx { probe, format, scopes: vec![HashMap::new()], vars: Vec::new(), closed: HashMap::new() };
        let predicate = group.predicate.as_ref().and_then(|p| self.condition(&mut cx, p));
        let body = self.block(&mut cx, &group.body.stmts);
        ProbeProgram { probe: cx.probe, group: group_index, predicate, body, vars: cx.vars }
    }

    /// Checks a tracepoint's names against the schema; a wildcard becomes one
    /// probe per matching event. Other probes pass through.
    fn expand(&mut self, probe: &Probe) -> Vec<(Probe, Option<EventFormat>)> {
        let Target::Tracepoint { category, event } = &probe.target else {
            return vec![(probe.clone(), None)];
        };
        if is_glob(&category.text) {
            self.error(Diagnostic::error(
                category.span,
                "wildcards in tracepoint categories are not supported yet",
            ));
            return vec![];
        }
        if let Some(categories) = self.schema.categories() {
            if !categories.contains(&category.text) {
                let d = Diagnostic::error(
                    category.span,
                    format!("unknown tracepoint category `{}`", category.text),
                )
                .did_you_mean(&close_matches(&category.text, &categories));
                self.error(d);
                return vec![];
            }
        }
        let Some(events) = self.schema.events(&category.text) else {
            return vec![(probe.clone(), None)];
        };
        if !is_glob(&event.text) {
            if events.contains(&event.text) {
                return vec![(probe.clone(), self.schema.format(&category.text, &event.text))];
            }
            let d = Diagnostic::error(
                event.span,
                format!("there is no tracepoint `{}` in category `{}`", event.text, category.text),
            )
            .did_you_mean(&close_matches(&event.text, &events));
            self.error(d);
            return vec![];
        }
        let matched: Vec<&String> = events.iter().filter(|e| glob_match(&event.text, e)).collect();
        if matched.is_empty() {
            let msg = format!("no tracepoint of category `{}` matches `{}`", category.text, event.text);
            self.error(Diagnostic::error(event.span, msg));
        }
        matched
            .into_iter()
            .map(|name| {
                let mut p = probe.clone();
                let ev = Name { text: name.clone(), span: event.span };
                p.target = Target::Tracepoint { category: category.clone(), event: ev };
                (p, self.schema.format(&category.text, name))
            })
            .collect()
    }

    // ---- statements ----

    fn block(&mut self, cx: &mut Cx, stmts: &[Stmt]) -> Vec<TStmt> {
        cx.scopes.push(HashMap::new());
        let out = stmts.iter().filter_map(|s| self.stmt(cx, s)).collect();
        let scope = cx.scopes.pop().unwrap_or_default();
        for (name, id) in scope {
            cx.closed.insert(name, cx.vars[id.0 as usize].span);
        }
        out
    }

    fn stmt(&mut self, cx: &mut Cx, stmt: &Stmt) -> Option<TStmt> {
        match stmt {
            Stmt::Expr(e) => match &e.kind {
                ExprKind::Call { func, args } if OUTPUT_FUNCTIONS.contains(&func.text.as_str()) => {
                    self.output(cx, func, args, e.span)
                }
                ExprKind::Call { func, args } if func.text == "delete" => self.map_delete(cx, args, e.span),
                ExprKind::Ident(name) if name == "exit" => {
                    Some(TStmt::Exit { site: self.site(e.span, Site::Exit { span: e.span }) })
                }
                _ => {
                    self.expr(cx, e)?;
                    let d = Diagnostic::warning(e.span, "this value is computed, then thrown away")
                        .help("to see it, print it: print(...)");
                    self.error(d);
                    None
                }
            },
            Stmt::Assign { var, op, value, span } => self.assign(cx, var, *op, value, *span),
            Stmt::MapAssign { map, op, value, span } => self.map_assign(cx, map, *op, value, *span),
            Stmt::If { cond, then, otherwise, .. } => {
                let cond = self.condition(cx, cond);
                let then = self.block(cx, &then.stmts);
                let otherwise = otherwise.as_ref().map(|b| self.block(cx, &b.stmts)).unwrap_or_default();
                Some(TStmt::If { cond: cond?, then, otherwise })
            }
        }
    }

    fn assign(
        &mut self,
        cx: &mut Cx,
        var: &Name,
        op: Option<BinOp>,
        value: &Expr,
        span: Span,
    ) -> Option<TStmt> {
        let value = self.expr(cx, value);
        let value = match op {
            None => value?,
            Some(op) => {
                let id = self.lookup(cx, &var.text, var.span)?;
                let current = TExpr { kind: TKind::Var(id), ty: cx.vars[id.0 as usize].ty, span: var.span };
                self.binary(op, current, value?, span)?
            }
        };
        let what = match value.ty {
            Ty::Int(_) | Ty::Ptr => None,
            Ty::Str => Some("strings"),
            Ty::Stack => Some("stack traces"),
            Ty::Void => {
                self.error(Diagnostic::error(
                    value.span,
                    format!("{} gives no value to assign", self.text(value.span)),
                ));
                return None;
            }
        };
        if let Some(what) = what {
            let d = Diagnostic::error(value.span, format!("{what} cannot be kept in variables yet"))
                .help("use the value where it is needed, e.g. printf(\"%s\\n\", comm)");
            self.error(d);
            return None;
        }
        let id = match cx.scopes.iter().rev().find_map(|s| s.get(&var.text)) {
            Some(&id) => id,
            None => {
                let id = VarId(cx.vars.len() as u32);
                cx.vars.push(Var { name: var.text.clone(), ty: value.ty, span: var.span });
                cx.scopes.last_mut().expect("a scope is open").insert(var.text.clone(), id);
                id
            }
        };
        Some(TStmt::Assign { var: id, value })
    }

    fn lookup(&mut self, cx: &Cx, name: &str, span: Span) -> Option<VarId> {
        if let Some(&id) = cx.scopes.iter().rev().find_map(|s| s.get(name)) {
            return Some(id);
        }
        let d = if name == "#" || name.bytes().all(|b| b.is_ascii_digit()) {
            Diagnostic::error(span, format!("positional parameters (`${name}`) are not supported yet"))
        } else if let Some(&at) = cx.closed.get(name) {
            Diagnostic::error(span, format!("`${name}` is used outside the block where it is given a value"))
                .note(at, "it is given a value here, inside a block that ends before this use")
                .help(format!("give ${name} a value before the block, e.g. ${name} = 0;"))
        } else {
            let visible: Vec<String> = cx.scopes.iter().flat_map(|s| s.keys().cloned()).collect();
            let close: Vec<String> =
                close_matches(name, &visible).into_iter().map(|v| format!("${v}")).collect();
            Diagnostic::error(span, format!("`${name}` is used before it is given a value"))
                .did_you_mean(&close)
        };
        self.error(d);
        None
    }

    /// Output statements: printf, print, exit, time.
    fn output(&mut self, cx: &mut Cx, func: &Name, args: &[Expr], span: Span) -> Option<TStmt> {
        match func.text.as_str() {
            "printf" => self.printf(cx, args, span),
            "print" => {
                if args.len() != 1 {
                    self.error(Diagnostic::error(span, "print takes one value, as in print(comm)"));
                    return None;
                }
                let value = self.value(cx, &args[0])?;
                self.fits_in_a_record(std::slice::from_ref(&value), "print");
                Some(TStmt::Print { site: self.site(span, Site::Print { span }), value })
            }
            "exit" => {
                if let Some(a) = args.first() {
                    self.error(Diagnostic::error(a.span, "exit() takes no arguments"));
                    return None;
                }
                Some(TStmt::Exit { site: self.site(span, Site::Exit { span }) })
            }
            _ => {
                let format = match args {
                    [] => "%H:%M:%S\n".to_string(),
                    [Expr { kind: ExprKind::Str(s), .. }] => s.clone(),
                    _ => {
                        let d = Diagnostic::error(span, "time takes an optional strftime format string")
                            .help("write time() or time(\"%H:%M:%S\\n\")");
                        self.error(d);
                        return None;
                    }
                };
                Some(TStmt::Time { site: self.site(span, Site::Time { format, span }) })
            }
        }
    }

    fn printf(&mut self, cx: &mut Cx, args: &[Expr], span: Span) -> Option<TStmt> {
        let Some((first, rest)) = args.split_first() else {
            self.error(
                Diagnostic::error(span, "printf needs a format string")
                    .help("write printf(\"...\\n\", values...)"),
            );
            return None;
        };
        let ExprKind::Str(fmt) = &first.kind else {
            self.error(
                Diagnostic::error(first.span, "the format of printf must be a string in double quotes")
                    .help("write printf(\"%d\\n\", value)"),
            );
            return None;
        };
        let pieces = match parse_format(fmt) {
            Ok(p) => p,
            Err(e) => {
                let mut d = Diagnostic::error(self.format_span(first.span, e.at), e.message);
                if let Some(h) = e.help {
                    d = d.help(h);
                }
                self.error(d);
                return None;
            }
        };
        let values: Vec<Option<TExpr>> = rest.iter().map(|a| self.value(cx, a)).collect();
        let conversions: Vec<_> = specs(&pieces).collect();
        let mut ok = true;
        if rest.len() < conversions.len() {
            let spec = conversions[rest.len()];
            let msg = format!(
                "`{}` has no value to print: the format has {} but printf has {} after it",
                spec.text,
                counted(conversions.len(), "conversion"),
                counted(rest.len(), "value"),
            );
            let d = Diagnostic::error(self.format_span(first.span, spec.at), msg)
                .help(format!("add the value for `{}` after the format, separated by a comma", spec.text));
            self.error(d);
            ok = false;
        } else if rest.len() > conversions.len() {
            let extra = &rest[conversions.len()];
            let msg = format!(
                "printf has more values than its format has conversions: nothing prints {}",
                self.text(extra.span)
            );
            let d = Diagnostic::error(extra.span, msg).help(
                "add a conversion for it to the format (%d for integers, %s for strings), or remove it",
            );
            self.error(d);
            ok = false;
        }
        for (spec, value) in conversions.iter().zip(&values) {
            if let Some(v) = value {
                ok &= self.conversion_fits(spec.conv, &spec.text, v);
            }
        }
        let values: Option<Vec<TExpr>> = values.into_iter().collect();
        let values = values?;
        ok &= self.fits_in_a_record(&values, "printf");
        let site = self.site(span, Site::Printf { format: pieces, span });
        ok.then_some(TStmt::Printf { site, args: values })
    }

    /// Whether `v` can be printed by a `conv` conversion; reports it if not.
    fn conversion_fits(&mut self, conv: Conv, spec: &str, v: &TExpr) -> bool {
        let fits = match conv {
            Conv::Str => matches!(v.ty, Ty::Str | Ty::Stack),
            _ => v.ty.is_integer(),
        };
        if fits {
            return true;
        }
        let what = if conv == Conv::Str { "a string" } else { "an integer" };
        let mut d = Diagnostic::error(
            v.span,
            format!("`{spec}` prints {what}, but {} is {}", self.text(v.span), self.describe(v)),
        );
        d = match (conv, v.ty) {
            (Conv::Str, Ty::Ptr) => {
                d.help(format!("read the string it points to: str({})", self.src.slice(v.span)))
            }
            (Conv::Str, _) => d.help("print integers with %d (or %u, %x)"),
            (_, Ty::Str | Ty::Stack) => d.help("print strings and stack traces with %s"),
            _ => d,
        };
        self.error(d);
        false
    }

    /// The record a probe sends has six 8-byte values, the command name and
    /// one string read at run time (see [`crate::record`]).
    fn fits_in_a_record(&mut self, values: &[TExpr], call: &str) -> bool {
        let numbers: Vec<&TExpr> = values
            .iter()
            .filter(|v| !v.is_constant() && matches!(v.ty, Ty::Int(_) | Ty::Ptr | Ty::Stack))
            .collect();
        let strings: Vec<&TExpr> = values
            .iter()
            .filter(|v| v.ty == Ty::Str && !v.is_constant() && v.kind != TKind::Builtin(Builtin::Comm))
            .collect();
        let mut ok = true;
        if numbers.len() > NVALS {
            let d = Diagnostic::error(
                numbers[NVALS].span,
                format!(
                    "{call} can send at most {NVALS} values read at run time for now, and this one sends {}",
                    numbers.len()
                ),
            )
            .help(format!("split it into two {call} calls"));
            self.error(d);
            ok = false;
        }
        if strings.len() > 1 {
            let d = Diagnostic::error(
                strings[1].span,
                format!("{call} can send only one string read at run time for now (comm does not count)"),
            )
            .help(format!("split it into two {call} calls"));
            self.error(d);
            ok = false;
        }
        ok
    }

    /// Where part `at` (in characters of the decoded string) of the string
    /// literal at `lit` is in the source.
    fn format_span(&self, lit: Span, at: (usize, usize)) -> Span {
        let text = self.src.slice(lit);
        if !(text.len() >= 2 && text.starts_with('"') && text.ends_with('"')) {
            return lit;
        }
        let body = &text[1..text.len() - 1];
        let Ok(chars) = decode_string(body) else { return lit };
        let offset = |i: usize| chars.get(i).map_or(body.len(), |&(_, o)| o);
        Span::new(lit.start + 1 + offset(at.0), lit.start + 1 + offset(at.1))
    }

    fn site(&mut self, span: Span, site: Site) -> SiteId {
        if let Some(&id) = self.site_ids.get(&span.start) {
            return id;
        }
        let id = SiteId(self.sites.len() as u32);
        self.sites.push(site);
        self.site_ids.insert(span.start, id);
        id
    }

    // ---- maps ----

    /// `@name` or `@name[key]`: the map (declared at its first use) and the key.
    fn map_ref(
        &mut self,
        cx: &mut Cx,
        name: &str,
        keys: &[Expr],
        span: Span,
    ) -> Option<(MapId, Option<TExpr>)> {
        if cx.probe.kind.is_special() {
            let d =
                Diagnostic::error(span, format!("maps in {} are not supported yet", cx.probe.kind.name()))
                    .help("use maps in the probes of the kernel and of programs");
            self.error(d);
            return None;
        }
        if keys.len() > 1 {
            let d = Diagnostic::error(span, "maps with several keys (`@m[a, b]`) are not supported yet")
                .help("use one integer key, such as tid or pid");
            self.error(d);
            return None;
        }
        let key = match keys.first() {
            Some(k) => {
                let v = self.value(cx, k)?;
                match v.ty {
                    Ty::Int(_) | Ty::Ptr => Some(v),
                    other => {
                        let d =
                            Diagnostic::error(k.span, format!("map keys are integers for now, not {other}"))
                                .help("use an integer key, such as tid or pid");
                        self.error(d);
                        return None;
                    }
                }
            }
            None => None,
        };
        let key_ty = key.as_ref().map(|k| match k.ty {
            Ty::Int(t) => t,
            _ => IntTy::U64,
        });
        let id = match self.maps.iter().position(|m| m.name == name) {
            Some(i) => {
                let decl = &self.maps[i];
                if decl.key.is_some() != key_ty.is_some() {
                    let (now, before) = if key_ty.is_some() {
                        ("with a key", "without one")
                    } else {
                        ("without a key", "with one")
                    };
                    let first = decl.span;
                    let d =
                        Diagnostic::error(span, format!("`@{name}` is used {now} here, and {before} before"))
                            .note(first, "first used here");
                    self.error(d);
                    return None;
                }
                MapId(i as u32)
            }
            None => {
                self.maps.push(MapDecl { name: name.to_string(), key: key_ty, span });
                MapId(self.maps.len() as u32 - 1)
            }
        };
        Some((id, key))
    }

    /// `@m[k] = v`, `@m[k] += v`, `@m[k]++`, and `@m[k] = count()` / `sum(v)`.
    fn map_assign(
        &mut self,
        cx: &mut Cx,
        map: &Expr,
        op: Option<BinOp>,
        value: &Expr,
        span: Span,
    ) -> Option<TStmt> {
        let ExprKind::Map { name, keys } = &map.kind else {
            self.error(Diagnostic::error(map.span, "only maps and variables can be assigned"));
            return None;
        };
        let (id, key) = self.map_ref(cx, name, keys, map.span)?;
        // count() and sum(v) are additions.
        let (op, value) = match (&value.kind, op) {
            (ExprKind::Call { func, args }, None) if func.text == "count" && args.is_empty() => {
                (Some(BinOp::Add), TExpr { kind: TKind::Int(1), ty: Ty::Int(IntTy::I64), span: value.span })
            }
            (ExprKind::Call { func, args }, None) if func.text == "sum" && args.len() == 1 => {
                (Some(BinOp::Add), self.value(cx, &args[0])?)
            }
            (ExprKind::Call { func, .. }, _) if MAP_FUNCTIONS.contains(&func.text.as_str()) => {
                let d = Diagnostic::error(value.span, format!("`{}()` is not supported yet", func.text))
                    .help("count() and sum(v) are; for the rest, print what you need with printf");
                self.error(d);
                return None;
            }
            _ => (op, self.value(cx, value)?),
        };
        if !value.ty.is_integer() {
            let d =
                Diagnostic::error(value.span, format!("map values are integers for now, not {}", value.ty));
            self.error(d);
            return None;
        }
        let value = match op {
            None => value,
            Some(op) => {
                let current = TExpr {
                    kind: TKind::Map { map: id, key: key.clone().map(Box::new) },
                    ty: Ty::Int(IntTy::I64),
                    span: map.span,
                };
                self.binary(op, current, value, span)?
            }
        };
        Some(TStmt::MapUpdate { map: id, key, value })
    }

    /// `delete(@m[key])`.
    fn map_delete(&mut self, cx: &mut Cx, args: &[Expr], span: Span) -> Option<TStmt> {
        let [arg] = args else {
            self.error(Diagnostic::error(span, "delete takes one map element: delete(@m[key])"));
            return None;
        };
        let ExprKind::Map { name, keys } = &arg.kind else {
            self.error(Diagnostic::error(arg.span, "delete takes a map element: delete(@m[key])"));
            return None;
        };
        let (map, key) = self.map_ref(cx, name, keys, arg.span)?;
        Some(TStmt::MapDelete { map, key })
    }

    // ---- expressions ----

    /// An expression used as a value (not a statement like printf).
    fn value(&mut self, cx: &mut Cx, e: &Expr) -> Option<TExpr> {
        let v = self.expr(cx, e)?;
        if v.ty == Ty::Void {
            self.error(Diagnostic::error(v.span, format!("{} gives no value", self.text(v.span))));
            return None;
        }
        Some(v)
    }

    /// An expression used as a condition (a predicate, `if`, `!`, `&&`, `||`).
    fn condition(&mut self, cx: &mut Cx, e: &Expr) -> Option<TExpr> {
        let v = self.value(cx, e)?;
        self.is_condition(&v).then_some(v)
    }

    fn is_condition(&mut self, v: &TExpr) -> bool {
        if v.ty.is_integer() {
            return true;
        }
        let mut d = Diagnostic::error(
            v.span,
            format!("{} is {}, not a condition", self.text(v.span), self.describe(v)),
        );
        if v.ty == Ty::Str {
            d = d.help(format!("compare it with a string: {} == \"bash\"", self.src.slice(v.span)));
        }
        self.error(d);
        false
    }

    /// "a string", "a pointer (const char *)", ...
    fn describe(&self, v: &TExpr) -> String {
        match &v.kind {
            TKind::Field(FieldRef { field: Some(f), .. }) if v.ty == Ty::Ptr => {
                format!("a pointer ({})", f.type_name)
            }
            _ => v.ty.to_string(),
        }
    }

    fn expr(&mut self, cx: &mut Cx, e: &Expr) -> Option<TExpr> {
        let span = e.span;
        let make = |kind, ty| Some(TExpr { kind, ty, span });
        match &e.kind {
            ExprKind::Int(n) => make(TKind::Int(*n), int_literal_ty(*n)),
            ExprKind::Str(s) => make(TKind::Str(s.clone()), Ty::Str),
            ExprKind::Ident(name) => self.ident(cx, name, span),
            ExprKind::Var(name) => {
                let id = self.lookup(cx, name, span)?;
                make(TKind::Var(id), cx.vars[id.0 as usize].ty)
            }
            ExprKind::Map { name, keys } => {
                let (map, key) = self.map_ref(cx, name, keys, span)?;
                make(TKind::Map { map, key: key.map(Box::new) }, Ty::Int(IntTy::I64))
            }
            ExprKind::Field { base, field, .. } => self.field(cx, base, field, span),
            ExprKind::Call { func, args } => self.call(cx, func, args, span),
            ExprKind::Unary { op, expr } => {
                let inner = self.value(cx, expr)?;
                self.unary(*op, inner, span)
            }
            ExprKind::Binary { op, lhs, rhs } if op.is_logical() => {
                let l = self.condition(cx, lhs);
                let r = self.condition(cx, rhs);
                self.binary(*op, l?, r?, span)
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.value(cx, lhs);
                let r = self.value(cx, rhs);
                self.binary(*op, l?, r?, span)
            }
        }
    }

    fn ident(&mut self, cx: &mut Cx, name: &str, span: Span) -> Option<TExpr> {
        if let Some(b) = builtin_named(name) {
            self.allowed(cx, Use::Builtin(b), name, span).then_some(())?;
            return Some(TExpr { kind: TKind::Builtin(b), ty: b.ty(), span });
        }
        match name {
            "kstack" | "ustack" => return self.stack(cx, name, &[], span),
            "args" => {
                self.allowed(cx, Use::Args, name, span).then_some(())?;
                let d = Diagnostic::error(span, "`args` is used by its fields: args->FIELD")
                    .help(fields_help(cx).unwrap_or_else(|| "for example str(args->filename)".into()));
                self.error(d);
                return None;
            }
            _ => {}
        }
        let d = if FUNCTIONS.contains(&name) || OUTPUT_FUNCTIONS.contains(&name) {
            Diagnostic::error(span, format!("`{name}` is a function: call it with parentheses, {name}(...)"))
        } else if let Some(n) = name.strip_prefix("arg").and_then(|n| n.parse::<u32>().ok()) {
            Diagnostic::error(span, format!("there is no `arg{n}`: only arg0 to arg5 exist")).help(
                "x86-64 passes the first six integer arguments in registers; the others are on the stack",
            )
        } else if LATER.contains(&name) {
            Diagnostic::error(span, format!("`{name}` is not supported yet"))
        } else {
            Diagnostic::error(span, format!("unknown builtin `{name}`"))
                .did_you_mean(&close_matches(name, &NAMES))
        };
        self.error(d);
        None
    }

    fn call(&mut self, cx: &mut Cx, func: &Name, args: &[Expr], span: Span) -> Option<TExpr> {
        let name = func.text.as_str();
        if builtin_named(name).is_some() {
            if let Some(a) = args.first() {
                self.error(Diagnostic::error(a.span, format!("`{name}` takes no arguments")));
                return None;
            }
            return self.ident(cx, name, span);
        }
        let d = match name {
            "str" => return self.read_str(cx, args, span),
            "kstack" | "ustack" => return self.stack(cx, name, args, span),
            _ if OUTPUT_FUNCTIONS.contains(&name) => Diagnostic::error(
                span,
                format!("{name}() gives no value: it is a statement of its own, ending with `;`"),
            ),
            "count" | "sum" => Diagnostic::error(
                span,
                format!(
                    "`{name}()` gives no value of its own: it adds into a map, as in `@calls = {name}(...);`"
                ),
            ),
            "delete" => Diagnostic::error(span, "delete(...) is a statement of its own, ending with `;`"),
            _ if MAP_FUNCTIONS.contains(&name) => {
                Diagnostic::error(func.span, format!("`{name}()` is not supported yet")).help(MAP_HELP)
            }
            _ if LATER.contains(&name) => {
                Diagnostic::error(func.span, format!("`{name}()` is not supported yet"))
            }
            _ => {
                let mut known: Vec<&str> = FUNCTIONS.to_vec();
                known.extend(BUILTINS.iter().map(|(n, _)| *n));
                Diagnostic::error(func.span, format!("unknown function `{name}`"))
                    .did_you_mean(&close_matches(name, &known))
            }
        };
        self.error(d);
        None
    }

    fn read_str(&mut self, cx: &mut Cx, args: &[Expr], span: Span) -> Option<TExpr> {
        if args.is_empty() || args.len() > 2 {
            let d = Diagnostic::error(span, "str takes a pointer and an optional length")
                .help("write str(arg0) or str(arg0, 64)");
            self.error(d);
            return None;
        }
        if cx.probe.kind.is_special() {
            let d = Diagnostic::error(span, format!("str() has nothing to read in {}", cx.probe.kind.name()))
                .help(special_help(cx.probe.kind));
            self.error(d);
            return None;
        }
        let ptr = self.value(cx, &args[0]);
        let len = args.get(1).map(|a| self.value(cx, a));
        let ptr = ptr?;
        if !ptr.ty.is_integer() {
            let d = Diagnostic::error(
                ptr.span,
                format!(
                    "str() reads a string at an address, but {} is {}",
                    self.text(ptr.span),
                    self.describe(&ptr)
                ),
            );
            let d =
                if ptr.ty == Ty::Str { d.help("it is a string already: use it without str()") } else { d };
            self.error(d);
            return None;
        }
        let len = match len {
            None => None,
            Some(len) => {
                let len = len?;
                match (&len.kind, len.ty.is_integer()) {
                    (TKind::Int(n), _) if *n == 0 || *n > STR_LEN as u64 => {
                        let msg = format!("the length of str() must be from 1 to {STR_LEN}");
                        self.error(Diagnostic::error(len.span, msg));
                        return None;
                    }
                    (_, true) => Some(Box::new(len)),
                    (_, false) => {
                        let msg = format!(
                            "the length of str() is an integer, but {} is {}",
                            self.text(len.span),
                            self.describe(&len)
                        );
                        self.error(Diagnostic::error(len.span, msg));
                        return None;
                    }
                }
            }
        };
        Some(TExpr { kind: TKind::ReadStr { ptr: Box::new(ptr), len }, ty: Ty::Str, span })
    }

    /// `kstack`, `kstack()`, `kstack(10)`, `kstack(perf)`, `kstack(perf, 10)`.
    fn stack(&mut self, cx: &mut Cx, name: &str, args: &[Expr], span: Span) -> Option<TExpr> {
        let kernel = name == "kstack";
        self.allowed(cx, Use::Stack, name, span).then_some(())?;
        let mut spec = StackSpec { kernel, mode: StackMode::Bpftrace, limit: None };
        let usage =
            format!("{name} takes a mode (bpftrace, perf, raw) and a number of frames: {name}(perf, 10)");
        if args.len() > 2 {
            self.error(Diagnostic::error(span, usage));
            return None;
        }
        for (i, a) in args.iter().enumerate() {
            match &a.kind {
                ExprKind::Ident(m) if i == 0 => {
                    spec.mode = match m.as_str() {
                        "bpftrace" => StackMode::Bpftrace,
                        "perf" => StackMode::Perf,
                        "raw" => StackMode::Raw,
                        _ => {
                            let d = Diagnostic::error(a.span, format!("unknown stack mode `{m}`"))
                                .did_you_mean(&close_matches(m, &["bpftrace", "perf", "raw"]))
                                .help("the modes are bpftrace, perf and raw");
                            self.error(d);
                            return None;
                        }
                    }
                }
                ExprKind::Int(n) if (1..=MAX_FRAMES).contains(n) => spec.limit = Some(*n as u32),
                ExprKind::Int(_) => {
                    let msg = format!("the number of frames must be from 1 to {MAX_FRAMES}");
                    self.error(Diagnostic::error(a.span, msg));
                    return None;
                }
                _ => {
                    self.error(Diagnostic::error(a.span, usage));
                    return None;
                }
            }
        }
        Some(TExpr { kind: TKind::Stack(spec), ty: Ty::Stack, span })
    }

    fn field(&mut self, cx: &mut Cx, base: &Expr, field: &Name, span: Span) -> Option<TExpr> {
        if !matches!(&base.kind, ExprKind::Ident(b) if b == "args") {
            let d = Diagnostic::error(span, "only `args` has fields here: args->FIELD in tracepoint probes")
                .help("fields of kernel or user structures are not supported yet");
            self.error(d);
            return None;
        }
        self.allowed(cx, Use::Args, "args", base.span).then_some(())?;
        let Some(format) = &cx.format else {
            let kind = TKind::Field(FieldRef { name: field.text.clone(), field: None });
            return Some(TExpr { kind, ty: Ty::Int(IntTy::U64), span });
        };
        let Some(f) = format.field(&field.text).cloned() else {
            let names: Vec<String> = format.fields.iter().map(|f| f.name.clone()).collect();
            let d = Diagnostic::error(
                field.span,
                format!("tracepoint {} has no field `{}`", tracepoint_name(&cx.probe), field.text),
            )
            .did_you_mean(&close_matches(&field.text, &names))
            .help(fields_help(cx).unwrap_or_default());
            self.error(d);
            return None;
        };
        let ty = match field_ty(&f) {
            Ok(ty) => ty,
            Err(why) => {
                self.error(Diagnostic::error(field.span, format!("{} ({}): {why}", field.text, f.type_name)));
                return None;
            }
        };
        Some(TExpr { kind: TKind::Field(FieldRef { name: field.text.clone(), field: Some(f) }), ty, span })
    }

    /// Whether a builtin may be used in this probe; reports it if not.
    fn allowed(&mut self, cx: &Cx, what: Use, name: &str, span: Span) -> bool {
        let kind = cx.probe.kind;
        let probe = cx.probe.to_string();
        let ok = match what {
            Use::Builtin(Builtin::Retval) => kind.is_return(),
            Use::Builtin(Builtin::Arg(_)) => matches!(kind, ProbeKind::Kprobe | ProbeKind::Uprobe),
            Use::Builtin(Builtin::Func) => kind.is_function(),
            Use::Builtin(_) => true,
            Use::Args => kind == ProbeKind::Tracepoint,
            Use::Stack => !kind.is_special(),
        };
        if ok {
            return true;
        }
        let d = if kind.is_special() {
            Diagnostic::error(span, format!("`{name}` has no meaning in {}", kind.name()))
                .help(special_help(kind))
        } else {
            match what {
                Use::Builtin(Builtin::Retval) => retval_error(cx, span),
                Use::Builtin(Builtin::Arg(_)) if kind == ProbeKind::Tracepoint => {
                    Diagnostic::error(span, format!("`{name}` does not exist in tracepoint probes: their values are named fields"))
                        .help(fields_help(cx).unwrap_or_else(|| "use args->FIELD".into()))
                }
                Use::Builtin(Builtin::Arg(_)) => Diagnostic::error(
                    span,
                    format!("`{name}` is not available in {probe}: a function's arguments are gone when it returns"),
                )
                .help(format!("read the arguments in the entry probe, {}", entry_probe(&cx.probe))),
                Use::Args => Diagnostic::error(span, format!("`args` is only available in tracepoint probes, not in {probe}"))
                    .help("in kprobes and uprobes the function's arguments are arg0 to arg5; read a string argument with str(arg0)"),
                _ => Diagnostic::error(span, format!("`{name}` is only set in kprobe, kretprobe, uprobe and uretprobe probes"))
                    .help("`probe` names the probe"),
            }
        };
        self.report(format!("{name} in {kind:?}"), d);
        false
    }

    fn unary(&mut self, op: UnOp, inner: TExpr, span: Span) -> Option<TExpr> {
        if op == UnOp::Not {
            self.is_condition(&inner).then_some(())?;
        } else if !inner.ty.is_integer() {
            let msg = format!(
                "`{}` needs an integer, but {} is {}",
                op.symbol(),
                self.text(inner.span),
                self.describe(&inner)
            );
            self.error(Diagnostic::error(span, msg));
            return None;
        }
        let ty = match op {
            UnOp::Neg => Ty::Int(IntTy::I64),
            UnOp::Not => BOOL,
            UnOp::BitNot => match inner.ty {
                Ty::Int(t) => Ty::Int(IntTy { bits: 64, signed: t.signed }),
                _ => Ty::Int(IntTy::U64),
            },
        };
        if let TKind::Int(n) = inner.kind {
            let v = match op {
                UnOp::Neg => n.wrapping_neg(),
                UnOp::Not => u64::from(n == 0),
                UnOp::BitNot => !n,
            };
            return Some(TExpr { kind: TKind::Int(v), ty, span });
        }
        Some(TExpr { kind: TKind::Unary(op, Box::new(inner)), ty, span })
    }

    fn binary(&mut self, op: BinOp, l: TExpr, r: TExpr, span: Span) -> Option<TExpr> {
        if l.ty == Ty::Str || r.ty == Ty::Str {
            return self.string_compare(op, l, r, span);
        }
        if op.is_logical() {
            let (a, b) = (self.is_condition(&l), self.is_condition(&r));
            (a && b).then_some(())?;
        } else {
            for v in [&l, &r] {
                if !v.ty.is_integer() {
                    let msg = format!(
                        "`{}` needs integers, but {} is {}",
                        op.symbol(),
                        self.text(v.span),
                        self.describe(v)
                    );
                    self.error(Diagnostic::error(v.span, msg));
                    return None;
                }
            }
        }
        if matches!(op, BinOp::Div | BinOp::Rem) && r.kind == TKind::Int(0) {
            self.error(Diagnostic::error(r.span, "division by zero"));
            return None;
        }
        let signed = signed_operation(&l, &r);
        let ty = if op.is_comparison() || op.is_logical() {
            BOOL
        } else if matches!(op, BinOp::Add | BinOp::Sub) && l.ty == Ty::Ptr && r.ty != Ty::Ptr {
            Ty::Ptr
        } else if matches!(op, BinOp::Shl | BinOp::Shr) {
            Ty::Int(IntTy { bits: 64, signed: matches!(l.ty, Ty::Int(t) if t.signed) })
        } else {
            Ty::Int(IntTy { bits: 64, signed })
        };
        if let (TKind::Int(a), TKind::Int(b)) = (&l.kind, &r.kind) {
            if let Some(v) = fold(op, *a, *b, signed) {
                return Some(TExpr { kind: TKind::Int(v), ty, span });
            }
        }
        Some(TExpr { kind: TKind::Binary(op, Box::new(l), Box::new(r)), ty, span })
    }

    /// `==` and `!=` between a string and a string literal.
    fn string_compare(&mut self, op: BinOp, l: TExpr, r: TExpr, span: Span) -> Option<TExpr> {
        if !matches!(op, BinOp::Eq | BinOp::Ne) {
            let msg = format!("strings can only be compared with == and !=, not `{}`", op.symbol());
            self.error(Diagnostic::error(span, msg));
            return None;
        }
        if l.ty != r.ty {
            let (s, other) = if l.ty == Ty::Str { (&l, &r) } else { (&r, &l) };
            let msg = format!(
                "cannot compare {} ({}) with {} ({})",
                self.text(l.span),
                self.describe(&l),
                self.text(r.span),
                self.describe(&r)
            );
            let mut d = Diagnostic::error(span, msg);
            if other.ty == Ty::Ptr {
                d = d.help(format!(
                    "read the string it points to: str({}) == {}",
                    self.src.slice(other.span),
                    self.src.slice(s.span)
                ));
            }
            self.error(d);
            return None;
        }
        let eq = op == BinOp::Eq;
        let (value, literal) = match (l.kind, r.kind) {
            (TKind::Str(a), TKind::Str(b)) => {
                return Some(TExpr { kind: TKind::Int(u64::from((a == b) == eq)), ty: BOOL, span });
            }
            (kind, TKind::Str(lit)) => (TExpr { kind, ..l }, lit),
            (TKind::Str(lit), kind) => (TExpr { kind, ..r }, lit),
            _ => {
                let d =
                    Diagnostic::error(span, "comparing two strings read at run time is not supported yet")
                        .help("compare a string with a literal, as in comm == \"bash\"");
                self.error(d);
                return None;
            }
        };
        if value.kind == TKind::Builtin(Builtin::Comm) && literal.len() > COMM_MAX {
            let d = Diagnostic::warning(
                span,
                format!("comm is at most {COMM_MAX} characters long, so it is never \"{literal}\""),
            )
            .help(format!(
                "the kernel cuts command names to {COMM_MAX} characters: compare with \"{}\"",
                truncate(&literal, COMM_MAX)
            ));
            self.error(d);
        }
        Some(TExpr { kind: TKind::StrCmp { eq, value: Box::new(value), literal }, ty: BOOL, span })
    }
}

/// The things whose use depends on the probe kind.
#[derive(Clone, Copy, Debug)]
enum Use {
    Builtin(Builtin),
    Args,
    Stack,
}

fn int_literal_ty(n: u64) -> Ty {
    Ty::Int(if n <= i64::MAX as u64 { IntTy::I64 } else { IntTy::U64 })
}

/// Whether an operation on `l` and `r` (division, remainder, ordering) is
/// signed: when both are signed; a literal takes the other side's signedness;
/// pointers are unsigned. The lowering step picks its instructions by this.
pub fn signed_operation(l: &TExpr, r: &TExpr) -> bool {
    let signed = |t: &TExpr| matches!(t.ty, Ty::Int(i) if i.signed);
    match (&l.kind, &r.kind) {
        (TKind::Int(_), TKind::Int(_)) => signed(l) && signed(r),
        (TKind::Int(_), _) => signed(r),
        (_, TKind::Int(_)) => signed(l),
        _ => signed(l) && signed(r),
    }
}

/// Constant folding, with 64-bit wrapping arithmetic; None for division by zero.
pub(crate) fn fold(op: BinOp, a: u64, b: u64, signed: bool) -> Option<u64> {
    let (sa, sb) = (a as i64, b as i64);
    let ord = |x: std::cmp::Ordering| if signed { sa.cmp(&sb) == x } else { a.cmp(&b) == x };
    use std::cmp::Ordering::*;
    Some(match op {
        BinOp::Add => a.wrapping_add(b),
        BinOp::Sub => a.wrapping_sub(b),
        BinOp::Mul => a.wrapping_mul(b),
        BinOp::Div if b == 0 => return None,
        BinOp::Rem if b == 0 => return None,
        BinOp::Div if signed => sa.wrapping_div(sb) as u64,
        BinOp::Div => a / b,
        BinOp::Rem if signed => sa.wrapping_rem(sb) as u64,
        BinOp::Rem => a % b,
        BinOp::BitAnd => a & b,
        BinOp::BitOr => a | b,
        BinOp::BitXor => a ^ b,
        BinOp::Shl => a.wrapping_shl(b as u32),
        BinOp::Shr if signed => sa.wrapping_shr(b as u32) as u64,
        BinOp::Shr => a.wrapping_shr(b as u32),
        BinOp::Eq => u64::from(a == b),
        BinOp::Ne => u64::from(a != b),
        BinOp::Lt => u64::from(ord(Less)),
        BinOp::Gt => u64::from(ord(Greater)),
        BinOp::Le => u64::from(!ord(Greater)),
        BinOp::Ge => u64::from(!ord(Less)),
        BinOp::And => u64::from(a != 0 && b != 0),
        BinOp::Or => u64::from(a != 0 || b != 0),
    })
}

/// The type of a tracepoint field, or why it cannot be used yet.
fn field_ty(f: &Field) -> Result<Ty, String> {
    let chars = f.type_name.contains("char");
    if f.data_loc || f.is_rel_loc() || f.array_len.is_some() || f.type_name.contains('[') {
        return if chars { Ok(Ty::Str) } else { Err("array fields are not supported yet".into()) };
    }
    if f.type_name.contains('*') {
        return Ok(Ty::Ptr);
    }
    match f.size {
        1 | 2 | 4 | 8 => Ok(Ty::Int(IntTy { bits: (f.size * 8) as u8, signed: f.signed })),
        n => Err(format!("fields of {n} bytes are not supported yet")),
    }
}

fn counted(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn truncate(s: &str, n: usize) -> &str {
    let mut end = n.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn tracepoint_name(p: &Probe) -> String {
    match &p.target {
        Target::Tracepoint { category, event } => format!("{}:{}", category.text, event.text),
        _ => p.to_string(),
    }
}

/// "the fields of syscalls:sys_enter_open are filename, flags, mode".
fn fields_help(cx: &Cx) -> Option<String> {
    let f = cx.format.as_ref()?;
    let names: Vec<&str> = f.fields.iter().map(|f| f.name.as_str()).collect();
    Some(format!("the fields of {} are: {}", tracepoint_name(&cx.probe), names.join(", ")))
}

fn special_help(kind: ProbeKind) -> String {
    format!("{} runs once, in trace itself, not when a traced program does something", kind.name())
}

/// The entry probe matching a return probe: `kretprobe:f` -> `kprobe:f`.
fn entry_probe(p: &Probe) -> String {
    let mut entry = p.clone();
    entry.kind = match p.kind {
        ProbeKind::Kretprobe => ProbeKind::Kprobe,
        ProbeKind::Uretprobe => ProbeKind::Uprobe,
        k => k,
    };
    entry.to_string()
}

fn retval_error(cx: &Cx, span: Span) -> Diagnostic {
    let p = &cx.probe;
    match &p.target {
        Target::Tracepoint { event, .. } => {
            let d = Diagnostic::error(span, "`retval` is not set in tracepoint probes");
            match event.text.strip_prefix("sys_enter_") {
                Some(call) => d.help(format!(
                    "a system call's return value is args->ret in tracepoint:syscalls:sys_exit_{call}"
                )),
                None => d.help("a tracepoint's values are its fields: args->FIELD"),
            }
        }
        _ => {
            let mut ret = p.clone();
            ret.kind = if p.kind == ProbeKind::Uprobe { ProbeKind::Uretprobe } else { ProbeKind::Kretprobe };
            Diagnostic::error(
                span,
                format!("`retval` is not set in {p}: it is only set in return probes (kretprobe, uretprobe)"),
            )
            .help(format!(
                "to see what the function returns, add a probe: {ret} {{ printf(\"%d\\n\", retval); }}"
            ))
        }
    }
}
