//! A script's output, made in user space: each record names an event id, and
//! the event says how to show it ([`super::lower::Event`]): printf with the
//! format kept here, print, time, exit. `BEGIN` and `END` run here too, on
//! constants and trace's own `pid`/`comm`.
//!
//! Strings of the traced world (`str()`, `comm`) are shown with strace's
//! escapes for control characters and bytes that are not UTF-8, printable
//! UTF-8 as it is ([`crate::escape`], [`Style::Utf8`]): bpftrace prints their
//! bytes raw, which lets a file name clear the screen.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Write};

use super::ast::UnOp;
use super::format::{Conv, Length, Piece, Spec};
use super::ir::{Builtin, Checked, IntTy, ProbeProgram, Site, TExpr, TKind, TStmt, Ty};
use super::lower::{Action, Arg, Const, Event, Lowered};
use crate::bpf::Map;
use crate::escape::{self, Style};
use crate::output::Sink;
use crate::record::{Flags, Record};
use crate::stacks::{self, KernelSymbols, StackMode, UserSymbols};

/// Formats a script's records.
pub struct Printer<'a, W: Write> {
    out: W,
    checked: &'a Checked,
    events: Vec<Event>,
    begin: Vec<usize>,
    end: Vec<usize>,
    stacks: Option<&'a Map>,
    /// The script's maps, by [`super::ir::MapId`].
    maps: &'a [Map],
    /// Loaded at the first kernel stack.
    kernel_symbols: Option<KernelSymbols>,
    user_symbols: UserSymbols,
    /// The processes whose maps were read at their first record, when the
    /// script takes user stacks (None when it takes none: nothing to read).
    remembered: Option<HashSet<u32>>,
    /// Lines in order; one waiting for its string holds back those after it.
    queue: VecDeque<Line>,
    /// Buffers of lines already written, reused.
    spare: Vec<String>,
}

/// Line buffers kept for reuse.
const SPARE_LINES: usize = 64;

/// A line of output, or one waiting for the string its entry could not read.
enum Line {
    Done(String),
    /// `entry`: the event id; `at`: the index of the value the string goes to.
    Waiting {
        tid: u32,
        entry: u32,
        vals: Vec<Val>,
        at: usize,
    },
}

/// A value while formatting.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Val {
    Int(u64, IntTy),
    Ptr(u64),
    /// Text of the script or of trace (literals, `probe`, stacks): shown as is.
    Str(String),
    /// Bytes of the traced world (`str()`, `comm`): escaped when shown.
    Bytes(Vec<u8>),
}

impl<'a, W: Write> Printer<'a, W> {
    pub fn new(
        out: W,
        checked: &'a Checked,
        lowered: Lowered,
        stacks: Option<&'a Map>,
        maps: &'a [Map],
    ) -> Self {
        let takes_user_stacks = lowered.events.iter().any(|e| match &e.action {
            Action::Printf { args, .. } => args.iter().any(is_user_stack),
            Action::Print(arg) => is_user_stack(arg),
            _ => false,
        });
        Printer {
            out,
            checked,
            events: lowered.events,
            begin: lowered.begin,
            end: lowered.end,
            stacks,
            maps,
            kernel_symbols: None,
            user_symbols: UserSymbols::new(),
            remembered: takes_user_stacks.then(HashSet::new),
            queue: VecDeque::new(),
            spare: Vec::new(),
        }
    }

    /// Runs the `BEGIN` blocks. False when one called `exit()`.
    pub fn begin(&mut self) -> io::Result<bool> {
        let begin = std::mem::take(&mut self.begin);
        let mut go_on = true;
        for i in begin {
            if !self.run_special(i, "BEGIN")? {
                go_on = false;
                break;
            }
        }
        self.out.flush()?;
        Ok(go_on)
    }

    /// Runs the `END` blocks, then prints the maps as bpftrace does: two
    /// empty lines, then each map in name order, an empty map as an empty line.
    pub fn end(&mut self) -> io::Result<()> {
        for i in std::mem::take(&mut self.end) {
            if !self.run_special(i, "END")? {
                break;
            }
        }
        let mut text = String::from("\n\n");
        let mut order: Vec<usize> = (0..self.maps.len()).collect();
        order.sort_by(|&a, &b| self.checked.maps[a].name.cmp(&self.checked.maps[b].name));
        for i in order {
            let decl = &self.checked.maps[i];
            let entries = read_map(&self.maps[i]).map_err(io::Error::other)?;
            text.push_str(&map_text(&decl.name, decl.key, entries));
        }
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    fn run_special(&mut self, index: usize, name: &str) -> io::Result<bool> {
        let program: &ProbeProgram = &self.checked.programs[index];
        let mut vars = HashMap::new();
        let me = Interp { name, vars: &mut vars };
        let mut text = String::new();
        let go_on = me.stmts(&program.body, self.checked, &mut text);
        self.out.write_all(text.as_bytes())?;
        Ok(go_on)
    }

    fn arg(&mut self, arg: &Arg, r: &Record) -> Val {
        match arg {
            Arg::Int { slot, ty, pointer: false } => Val::Int(r.vals[*slot], *ty),
            Arg::Int { slot, pointer: true, .. } => Val::Ptr(r.vals[*slot]),
            Arg::Comm => Val::Bytes(r.comm().to_vec()),
            Arg::Str { max } => {
                let s = r.string.as_deref().unwrap_or_default();
                Val::Bytes(s[..max.map_or(s.len(), |m| s.len().min(m))].to_vec())
            }
            Arg::Const(Const::Int { value, signed }) => Val::Int(*value, IntTy { bits: 64, signed: *signed }),
            Arg::Const(Const::Str(s)) => Val::Str(s.clone()),
            Arg::Stack { slot, spec } => Val::Str(self.stack(r, r.vals[*slot] as i64, spec)),
        }
    }

    /// The stack with this id, symbolised, as bpftrace prints it.
    fn stack(&mut self, r: &Record, id: i64, spec: &super::ir::StackSpec) -> String {
        let mode = match spec.mode {
            super::ir::StackMode::Bpftrace => StackMode::Bpftrace,
            super::ir::StackMode::Perf => StackMode::Perf,
            super::ir::StackMode::Raw => StackMode::Raw,
        };
        let raw = match (self.stacks, u32::try_from(id)) {
            (Some(map), Ok(id)) => map.lookup(&id.to_ne_bytes()).ok().flatten(),
            _ => None,
        };
        let frames = raw.map(|b| stacks::frames(&b)).unwrap_or_default();
        if spec.kernel {
            if self.kernel_symbols.is_none() {
                self.kernel_symbols =
                    Some(KernelSymbols::load().unwrap_or_else(|_| KernelSymbols::parse("")));
            }
            let syms = self.kernel_symbols.as_ref().expect("loaded above");
            stacks::format_kernel(&frames, mode, spec.limit, syms)
        } else {
            stacks::format_user(r.tgid, &frames, mode, spec.limit, &mut self.user_symbols)
        }
    }
}

impl<W: Write> Printer<'_, W> {
    /// Writes the lines at the front that are complete; their buffers are kept
    /// for the next lines.
    fn write_ready(&mut self) -> io::Result<()> {
        while let Some(Line::Done(_)) = self.queue.front() {
            if let Some(Line::Done(text)) = self.queue.pop_front() {
                self.out.write_all(text.as_bytes())?;
                if self.spare.len() < SPARE_LINES {
                    self.spare.push(text);
                }
            }
        }
        Ok(())
    }

    /// Completes the line of `entry` on thread `tid` with the string read at return.
    fn fill(&mut self, events: &[Event], tid: u32, entry: u32, string: Option<&[u8]>) {
        let waiting = self
            .queue
            .iter_mut()
            .find(|l| matches!(l, Line::Waiting { tid: t, entry: e, .. } if *t == tid && *e == entry));
        if let Some(line) = waiting {
            if let Line::Waiting { vals, at, .. } = line {
                vals[*at] = Val::Bytes(string.unwrap_or_default().to_vec());
                let mut text = String::new();
                render(&mut text, &events[entry as usize].action, vals);
                *line = Line::Done(text);
            }
        }
    }

    /// Shows one record of `events[r.probe]`.
    fn show(&mut self, events: &[Event], r: &Record) -> io::Result<bool> {
        let Some(event) = events.get(r.probe as usize) else {
            return Ok(false); // a stray id
        };
        let args = match &event.action {
            Action::Printf { args, .. } => args.as_slice(),
            Action::Print(arg) => std::slice::from_ref(arg),
            Action::Time { format } => {
                self.queue.push_back(Line::Done(local_time(format)));
                return self.write_ready().map(|_| false);
            }
            Action::Fill { entry } => {
                self.fill(events, r.tid, *entry, r.string.as_deref());
                return self.write_ready().map(|_| false);
            }
            Action::Exit => {
                self.write_ready()?;
                return Ok(true);
            }
        };
        let vals: Vec<Val> = args.iter().map(|a| self.arg(a, r)).collect();
        let at = args.iter().position(|a| matches!(a, Arg::Str { .. }));
        match at {
            // The string's page was not in memory: it is read again at return.
            Some(at) if r.flags.contains(Flags::STR_FAULT) => {
                self.queue.push_back(Line::Waiting { tid: r.tid, entry: r.probe, vals, at })
            }
            _ => {
                let mut text = self.spare.pop().unwrap_or_default();
                render(&mut text, &event.action, &vals);
                self.queue.push_back(Line::Done(text));
            }
        }
        self.write_ready().map(|_| false)
    }
}

/// The text of a printf or print, into `line` (emptied first).
fn render(line: &mut String, action: &Action, vals: &[Val]) {
    line.clear();
    match action {
        Action::Printf { format, .. } => printf(line, format, vals),
        Action::Print(_) => print_value(line, &vals[0]),
        _ => {}
    }
}

impl<W: Write> Sink for Printer<'_, W> {
    /// A process's maps are read once, when its first record arrives: early
    /// enough to name its frames after it exits, never again per record.
    fn arrived(&mut self, r: &Record) {
        if let Some(seen) = &mut self.remembered {
            if seen.insert(r.tgid) {
                self.user_symbols.remember(r.tgid);
            }
        }
    }

    fn event(&mut self, r: &Record) -> io::Result<bool> {
        // The table is lent out while the record is shown: no copy of the
        // event's format per record.
        let events = std::mem::take(&mut self.events);
        let shown = self.show(&events, r);
        self.events = events;
        shown
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Lines still waiting get what bpftrace prints for an unreadable string: nothing.
    fn finish(&mut self) -> io::Result<()> {
        for line in self.queue.iter_mut() {
            if let Line::Waiting { entry, vals, .. } = line {
                let mut text = String::new();
                render(&mut text, &self.events[*entry as usize].action, vals);
                *line = Line::Done(text);
            }
        }
        self.write_ready()?;
        self.out.flush()
    }
}

/// The (key, value) pairs of a script's map.
fn read_map(map: &Map) -> Result<Vec<(u64, i64)>, crate::bpf::BpfError> {
    let word = |b: &[u8]| u64::from_ne_bytes(b[..8].try_into().expect("8 bytes"));
    let mut out = Vec::new();
    for key in map.keys()? {
        if let Some(value) = map.lookup(&key)? {
            out.push((word(&key), word(&value) as i64));
        }
    }
    Ok(out)
}

/// A map as bpftrace prints it at exit: `@name: v` or one `@name[key]: v` line
/// per element, by value, then key; an empty map is an empty line.
fn map_text(name: &str, key: Option<IntTy>, mut entries: Vec<(u64, i64)>) -> String {
    if entries.is_empty() {
        return "\n".into();
    }
    entries.sort_by_key(|&(k, v)| (v, k));
    let mut out = String::new();
    for (k, v) in entries {
        match key {
            None => out.push_str(&format!("@{name}: {v}\n")),
            Some(t) if t.signed => out.push_str(&format!("@{name}[{}]: {v}\n", k as i64)),
            Some(_) => out.push_str(&format!("@{name}[{k}]: {v}\n")),
        }
    }
    out
}

fn is_user_stack(arg: &Arg) -> bool {
    matches!(arg, Arg::Stack { spec, .. } if !spec.kernel)
}

/// Cuts a string to at most `max` bytes, on a character boundary.
fn cut(s: &mut String, max: usize) {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
}

/// `print(v)`: the value in its type's default format, and a newline.
fn print_value(out: &mut String, v: &Val) {
    match v {
        Val::Int(n, ty) if ty.signed => out.push_str(&(*n as i64).to_string()),
        Val::Int(n, _) => out.push_str(&n.to_string()),
        Val::Ptr(p) => out.push_str(&format!("0x{p:x}")),
        Val::Str(s) => out.push_str(s),
        Val::Bytes(b) => escape::push(out, b, Style::Utf8),
    }
    out.push('\n');
}

/// Formats `pieces` with `vals`, one per conversion, as C's printf would for
/// 64-bit values.
fn printf(out: &mut String, pieces: &[Piece], vals: &[Val]) {
    let mut vals = vals.iter();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Spec(spec) => {
                if let Some(v) = vals.next() {
                    conversion(out, spec, v);
                }
            }
        }
    }
}

/// The value cut to the conversion's width as C's printf takes it (an `int`
/// without a length modifier), as an unsigned bit pattern and as signed.
fn cut_int(n: u64, length: Length) -> (u64, i64) {
    match length {
        Length::Char => (n as u8 as u64, n as u8 as i8 as i64),
        Length::Short => (n as u16 as u64, n as u16 as i16 as i64),
        Length::Default => (n as u32 as u64, n as u32 as i32 as i64),
        Length::Long | Length::LongLong | Length::Size => (n, n as i64),
    }
}

fn conversion(out: &mut String, spec: &Spec, v: &Val) {
    let n = match v {
        Val::Int(n, _) | Val::Ptr(n) => Some(*n),
        Val::Str(_) | Val::Bytes(_) => None,
    };
    match (spec.conv, n) {
        (Conv::Str, _) => {
            let precision = spec.precision.map(|p| p as usize);
            let mut s = match v {
                Val::Str(s) => s.clone(),
                // The precision counts bytes, as C's printf does: those read,
                // before any is escaped.
                Val::Bytes(b) => {
                    let b = &b[..precision.map_or(b.len(), |p| b.len().min(p))];
                    let mut s = String::with_capacity(b.len());
                    escape::push(&mut s, b, Style::Utf8);
                    return pad(out, spec, "", &s, false);
                }
                Val::Int(n, ty) if ty.signed => (*n as i64).to_string(),
                Val::Int(n, _) | Val::Ptr(n) => n.to_string(),
            };
            if let Some(p) = precision {
                cut(&mut s, p);
            }
            pad(out, spec, "", &s, false);
        }
        (Conv::Char, Some(n)) => pad(out, spec, "", &char::from(n as u8).to_string(), false),
        (Conv::Signed, Some(n)) => {
            let (_, s) = cut_int(n, spec.length);
            let sign = if s < 0 {
                "-"
            } else if spec.plus {
                "+"
            } else if spec.space {
                " "
            } else {
                ""
            };
            number(out, spec, sign, s.unsigned_abs().to_string());
        }
        (Conv::Unsigned, Some(n)) => number(out, spec, "", cut_int(n, spec.length).0.to_string()),
        (Conv::Hex { upper }, Some(n)) => {
            let u = cut_int(n, spec.length).0;
            let digits = if upper { format!("{u:X}") } else { format!("{u:x}") };
            let prefix = match (spec.alt && u != 0, upper) {
                (false, _) => "",
                (true, false) => "0x",
                (true, true) => "0X",
            };
            number(out, spec, prefix, digits);
        }
        (Conv::Pointer, Some(0)) => pad(out, spec, "", "(nil)", false),
        (Conv::Pointer, Some(n)) => number(out, spec, "0x", format!("{n:x}")),
        (_, None) => pad(out, spec, "", "", false),
    }
}

/// A number: precision is the least number of digits; `0` pads with zeros
/// after the sign or prefix (unless left-aligned or a precision is given).
fn number(out: &mut String, spec: &Spec, prefix: &str, mut digits: String) {
    if let Some(p) = spec.precision {
        let p = p as usize;
        if p == 0 && digits == "0" {
            digits.clear();
        }
        if digits.len() < p {
            digits.insert_str(0, &"0".repeat(p - digits.len()));
        }
    }
    let zeros = spec.zero && !spec.left && spec.precision.is_none();
    pad(out, spec, prefix, &digits, zeros);
}

fn pad(out: &mut String, spec: &Spec, prefix: &str, body: &str, zeros: bool) {
    let len = prefix.chars().count() + body.chars().count();
    let fill = spec.width.map_or(0, |w| (w as usize).saturating_sub(len));
    if spec.left {
        out.push_str(prefix);
        out.push_str(body);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if zeros {
        out.push_str(prefix);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(body);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(prefix);
        out.push_str(body);
    }
}

/// The local time in a strftime format.
fn local_time(format: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as TimeT)
        .unwrap_or(0);
    strftime(format, now)
}

/// The C library's time_t: 64 bits on every target trace builds for (the libc
/// crate marks musl's alias deprecated for a change that musl 1.2 has made).
#[allow(deprecated)]
type TimeT = libc::time_t;

/// libc's strftime on localtime_r: the C library knows the time zone.
fn strftime(format: &str, t: TimeT) -> String {
    let Ok(fmt) = std::ffi::CString::new(format) else {
        return String::new();
    };
    // SAFETY: tm is plain data that localtime_r fills; all-zero is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let mut buf = [0u8; 256];
    // SAFETY: t and tm are valid for the call; buf is writable for buf.len()
    // bytes and strftime writes at most that many, returning the length used
    // (0 when it did not fit); fmt is NUL-terminated.
    let n = unsafe {
        if libc::localtime_r(&t, &mut tm).is_null() {
            return String::new();
        }
        libc::strftime(buf.as_mut_ptr().cast(), buf.len(), fmt.as_ptr(), &tm)
    };
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Runs a `BEGIN` or `END` block in user space.
struct Interp<'v> {
    /// `BEGIN` or `END`: the `probe` builtin.
    name: &'v str,
    vars: &'v mut HashMap<u32, u64>,
}

impl Interp<'_> {
    /// Runs the statements; false after `exit()`.
    fn stmts(mut self, stmts: &[TStmt], checked: &Checked, out: &mut String) -> bool {
        self.run(stmts, checked, out)
    }

    fn run(&mut self, stmts: &[TStmt], checked: &Checked, out: &mut String) -> bool {
        for s in stmts {
            match s {
                TStmt::Assign { var, value } => {
                    let v = match self.eval(value) {
                        Val::Int(n, _) | Val::Ptr(n) => n,
                        Val::Str(_) | Val::Bytes(_) => 0,
                    };
                    self.vars.insert(var.0, v);
                }
                TStmt::If { cond, then, otherwise } => {
                    let branch = if self.truth(cond) { then } else { otherwise };
                    if !self.run(branch, checked, out) {
                        return false;
                    }
                }
                TStmt::Printf { site, args } => {
                    if let Site::Printf { format, .. } = checked.site(*site) {
                        let vals: Vec<Val> = args.iter().map(|a| self.eval(a)).collect();
                        printf(out, format, &vals);
                    }
                }
                TStmt::Print { value, .. } => print_value(out, &self.eval(value)),
                TStmt::Time { site } => {
                    if let Site::Time { format, .. } = checked.site(*site) {
                        out.push_str(&local_time(format));
                    }
                }
                TStmt::Exit { .. } => return false,
                // The checker keeps maps out of BEGIN and END.
                TStmt::MapUpdate { .. } | TStmt::MapDelete { .. } => {}
            }
        }
        true
    }

    fn truth(&self, e: &TExpr) -> bool {
        !matches!(self.eval(e), Val::Int(0, _) | Val::Ptr(0))
    }

    fn int(&self, e: &TExpr) -> u64 {
        match self.eval(e) {
            Val::Int(n, _) | Val::Ptr(n) => n,
            Val::Str(_) | Val::Bytes(_) => 0,
        }
    }

    fn eval(&self, e: &TExpr) -> Val {
        let ty = match e.ty {
            Ty::Int(t) => t,
            _ => IntTy::U64,
        };
        let int = |n: u64| Val::Int(n, ty);
        match &e.kind {
            TKind::Int(n) => int(*n),
            TKind::Str(s) => Val::Str(s.clone()),
            TKind::Builtin(b) => match b {
                Builtin::Pid | Builtin::Tid => int(u64::from(std::process::id())),
                Builtin::Uid => int(u64::from(nix::unistd::getuid().as_raw())),
                Builtin::Cpu => int(0),
                Builtin::Nsecs => int(crate::util::monotonic_ns()),
                Builtin::Comm => Val::Str("trace".into()),
                Builtin::Probe => Val::Str(self.name.into()),
                // The checker allows neither in BEGIN/END.
                Builtin::Func | Builtin::Retval | Builtin::Arg(_) => int(0),
            },
            TKind::Var(v) => int(self.vars.get(&v.0).copied().unwrap_or(0)),
            TKind::Unary(op, inner) => {
                let n = self.int(inner);
                int(match op {
                    UnOp::Neg => n.wrapping_neg(),
                    UnOp::Not => u64::from(n == 0),
                    UnOp::BitNot => !n,
                })
            }
            TKind::Binary(op, l, r) => {
                let signed = super::check::signed_operation(l, r);
                let (a, b) = (self.int(l), self.int(r));
                // Division by zero gives 0, as in the kernel.
                int(super::check::fold(*op, a, b, signed).unwrap_or(0))
            }
            TKind::StrCmp { eq, value, literal } => {
                let same = matches!(self.eval(value), Val::Str(s) if &s == literal);
                int(u64::from(same == *eq))
            }
            TKind::Field(_) | TKind::ReadStr { .. } | TKind::Stack(_) | TKind::Map { .. } => int(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::format::parse_format as parse;

    fn fmt(format: &str, vals: &[Val]) -> String {
        let pieces = parse(format).expect("a valid format");
        let mut out = String::new();
        printf(&mut out, &pieces, vals);
        out
    }

    const I64: IntTy = IntTy::I64;
    const U64: IntTy = IntTy::U64;

    #[test]
    fn conversions_print_as_c_does() {
        let m1 = (-1i64) as u64;
        assert_eq!(
            fmt("%d %i %u", &[Val::Int(m1, I64), Val::Int(42, I64), Val::Int(m1, I64)]),
            "-1 42 4294967295"
        );
        // Without `l`, an int as C takes it (bpftrace hands the format to C's printf).
        let big = (1u64 << 32) + 5;
        let vals = [
            Val::Int(big, I64),
            Val::Int(big, I64),
            Val::Int(m1, U64),
            Val::Int(m1, U64),
            Val::Int(m1, U64),
            Val::Int(m1, I64),
            Val::Int(big, U64),
        ];
        assert_eq!(
            fmt("%d %ld %lu %x %lx %lld %zu", &vals),
            "5 4294967301 18446744073709551615 ffffffff ffffffffffffffff -1 4294967301"
        );
        assert_eq!(
            fmt(
                "[%5d|%-5d|%05d|%+d|% d]",
                &[
                    Val::Int(42, I64),
                    Val::Int(42, I64),
                    Val::Int(m1, I64),
                    Val::Int(7, I64),
                    Val::Int(7, I64)
                ]
            ),
            "[   42|42   |-0001|+7| 7]"
        );
        assert_eq!(
            fmt(
                "%x %X %#x %08x",
                &[Val::Int(255, U64), Val::Int(255, U64), Val::Int(255, U64), Val::Int(255, U64)]
            ),
            "ff FF 0xff 000000ff"
        );
        assert_eq!(
            fmt(
                "%hhd %hu %lu %llu",
                &[Val::Int(255, U64), Val::Int(0x1_0005, U64), Val::Int(5, U64), Val::Int(6, U64)]
            ),
            "-1 5 5 6"
        );
        assert_eq!(fmt("%p %p", &[Val::Ptr(0x7ffd_1234), Val::Ptr(0)]), "0x7ffd1234 (nil)");
        assert_eq!(fmt("%c%c", &[Val::Int(104, U64), Val::Int(105, U64)]), "hi");
        assert_eq!(
            fmt(
                "[%s|%8s|%-8s|%.3s]",
                &[
                    Val::Str("ab".into()),
                    Val::Str("ab".into()),
                    Val::Str("ab".into()),
                    Val::Str("abcdef".into())
                ]
            ),
            "[ab|      ab|ab      |abc]"
        );
        assert_eq!(fmt("%.3d|%5.3d|100%%", &[Val::Int(5, I64), Val::Int(5, I64)]), "005|  005|100%");
    }

    #[test]
    fn maps_print_as_bpftrace_prints_them() {
        assert_eq!(map_text("x", Some(IntTy::U32), vec![]), "\n");
        assert_eq!(map_text("n", None, vec![(0, -2)]), "@n: -2\n");
        assert_eq!(
            map_text("a", Some(IntTy::U32), vec![(1, 5), (2, 3), (3, 4), (0, 4)]),
            "@a[2]: 3\n@a[0]: 4\n@a[3]: 4\n@a[1]: 5\n"
        );
        assert_eq!(map_text("s", Some(IntTy::I64), vec![((-1i64) as u64, 1)]), "@s[-1]: 1\n");
    }

    #[test]
    fn print_uses_the_type() {
        let mut out = String::new();
        print_value(&mut out, &Val::Int((-3i64) as u64, I64));
        print_value(&mut out, &Val::Int((-3i64) as u64, U64));
        print_value(&mut out, &Val::Str("file-io".into()));
        assert_eq!(out, "-3\n18446744073709551613\nfile-io\n");
    }

    #[test]
    fn strings_of_the_traced_world_are_escaped() {
        let name = Val::Bytes(b"a\x1b[2J\n\xff-\xc3\xa9".to_vec());
        assert_eq!(
            fmt("%s|%.3s|%4s|", &[name.clone(), name.clone(), Val::Bytes(b"\x07".to_vec())]),
            "a\\33[2J\\n\\377-é|a\\33[|  \\7|",
            "escaped after the precision cuts the bytes; padded to the width as shown"
        );
        let mut out = String::new();
        print_value(&mut out, &name);
        assert_eq!(out, "a\\33[2J\\n\\377-é\n");
        // The script's own strings are its author's: as written.
        assert_eq!(fmt("%s", &[Val::Str("a\tb\n".into())]), "a\tb\n");
    }

    #[test]
    fn strings_are_cut_on_character_boundaries() {
        let mut s = String::from("héllo");
        cut(&mut s, 2);
        assert_eq!(s, "h");
        let mut s = String::from("output.txt");
        cut(&mut s, 6);
        assert_eq!(s, "output");
    }

    #[test]
    fn strftime_formats_a_known_time() {
        // 2001-09-09 01:46:40 UTC; seconds do not depend on the time zone.
        assert_eq!(strftime("%Y|%%", 1_000_000_000).len(), 6);
        assert_eq!(strftime("%S", 1_000_000_000), "40");
    }
}
