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

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};

use crate::plan::{Kind, Probe};
use crate::record::{Flags, Record};

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

/// The lab-style formatter.
pub struct Formatter<W: Write> {
    out: W,
    probes: Vec<Probe>,
    opts: OutputOpts,
    threads: HashMap<u32, Thread>,
    queue: VecDeque<Line>,
    many_threads: bool,
}

impl<W: Write> Formatter<W> {
    pub fn new(out: W, probes: Vec<Probe>, opts: OutputOpts) -> Self {
        Formatter {
            out,
            probes,
            opts,
            threads: HashMap::new(),
            queue: VecDeque::new(),
            many_threads: opts.show_tid,
        }
    }

    /// Formats one record (records must come in time order).
    pub fn event(&mut self, r: &Record) -> io::Result<()> {
        let Some(probe) = self.probes.get(r.probe as usize) else {
            return Ok(()); // a stray id
        };
        let (ret, pair) = (probe.ret, probe.pair);
        // Say which thread once two are traced at the same time: another thread
        // has a call in progress. Processes that run one after another (--watch)
        // need no prefix.
        if !self.many_threads {
            self.many_threads = self.threads.iter().any(|(&tid, t)| tid != r.tid && !t.calls.is_empty());
        }
        let prefix = if self.many_threads { format!("[{}] ", r.tid) } else { String::new() };
        if ret && r.flags.contains(Flags::STR_RETRY) {
            self.fill(r.tid, pair, r.string.as_deref());
        }
        let line = if ret { self.exit_line(r.probe, r) } else { self.entry_line(r.probe, r) };
        if let Some(t) = self.threads.get(&r.tid) {
            if t.calls.is_empty() && t.kernel == 0 {
                self.threads.remove(&r.tid); // idle: keep only threads with calls in progress
            }
        }
        if let Some(mut line) = line {
            line.text.insert_str(0, &prefix);
            if let Some(h) = &mut line.hole {
                h.at += prefix.len();
            }
            self.queue.push_back(line);
        }
        self.flush_ready()
    }

    fn entry_line(&mut self, id: u32, r: &Record) -> Option<Line> {
        let p = &self.probes[id as usize];
        let t = self.threads.entry(r.tid).or_default();
        t.calls.push((id, r.ktime));
        let mut hole = None;
        let mut text = match p.kind {
            // Nesting from the kernel's own count: right even when records were lost.
            Kind::ProgFunc => format!("{}> {}", "  ".repeat(r.depth as usize), p.func),
            Kind::LibFunc => {
                let mut s = format!(".. enter {}", p.func);
                if p.string_arg.is_some() {
                    s.push('(');
                    push_string(&mut s, &mut hole, r, id);
                    s.push(')');
                }
                s
            }
            Kind::Syscall => {
                let mut s = format!(".... Enter {}() systemcall", p.func);
                if p.string_arg.is_some() {
                    s.push_str(", argument is ");
                    push_string(&mut s, &mut hole, r, id);
                } else if !p.values.is_empty() {
                    s.push_str(", arguments:");
                    for (d, v) in p.values.iter().zip(r.vals) {
                        s.push_str(&format!(" {}={}", d.name, show_value(v, d.size, d.signed, d.pointer)));
                    }
                }
                s
            }
            Kind::KFunc => {
                let s = format!(".... .... {}Called {}", ".... ".repeat(t.kernel), p.func);
                t.kernel += 1;
                s
            }
        };
        if p.show_comm {
            text.push_str(" with command ");
            text.push_str(&r.comm());
        }
        Some(Line { text, hole })
    }

    fn exit_line(&mut self, id: u32, r: &Record) -> Option<Line> {
        let p = &self.probes[id as usize];
        let t = self.threads.entry(r.tid).or_default();
        let started = match t.calls.iter().rposition(|&(e, _)| e == p.pair) {
            Some(i) => {
                let (_, at) = t.calls.remove(i);
                Some(at)
            }
            None => None,
        };
        let mut text = match p.kind {
            Kind::ProgFunc => format!("{}< {}", "  ".repeat(r.depth as usize), p.func),
            Kind::LibFunc => format!(".. exit {}", p.func),
            Kind::Syscall => format!(".... Exit {}() systemcall", p.func),
            Kind::KFunc => {
                t.kernel = t.kernel.saturating_sub(1);
                format!(".... .... {}Return from {}", ".... ".repeat(t.kernel), p.func)
            }
        };
        if self.opts.ret {
            text.push_str(" = ");
            text.push_str(&show_return(r.vals[0], p.kind));
        }
        if self.opts.timing {
            if let Some(at) = started {
                let ns = r.ktime.saturating_sub(at);
                text.push_str(&format!(" <{}.{:06}>", ns / 1_000_000_000, (ns % 1_000_000_000) / 1000));
            }
        }
        Some(Line { text, hole: None })
    }

    /// An exit brought the string its entry could not read: put it in its line.
    fn fill(&mut self, tid: u32, entry: u32, s: Option<&str>) {
        for line in self.queue.iter_mut().rev() {
            let Some(h) = &line.hole else { continue };
            if h.tid == tid && h.entry == entry {
                let h = line.hole.take().expect("checked");
                line.text.insert_str(h.at, s.unwrap_or(&h.fallback));
                return;
            }
        }
    }

    fn flush_ready(&mut self) -> io::Result<()> {
        while let Some(front) = self.queue.front() {
            if front.hole.is_some() {
                break;
            }
            let line = self.queue.pop_front().expect("front exists");
            writeln!(self.out, "{}", line.text)?;
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

/// Writes the string of an entry record, or leaves a hole the exit will fill.
fn push_string(s: &mut String, hole: &mut Option<Hole>, r: &Record, id: u32) {
    match &r.string {
        Some(text) => s.push_str(text),
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

    #[test]
    fn field_values() {
        assert_eq!(show_value(0xffff_ff9c, 4, true, false), "-100");
        assert_eq!(show_value(0x1_0000_0005, 4, false, false), "5");
        assert_eq!(show_value(0x7ffd_0000, 8, false, true), "0x7ffd0000");
    }
}
