//! The bpftrace language subset that trace runs: `trace -e 'PROGRAM'` and
//! `trace FILE.bt`. The front end is pure (no system calls):
//!
//! ```text
//! text --lexer--> tokens --parser--> ast::Script --check--> ir::Checked
//!                  (first error stops)              (every error is reported)
//! ir::Checked --lower (files, kallsyms, tracefs)--> codegen::ProgSpec per attach point + event table
//! records --printer--> text
//! ```
//!
//! Errors are [`diag::Diagnostic`]s rendered like a compiler's
//! (`trace.bt:3:20: error: ...`, the line, `^~~~` under the text, help).
//! What the checker knows about tracepoints comes from a [`schema::Schema`]
//! (tracefs at run time, fixtures in tests). `README.md` next to this file lists
//! the language and what is not supported yet.
//!
//! # How each construct lowers onto the engine ([`lower`], [`printer`])
//!
//! The engine today is [`crate::plan`] (probes and attach points),
//! [`crate::codegen`] (one program per probe: filter, fill the [`crate::record`]
//! on the stack, read a string, `bpf_perf_event_output`) and [`crate::output`]
//! (records -> lines). The lowering keeps the record and the one-program-per-probe
//! shape and adds what a language needs:
//!
//! - **Probes** -> [`crate::plan::Attach`]: `kprobe`/`kretprobe` checked in
//!   kallsyms (wildcards expanded there); `uprobe:PATH:FUNC` resolved with
//!   [`crate::elf`]: `./file-io` against the current directory and
//!   canonicalised as bpftrace does, a bare library name (`libc`) through the
//!   ld.so cache, no PATH meaning the `-c`/`-p` program; `tracepoint` -> its id
//!   and format from tracefs (the same format the checker typed `args` with).
//!   A name that does not exist is a [`diag::Diagnostic`] at the probe's span.
//!   Each [`ir::ProbeProgram`] becomes one program with no filter of trace's
//!   own: the predicate is the filter (as in bpftrace, `-p`/`-c` limit only
//!   uprobes, which are opened for that pid).
//! - **Maps** (`@m[key]`) -> one BPF hash map each (u64 key, i64 value);
//!   reads look the key up (0 when absent), `+=`/`++`/`count()`/`sum()` are a
//!   read and an update, `delete` a delete; user space prints them at the end.
//! - **Values** -> registers: `pid`/`tid` from the `get_current_pid_tgid` the
//!   prologue already calls (r7), `uid` (`get_current_uid_gid`), `cpu`
//!   (`get_smp_processor_id`), `nsecs` (`ktime_get_ns`), `arg0..5` ->
//!   `Value::Reg(pt_regs::ARGS[n])`, `retval` -> `Value::Reg(pt_regs::AX)`,
//!   `args->f` -> `Value::Field { offset, size }`, sign-extended when the field
//!   is signed and narrower than 8 bytes. `probe` and `func` are constants of
//!   each program: they never reach the kernel.
//! - **Integer expressions** -> ALU64 instructions on r0..r5 with spill slots
//!   below the record (r6 = context, r7 = pid_tgid, r8/r9 as now); constants
//!   are already folded. [`check::signed_operation`] picks signed or unsigned
//!   compares, shifts, division (`sdiv`/`smod` need cpu v4, Linux 6.6; before
//!   that signed division is done on magnitudes). `&&`/`||` short-circuit with
//!   jumps; `!` and comparisons produce 0/1.
//! - **Scratch variables** (`$x`) -> one 8-byte stack slot each
//!   ([`ir::ProbeProgram::vars`]); only integers and pointers, so a slot is enough.
//! - **Predicate** `/c/` -> computed first; false jumps to `out` (no record).
//!   `if/else` -> conditional jumps around the two blocks.
//! - **String comparison** ([`ir::TKind::StrCmp`]): `comm == "echo"` ->
//!   `get_current_comm` into a 16-byte slot, compared as two u64 words with the
//!   literal padded with NULs (a literal longer than 15 never matches; the
//!   checker warns). `str(p) == "x"` -> read into the record's string, compared
//!   byte by byte up to the literal's length + 1 (unrolled, bounded).
//! - **printf** -> the kernel sends, per call, one record whose `probe` field is
//!   an *event id*: an index into a table of (program, [`ir::SiteId`]) pairs
//!   built by the lowering. Integer and pointer arguments go to `vals[i]` in
//!   order (at most 6, checked), `comm` to the record's `comm`, the one
//!   run-time string (`str()` or a `char[]` field) to `str` with
//!   `probe_read_user_str` (and the existing retry at return for pages not yet
//!   faulted in, when the probe has a return half). Literals, `probe` and
//!   `func` stay in user space. The *formatting happens in user space*: the
//!   formatter takes the site's [`format::Piece`]s and fills each conversion
//!   from the record (`%d` sign-extends from the argument's [`ir::IntTy`];
//!   `hh`/`h` cut to 8/16 bits), so printf costs the kernel only the copy.
//! - **print(v)** -> the same record with one value; user space prints it with
//!   its type's default format and a newline.
//! - **kstack / ustack** -> `bpf_get_stackid` (with `BPF_F_USER_STACK` for
//!   ustack) into a `STACK_TRACE` map, the id in a `vals` slot; user space
//!   reads the map and symbolises the frames: [`crate::kallsyms`] for the
//!   kernel, the ELF symbols and `/proc/PID/maps` for user stacks.
//! - **time()** -> a record with no value: user space prints its clock.
//! - **exit()** -> a record with the exit site: user space stops reading after
//!   it, runs `END`, detaches.
//! - **BEGIN / END** -> no BPF at all: user space runs their checked statements
//!   itself, before attaching and after detaching (their `printf`s see only
//!   constants, and trace's own `pid`/`comm`).
//!
//! A verifier rejection of a lowered program is a bug in trace: the CLI says so
//! and shows the program's listing and the verifier log.

pub mod ast;
pub mod check;
pub mod diag;
pub mod format;
pub mod ir;
pub mod lexer;
pub mod lower;
pub mod parser;
pub mod printer;
pub mod schema;
pub mod source;

pub use diag::{CompileError, Diagnostic, Severity};
pub use schema::{Formats, NoSchema, Schema};
pub use source::{Source, Span};

/// A program that parsed and passed the checks.
#[derive(Clone, Debug)]
pub struct Program {
    pub source: Source,
    pub script: ast::Script,
    pub checked: ir::Checked,
}

impl Program {
    /// The warnings, rendered (empty if there are none).
    pub fn warnings(&self) -> String {
        diag::render_all(&self.source, &self.checked.warnings)
    }
}

/// Parses and checks a program. `name` is how messages call it: the file name,
/// or `-e` for a one-liner.
pub fn compile(name: &str, text: &str, schema: &dyn Schema) -> Result<Program, CompileError> {
    let source = Source::new(name, text);
    let script = parser::parse(text).map_err(|d| CompileError::new(&source, vec![d]))?;
    let checked = check::check(&script, &source, schema).map_err(|ds| CompileError::new(&source, ds))?;
    Ok(Program { source, script, checked })
}

#[cfg(test)]
mod tests;
