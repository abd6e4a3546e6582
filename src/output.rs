//! Turns decoded records into lines, in the lab's style by default:
//!
//! ```text
//! > native                                     program function entered
//! .. enter open(output.txt)                    library function
//! .... Enter open() systemcall, argument is output.txt
//! .... .... Called vfs_open                    kernel function
//! .... .... .... Called ext4_file_open with command file-io
//! ```
//!
//! No kernel knowledge lives here: only the probe table and the records.
//!
//! What the traced world names (file names, the command name, function names
//! read from ELF files) is shown with strace's escapes ([`crate::escape`]), and
//! a string longer than the probe read ends with `...`.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Write};

use crate::escape::{self, Style};
use crate::plan::{Kind, Probe};
use crate::record::{self, Flags, Record};

/// Where records go to be shown: the lab-style [`Formatter`], or a script's
/// printer ([`crate::lang::printer`]).
pub trait Sink {
    /// A record has just been read from a ring (it is shown later, in order):
    /// the moment to look at its process while it may still run.
    fn arrived(&mut self, _r: &Record) {}
    /// Shows one record (records come in order: the ring buffer's, or by time
    /// across per-CPU perf rings). Returns true to stop
    /// tracing here (a script's `exit()`).
    fn event(&mut self, r: &Record) -> io::Result<bool>;
    /// Writes out what is buffered.
    fn flush(&mut self) -> io::Result<()>;
    /// The trace is over: writes what is still held back.
    fn finish(&mut self) -> io::Result<()>;
}

impl<W: Write> Sink for Formatter<W> {
    fn event(&mut self, r: &Record) -> io::Result<bool> {
        Formatter::event(self, r).map(|_| false)
    }
    fn flush(&mut self) -> io::Result<()> {
        Formatter::flush(self)
    }
    fn finish(&mut self) -> io::Result<()> {
        Formatter::finish(self)
    }
}

/// What to add to each line.
#[derive(Clone, Copy, Debug, Default)]
pub struct OutputOpts {
    /// Return values on return lines (` = 3`, ` = -14 EFAULT`).
    pub ret: bool,
    /// Time spent in each call on return lines (` <0.000012>`).
    pub timing: bool,
    /// Prefix every line with its thread id from the start (`-f`).
    pub show_tid: bool,
}

/// A line waiting for the string its entry could not read.
struct Line {
    text: String,
    /// The string goes here (byte index into `text`), once known.
    hole: Option<Hole>,
}

struct Hole {
    at: usize,
    tid: u32,
    entry: u32,
    /// Shown if the string never arrives: the raw pointer and why.
    fallback: String,
}

#[derive(Default)]
struct Thread {
    /// Nesting of kernel functions.
    kernel: usize,
    /// (entry probe id, entry time) of the calls in progress.
    calls: Vec<(u32, u64)>,
}

/// Hashes thread ids with one multiplication: the default SipHash cost more than
/// the rest of formatting a line (callgrind).
#[derive(Default)]
struct TidHasher(u64);

impl Hasher for TidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Buffers kept for reuse (line texts, call stacks of idle threads): beyond this
/// many, they are freed.
const SPARE: usize = 64;

/// The lab-style formatter.
pub struct Formatter<W: Write> {
    out: W,
    probes: Vec<Probe>,
    /// The probes' function names, escaped once.
    names: Vec<String>,
    opts: OutputOpts,
    threads: HashMap<u32, Thread, BuildHasherDefault<TidHasher>>,
    queue: VecDeque<Line>,
    /// Texts of lines already written, reused for new lines: no allocation per line.
    spare_lines: Vec<String>,
    /// Call stacks of threads that went idle, reused for threads that start a call.
    spare_calls: Vec<Vec<(u32, u64)>>,
}

impl<W: Write> Formatter<W> {
    pub fn new(out: W, probes: Vec<Probe>, opts: OutputOpts) -> Self {
        let names = probes.iter().map(|p| escape::escape(p.func.as_bytes()).into_owned()).collect();
        Formatter {
            out,
            probes,
            names,
            opts,
            threads: HashMap::default(),
            queue: VecDeque::new(),
            spare_lines: Vec::new(),
            spare_calls: Vec::new(),
        }
    }

    /// Formats one record (records must come in time order).
    pub fn event(&mut self, r: &Record) -> io::Result<()> {
        let Some(probe) = self.probes.get(r.probe as usize) else {
            return Ok(()); // a stray id
        };
        let (ret, pair) = (probe.ret, probe.pair);
        // One rule for who made a line: a process's main thread (tid = pid)
        // is the program itself and goes bare, as in the lab's output; any other
        // thread says its id on every line, from its first; with -f every line
        // does (processes of a family interleave).
        let mut text = self.spare_lines.pop().unwrap_or_default();
        if self.opts.show_tid || r.tid != r.tgid {
            let _ = write!(text, "[{}] ", r.tid);
        }
        if ret && r.flags.contains(Flags::STR_RETRY) {
            self.fill(r.tid, pair, r.string.as_deref());
        }
        let line = if ret { self.exit_line(r.probe, r, text) } else { self.entry_line(r.probe, r, text) };
        if let Some(t) = self.threads.get(&r.tid) {
            if t.calls.is_empty() && t.kernel == 0 {
                // Idle: keep only threads with calls in progress.
                if let Some(t) = self.threads.remove(&r.tid) {
                    if self.spare_calls.len() < SPARE {
                        self.spare_calls.push(t.calls);
                    }
                }
            }
        }
        self.queue.push_back(line);
        self.flush_ready()
    }

    /// The state of thread `tid`, made (with a reused call stack) if new.
    fn thread(&mut self, tid: u32) -> &mut Thread {
        let spare = &mut self.spare_calls;
        self.threads
            .entry(tid)
            .or_insert_with(|| Thread { kernel: 0, calls: spare.pop().unwrap_or_default() })
    }

    /// The entry line of a record, appended to `s` (which holds the thread prefix).
    fn entry_line(&mut self, id: u32, r: &Record, mut s: String) -> Line {
        let t = self.thread(r.tid);
        t.calls.push((id, r.ktime));
        let kernel = t.kernel;
        let p = &self.probes[id as usize];
        let name = &self.names[id as usize];
        let mut hole = None;
        match p.kind {
            // Nesting from the kernel's own count: right even when records were lost.
            Kind::ProgFunc => {
                push_repeated(&mut s, "  ", r.depth as usize);
                s.push_str("> ");
                s.push_str(name);
            }
            Kind::LibFunc => {
                s.push_str(".. enter ");
                s.push_str(name);
                if p.string_arg.is_some() {
                    s.push('(');
                    push_string(&mut s, &mut hole, r, id);
                    s.push(')');
                }
            }
            Kind::Syscall => {
                s.push_str(".... Enter ");
                s.push_str(name);
                s.push_str("() systemcall");
                if p.string_arg.is_some() {
                    s.push_str(", argument is ");
                    push_string(&mut s, &mut hole, r, id);
                } else if !p.values.is_empty() {
                    s.push_str(", arguments:");
                    for (d, v) in p.values.iter().zip(r.vals) {
                        let _ = write!(s, " {}={}", d.name, show_value(v, d.size, d.signed, d.pointer));
                    }
                }
            }
            Kind::KFunc => {
                s.push_str(".... .... ");
                push_repeated(&mut s, ".... ", kernel);
                s.push_str("Called ");
                s.push_str(name);
            }
        }
        if p.show_comm {
            s.push_str(" with command ");
            escape::push(&mut s, r.comm(), Style::Ascii);
        }
        if p.kind == Kind::KFunc {
            self.thread(r.tid).kernel += 1;
        }
        Line { text: s, hole }
    }

    /// The return line of a record, appended to `s` (which holds the thread prefix).
    fn exit_line(&mut self, id: u32, r: &Record, mut s: String) -> Line {
        let (pair, kind) = (self.probes[id as usize].pair, self.probes[id as usize].kind);
        let t = self.thread(r.tid);
        let started = match t.calls.iter().rposition(|&(e, _)| e == pair) {
            Some(i) => {
                let (_, at) = t.calls.remove(i);
                Some(at)
            }
            None => None,
        };
        if kind == Kind::KFunc {
            t.kernel = t.kernel.saturating_sub(1);
        }
        let kernel = t.kernel;
        let p = &self.probes[id as usize];
        match p.kind {
            Kind::ProgFunc => {
                push_repeated(&mut s, "  ", r.depth as usize);
                s.push_str("< ");
            }
            Kind::LibFunc => s.push_str(".. exit "),
            Kind::Syscall => s.push_str(".... Exit "),
            Kind::KFunc => {
                s.push_str(".... .... ");
                push_repeated(&mut s, ".... ", kernel);
                s.push_str("Return from ");
            }
        }
        s.push_str(&self.names[id as usize]);
        if p.kind == Kind::Syscall {
            s.push_str("() systemcall");
        }
        if self.opts.ret {
            s.push_str(" = ");
            s.push_str(&show_return(r.vals[0], p.kind));
        }
        if self.opts.timing {
            if let Some(at) = started {
                let ns = r.ktime.saturating_sub(at);
                let _ = write!(s, " <{}.{:06}>", ns / 1_000_000_000, (ns % 1_000_000_000) / 1000);
            }
        }
        Line { text: s, hole: None }
    }

    /// An exit brought the string its entry could not read: put it in its line.
    fn fill(&mut self, tid: u32, entry: u32, s: Option<&[u8]>) {
        for line in self.queue.iter_mut().rev() {
            let Some(h) = &line.hole else { continue };
            if h.tid == tid && h.entry == entry {
                let h = line.hole.take().expect("checked");
                match s {
                    Some(bytes) => {
                        let mut text = String::new();
                        push_read_string(&mut text, bytes);
                        line.text.insert_str(h.at, &text);
                    }
                    None => line.text.insert_str(h.at, &h.fallback),
                }
                return;
            }
        }
    }

    fn flush_ready(&mut self) -> io::Result<()> {
        while let Some(front) = self.queue.front() {
            if front.hole.is_some() {
                break;
            }
            let Some(mut line) = self.queue.pop_front() else { break };
            self.out.write_all(line.text.as_bytes())?;
            self.out.write_all(b"\n")?;
            if self.spare_lines.len() < SPARE {
                line.text.clear();
                self.spare_lines.push(line.text);
            }
        }
        Ok(())
    }

    /// Writes everything, filling strings that never arrived with their fallback.
    pub fn finish(&mut self) -> io::Result<()> {
        for line in self.queue.iter_mut() {
            if let Some(h) = line.hole.take() {
                line.text.insert_str(h.at, &h.fallback);
            }
        }
        self.flush_ready()?;
        self.out.flush()
    }

    /// Flushes the output (once per batch).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Appends `unit` `n` times (indentation).
fn push_repeated(s: &mut String, unit: &str, n: usize) {
    for _ in 0..n {
        s.push_str(unit);
    }
}

/// A string read by a probe, escaped, and `...` when it went on beyond what
/// is shown.
fn push_read_string(s: &mut String, bytes: &[u8]) {
    let (shown, cut) = record::shown_part(bytes);
    escape::push(s, shown, Style::Ascii);
    if cut {
        s.push_str("...");
    }
}

/// Writes the string of an entry record, or leaves a hole the exit will fill.
fn push_string(s: &mut String, hole: &mut Option<Hole>, r: &Record, id: u32) {
    match &r.string {
        Some(bytes) => push_read_string(s, bytes),
        None => {
            let why = match crate::errno::name(-i64::from(r.str_ret)) {
                Some(n) if r.str_ret < 0 => n.to_string(),
                _ => format!("error {}", r.str_ret),
            };
            let fallback = format!("{:#x} (unreadable: {why})", r.str_ptr);
            if r.flags.contains(Flags::STR_FAULT) {
                *hole = Some(Hole { at: s.len(), tid: r.tid, entry: id, fallback });
            } else {
                s.push_str(&fallback);
            }
        }
    }
}

fn show_value(v: u64, size: u8, signed: bool, pointer: bool) -> String {
    if pointer {
        return format!("{v:#x}");
    }
    let bits = u32::from(size.clamp(1, 8)) * 8;
    if signed {
        let shift = 64 - bits;
        (((v << shift) as i64) >> shift).to_string()
    } else {
        let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
        (v & mask).to_string()
    }
}

/// A return value: system calls as `-14 EFAULT`, big values in hex.
pub fn show_return(v: u64, kind: Kind) -> String {
    let s = v as i64;
    if kind == Kind::Syscall && (-4095..0).contains(&s) {
        return match crate::errno::name(-s) {
            Some(n) => format!("{s} {n}"),
            None => s.to_string(),
        };
    }
    if (-(1 << 31)..(1 << 32)).contains(&s) {
        s.to_string()
    } else {
        format!("{v:#x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_values() {
        assert_eq!(show_return((-14i64) as u64, Kind::Syscall), "-14 EFAULT");
        assert_eq!(show_return(3, Kind::Syscall), "3");
        assert_eq!(show_return(0x7fff_1234_5678, Kind::LibFunc), "0x7fff12345678");
        assert_eq!(show_return((-1i64) as u64, Kind::LibFunc), "-1");
    }

    /// An entry probe and its return, on a kernel function with the command name
    /// (the lab's `ext4_file_open` line) or a library function with a string.
    fn probes(kind: Kind, func: &str) -> Vec<Probe> {
        use crate::codegen::{Ctx, Depth, Filter, ProgSpec, StringOp};
        let probe = |id: u32, ret: bool| Probe {
            id,
            kind,
            ret,
            func: func.into(),
            attach: crate::plan::Attach::Kprobe { func: func.into(), addr: 0 },
            spec: ProgSpec::record(id, Ctx::PtRegs, Filter::None, vec![], StringOp::None, Depth::None),
            values: vec![],
            string_arg: (kind == Kind::LibFunc && !ret).then_some(0),
            show_comm: kind == Kind::KFunc && !ret,
            pair: id ^ 1,
        };
        vec![probe(0, false), probe(1, true)]
    }

    fn lines(probes: Vec<Probe>, records: &[Record]) -> String {
        let mut f = Formatter::new(Vec::new(), probes, OutputOpts::default());
        for r in records {
            f.event(r).unwrap();
        }
        f.finish().unwrap();
        String::from_utf8(f.into_inner()).unwrap()
    }

    #[test]
    fn lines_of_threads_other_than_the_main_one_say_their_id_from_the_first() {
        let rec = |probe, tid| Record { probe, tid, tgid: 7, ..Record::default() };
        // The worker's call comes first, then the main thread's, then they overlap.
        let got = lines(
            probes(Kind::ProgFunc, "f"),
            &[rec(0, 8), rec(1, 8), rec(0, 7), rec(0, 8), rec(1, 8), rec(1, 7)],
        );
        // Each thread nests on its own: the worker is at depth 0 inside main.
        assert_eq!(got, "[8] > f\n[8] < f\n> f\n[8] > f\n[8] < f\n< f\n");
    }

    #[test]
    fn names_from_the_traced_world_are_escaped() {
        let entry = Record {
            tid: 7,
            tgid: 7,
            flags: Flags::STR_PRESENT,
            str_ret: 20,
            comm: record::comm_bytes("cm\x1b[2Jd\n"),
            string: Some(b"a\x1b]0;t\x07\n.. exit open\xff".to_vec()),
            ..Record::default()
        };
        let exit = Record { probe: 1, tid: 7, tgid: 7, ..Record::default() };
        assert_eq!(
            lines(probes(Kind::LibFunc, "op\x1ben"), &[entry.clone(), exit.clone()]),
            ".. enter op\\33en(a\\33]0;t\\7\\n.. exit open\\377)\n.. exit op\\33en\n"
        );
        assert_eq!(
            lines(probes(Kind::KFunc, "ext4_file_open"), &[entry, exit]),
            ".... .... Called ext4_file_open with command cm\\33[2Jd\\n\n\
             .... .... Return from ext4_file_open\n"
        );
    }

    #[test]
    fn a_string_that_filled_the_buffer_ends_with_dots() {
        let name = |n: usize| Record {
            tid: 7,
            tgid: 7,
            flags: Flags::STR_PRESENT,
            str_ret: n as i32 + 1,
            string: Some(vec![b'x'; n]),
            ..Record::default()
        };
        let exit = Record { probe: 1, tid: 7, tgid: 7, ..Record::default() };
        let shown = |n: usize| {
            let out = lines(probes(Kind::LibFunc, "open"), &[name(n), exit.clone()]);
            out.lines().next().unwrap().to_string()
        };
        let x = |n: usize| "x".repeat(n);
        assert_eq!(shown(record::STR_SHOWN), format!(".. enter open({})", x(record::STR_SHOWN)));
        assert_eq!(shown(record::STR_LEN - 1), format!(".. enter open({}...)", x(record::STR_SHOWN)));
        // Read again at return (its page was not in memory at entry): the same.
        let fault = Record {
            tid: 7,
            tgid: 7,
            flags: Flags::STR_FAULT,
            str_ptr: 0x1000,
            str_ret: -14,
            ..Record::default()
        };
        let retry = Record { flags: Flags::STR_RETRY, ..name(record::STR_LEN - 1) };
        let out = lines(probes(Kind::LibFunc, "open"), &[fault, Record { probe: 1, ..retry }]);
        assert_eq!(out.lines().next().unwrap(), format!(".. enter open({}...)", x(record::STR_SHOWN)));
    }

    #[test]
    fn field_values() {
        assert_eq!(show_value(0xffff_ff9c, 4, true, false), "-100");
        assert_eq!(show_value(0x1_0000_0005, 4, false, false), "5");
        assert_eq!(show_value(0x7ffd_0000, 8, false, true), "0x7ffd0000");
    }
}
