//! Probe planning: what the user asked for -> concrete attach points and the
//! program description of each probe. Pure decisions; nothing is attached here.

use crate::util::{glob_match, is_glob};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::codegen::{pt_regs, Ctx, Depth, Filter, ProgSpec, Register, StringOp, Value};
use crate::elf::{self, ElfFile};
use crate::escape;
use crate::kallsyms::{FilterFunctions, Kallsyms};
use crate::tracefs::Tracefs;

/// What kind of function or event a probe watches; decides its output style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A function defined in the traced program (`> native`).
    ProgFunc,
    /// A function of a shared library, such as libc's `open` (`.. enter open(...)`).
    LibFunc,
    /// A system call tracepoint (`.... Enter open() systemcall`).
    Syscall,
    /// A kernel function, through a kprobe (`.... .... Called vfs_open`).
    KFunc,
}

/// Where a probe attaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attach {
    Uprobe { path: PathBuf, offset: u64, symbol: Box<elf::Symbol> },
    Kprobe { func: String, addr: u64 },
    Tracepoint { category: String, name: String, id: u32 },
}

/// Name and signedness of a recorded value, for printing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueDesc {
    pub name: String,
    pub size: u8,
    pub signed: bool,
    pub pointer: bool,
}

/// One probe: one program, attached once.
#[derive(Clone, Debug)]
pub struct Probe {
    pub id: u32,
    pub kind: Kind,
    /// The return half of a function or system call.
    pub ret: bool,
    /// The function or system call name as shown.
    pub func: String,
    pub attach: Attach,
    pub spec: ProgSpec,
    /// Describes `vals` of the records this probe sends.
    pub values: Vec<ValueDesc>,
    /// Index of the value holding the string argument, if any.
    pub string_arg: Option<usize>,
    /// Show the command name on entry lines (the lab's `ext4_file_open` line).
    pub show_comm: bool,
    /// The id of the other half (entry <-> return).
    pub pair: u32,
}

impl Probe {
    /// How the probe is named to the user and in the kernel (prog_name):
    /// `uprobe:native`, `kretprobe:vfs_open`, `tracepoint:syscalls:sys_enter_open`.
    /// A function's name comes from an ELF file: escaped.
    pub fn label(&self) -> String {
        let func = escape::text(&self.func);
        match &self.attach {
            Attach::Uprobe { .. } => {
                format!("{}{func}", if self.ret { "uretprobe:" } else { "uprobe:" })
            }
            Attach::Kprobe { .. } => {
                format!("{}{func}", if self.ret { "kretprobe:" } else { "kprobe:" })
            }
            Attach::Tracepoint { category, name, .. } => format!("tracepoint:{category}:{name}"),
        }
    }
}

/// What to trace, as the user asked.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Program functions (`-u`); globs allowed.
    pub funcs: Vec<String>,
    /// Library functions (`-L`): `name` or `lib:name`.
    pub libs: Vec<String>,
    /// System calls (`-s`).
    pub syscalls: Vec<String>,
    /// Kernel functions (`-k`).
    pub kfuncs: Vec<String>,
    /// Kernel functions whose entry line names the command (the lab's ext4_file_open).
    pub kfuncs_with_comm: Vec<String>,
    /// Show every event of the traced processes, not only inside program functions.
    pub all_events: bool,
    /// Attach programs that do nothing (benchmark floor).
    pub floor: bool,
    /// Do not read unreadable strings again at return (tests of the retry only).
    pub no_string_retry: bool,
    /// The records carry their time (`-T` shows how long each call took).
    pub timing: bool,
}

impl Request {
    /// The lab's probe set: every function of the program, libc's `open`, the
    /// open system call, and the kernel's `vfs_open` and `ext4_file_open`.
    pub fn lab() -> Request {
        Request {
            funcs: vec!["*".into()],
            libs: vec!["open".into()],
            syscalls: vec!["open".into()],
            kfuncs: vec!["vfs_open".into(), "ext4_file_open".into()],
            kfuncs_with_comm: vec!["ext4_file_open".into()],
            ..Default::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.funcs.is_empty() && self.libs.is_empty() && self.syscalls.is_empty() && self.kfuncs.is_empty()
    }
}

/// Whose events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// One process (the command, or -p): uprobes opened for its pid.
    Process,
    /// `--watch`: every process that runs the binary; uprobes system-wide on it.
    Binary,
    /// `-f`: the process and its descendants; uprobes system-wide, filtered in the
    /// kernel by the traced set, which a fork probe grows.
    Follow,
}

/// A probe the kernel cannot offer, reported by name and skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub what: String,
    pub why: String,
}

/// The result of planning.
#[derive(Debug, Default)]
pub struct Plan {
    pub probes: Vec<Probe>,
    pub skipped: Vec<Skipped>,
    /// Hidden probes that grow the traced set and print nothing: the binary's
    /// entry point for `--watch`, the fork tracepoint for `-f`.
    pub hidden: Vec<Probe>,
}

impl Plan {
    /// Whether any probe, hidden ones included, is a uprobe.
    pub fn has_uprobes(&self) -> bool {
        self.probes.iter().chain(&self.hidden).any(|p| matches!(p.attach, Attach::Uprobe { .. }))
    }
}

/// Why a plan could not be made; each names what the user typed.
#[derive(Debug)]
pub enum PlanError {
    Elf(elf::ElfError),
    Resolve(elf::ResolveError),
    Library(elf::LibError),
    NoFunctions {
        binary: PathBuf,
        pattern: String,
        stripped: bool,
    },
    Tracefs(crate::tracefs::TracefsError),
    UnknownSyscall {
        name: String,
        close: Vec<String>,
    },
    KernelFunction {
        name: String,
        close: Vec<String>,
    },
    /// A kernel function the kernel does not let tracers attach to: missing from
    /// `available_filter_functions` (read from `list`).
    NotTraceable {
        name: String,
        list: PathBuf,
        close: Vec<String>,
    },
    Kallsyms(std::io::Error),
    /// A tracepoint's format file lacks what trace relies on (a kernel it does not know).
    Format {
        event: String,
        problem: String,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::Elf(e) => write!(f, "{e}"),
            PlanError::Resolve(e) => write!(f, "{e}"),
            PlanError::Library(e) => write!(f, "{e}"),
            PlanError::NoFunctions { binary, pattern, stripped } => {
                let (pattern, binary) = (escape::text(pattern), escape::path(binary));
                write!(f, "no function matching `{pattern}` is defined in {binary}")?;
                if *stripped {
                    write!(f, " (it is stripped: rebuild it without -s, or trace library functions with -L and system calls with -s)")
                } else {
                    write!(f, "; `trace -l {binary}` lists them")
                }
            }
            PlanError::Tracefs(e) => write!(f, "{e}"),
            PlanError::UnknownSyscall { name, close } => {
                let name = escape::text(name);
                write!(f, "unknown system call `{name}`: no tracepoint syscalls/sys_enter_{name}")?;
                did_you_mean(f, close)
            }
            PlanError::KernelFunction { name, close } => {
                let name = escape::text(name);
                write!(f, "no kernel function `{name}` in /proc/kallsyms")?;
                did_you_mean(f, close)
            }
            PlanError::NotTraceable { name, list, close } => {
                let name = escape::text(name);
                write!(
                    f,
                    "the kernel does not let kernel function `{name}` be traced: it is not in {} \
                     (functions marked notrace or noinstr are left out of it)",
                    escape::path(list)
                )?;
                did_you_mean(f, close)
            }
            PlanError::Kallsyms(e) => write!(f, "cannot read /proc/kallsyms: {e}"),
            PlanError::Format { event, problem } => write!(
                f,
                "the tracepoint {event} {problem}; this kernel's format differs from what trace knows, \
                 please report it with the output of `cat /sys/kernel/tracing/events/{event}/format`"
            ),
        }
    }
}

fn did_you_mean(f: &mut fmt::Formatter<'_>, close: &[String]) -> fmt::Result {
    match close {
        [] => Ok(()),
        [one] => write!(f, "; did you mean `{one}`?"),
        many => write!(f, "; did you mean one of: {}?", many.join(", ")),
    }
}

impl std::error::Error for PlanError {}

/// What the planner needs to know about the system.
pub struct Env<'a> {
    pub target: &'a ElfFile,
    /// The traced pid, when known (for /proc/PID/maps library lookup).
    pub pid: Option<u32>,
    pub scope: Scope,
    /// `-f`: add the fork probe.
    pub follow: bool,
    pub tracefs: Option<&'a Tracefs>,
    /// The kernel's functions, when /proc/kallsyms is readable: names are checked
    /// against it first, so a misspelling fails on every kernel.
    pub kallsyms: Option<&'a Kallsyms>,
    /// The functions the kernel lets tracers attach to, when
    /// `available_filter_functions` is readable: a name in kallsyms but not here
    /// fails before anything is attached.
    pub filter_functions: Option<&'a FilterFunctions>,
    /// Whether the kernel can attach kprobes; if not, kernel functions are skipped.
    pub kprobes: bool,
    /// Why kernel functions are unavailable, when `kprobes` is false.
    pub no_kprobes_reason: String,
}

struct Builder {
    probes: Vec<Probe>,
    /// Read strings again at return when the entry could not (see [`StringOp`]).
    retry: bool,
    /// The records carry their time (see [`Request::timing`]).
    timing: bool,
}

impl Builder {
    /// Adds an entry/return pair and returns nothing; ids are assigned in order.
    #[allow(clippy::too_many_arguments)]
    fn pair(
        &mut self,
        kind: Kind,
        func: &str,
        entry: (Attach, Ctx, Vec<Value>, Vec<ValueDesc>),
        ret: (Attach, Ctx, Vec<Value>, Vec<ValueDesc>),
        string_arg: Option<usize>,
        show_comm: bool,
        filter: Filter,
        floor: bool,
    ) {
        let entry_id = self.probes.len() as u32;
        let ret_id = entry_id + 1;
        let depth = |e: bool| match (kind, e) {
            (Kind::ProgFunc, true) => Depth::Enter,
            (Kind::ProgFunc, false) => Depth::Exit,
            _ => Depth::None,
        };
        let (eattach, ectx, evals, edesc) = entry;
        let string = match string_arg {
            Some(i) => StringOp::user(evals[i], self.retry.then_some(entry_id)),
            None => StringOp::None,
        };
        self.probes.push(Probe {
            id: entry_id,
            kind,
            ret: false,
            func: func.to_string(),
            attach: eattach,
            spec: ProgSpec {
                floor,
                ..ProgSpec::record(entry_id, ectx, filter, evals, string, depth(true))
                    .carrying(self.timing, show_comm)
            },
            values: edesc,
            string_arg,
            show_comm,
            pair: ret_id,
        });
        let (rattach, rctx, rvals, rdesc) = ret;
        let string = match string_arg {
            Some(_) if self.retry => StringOp::Retry { pair: entry_id },
            _ => StringOp::None,
        };
        self.probes.push(Probe {
            id: ret_id,
            kind,
            ret: true,
            func: func.to_string(),
            attach: rattach,
            spec: ProgSpec {
                floor,
                ..ProgSpec::record(ret_id, rctx, filter, rvals, string, depth(false))
                    .carrying(self.timing, false)
            },
            values: rdesc,
            string_arg: None,
            show_comm: false,
            pair: entry_id,
        });
    }
}

/// Library functions whose first argument is a path (printed as `open(path)`).
const PATH_FIRST: &[&str] = &[
    "open", "open64", "creat", "creat64", "fopen", "fopen64", "freopen", "access", "stat", "lstat", "stat64",
    "lstat64", "unlink", "mkdir", "rmdir", "chdir", "opendir", "remove", "truncate", "execve", "execv",
    "execvp", "execl", "execlp", "dlopen", "chmod", "chown", "puts", "system", "getenv", "strlen", "strdup",
    "atoi", "realpath",
];
/// ... and those whose second argument is (`openat(dirfd, path)`).
const PATH_SECOND: &[&str] = &["openat", "openat64", "fstatat", "unlinkat", "mkdirat", "rename"];

fn reg_args(n: usize) -> (Vec<Value>, Vec<ValueDesc>) {
    let vals = pt_regs::ARGS[..n].iter().map(|&o| Value::Reg(o)).collect();
    let desc = (0..n)
        .map(|i| ValueDesc { name: format!("arg{i}"), size: 8, signed: false, pointer: false })
        .collect();
    (vals, desc)
}

fn retval() -> (Vec<Value>, Vec<ValueDesc>) {
    (
        vec![Value::Reg(pt_regs::AX)],
        vec![ValueDesc { name: "ret".into(), size: 8, signed: true, pointer: false }],
    )
}

fn uprobe(path: &Path, sym: &elf::Symbol) -> Attach {
    Attach::Uprobe { path: path.to_path_buf(), offset: sym.offset, symbol: Box::new(sym.clone()) }
}

/// Plans every probe of `req` against `env`.
pub fn plan(req: &Request, env: &Env<'_>) -> Result<Plan, PlanError> {
    let mut b = Builder { probes: Vec::new(), retry: !req.no_string_retry, timing: req.timing };
    let mut skipped = Vec::new();
    let target = env.target;
    let canon = elf::uprobe_path(target.path());

    // Program functions first: they decide the filter of everything else.
    let mut prog_syms: Vec<elf::Symbol> = Vec::new();
    for pattern in &req.funcs {
        if is_glob(pattern) {
            let all = target.program_functions();
            let matched: Vec<_> = all.into_iter().filter(|s| glob_match(pattern, &s.name)).collect();
            if matched.is_empty() {
                return Err(PlanError::NoFunctions {
                    binary: target.path().to_path_buf(),
                    pattern: pattern.clone(),
                    stripped: !target.has_symtab(),
                });
            }
            prog_syms.extend(matched);
        } else {
            prog_syms.push(target.resolve(pattern).map_err(PlanError::Resolve)?);
        }
    }
    prog_syms.dedup_by_key(|s| s.offset);
    let inside = !prog_syms.is_empty() && !req.all_events;
    let others = if inside { Filter::Inside } else { Filter::Tgid };
    let prog_filter = match env.scope {
        // A uprobe opened for one pid fires only in that process; one on the
        // binary fires in every process that runs it, all of which --watch traces.
        Scope::Process | Scope::Binary => Filter::None,
        Scope::Follow => Filter::Tgid,
    };

    for sym in &prog_syms {
        let at = uprobe(&canon, sym);
        let (rv, rd) = retval();
        b.pair(
            Kind::ProgFunc,
            &sym.name,
            (at.clone(), Ctx::PtRegs, vec![], vec![]),
            (at, Ctx::PtRegs, rv, rd),
            None,
            false,
            prog_filter,
            req.floor,
        );
    }

    for spec in &req.libs {
        let (lib, name) = match spec.split_once(':') {
            Some((l, n)) => (Some(l), n),
            None => (None, spec.as_str()),
        };
        let (path, sym) =
            elf::resolve_library_function(target, env.pid, name, lib).map_err(PlanError::Library)?;
        let string_index = if PATH_FIRST.contains(&name) {
            Some(0)
        } else if PATH_SECOND.contains(&name) {
            Some(1)
        } else {
            None
        };
        let (ev, ed) = reg_args(6);
        let (rv, rd) = retval();
        let at = uprobe(&path, &sym);
        b.pair(
            Kind::LibFunc,
            name,
            (at.clone(), Ctx::PtRegs, ev, ed),
            (at, Ctx::PtRegs, rv, rd),
            string_index,
            false,
            others,
            req.floor,
        );
    }

    for name in &req.syscalls {
        let Some(tfs) = env.tracefs else {
            skipped.push(Skipped { what: format!("syscall {name}"), why: "no tracefs".into() });
            continue;
        };
        let enter = format!("sys_enter_{name}");
        let exit = format!("sys_exit_{name}");
        let efmt = tfs.event_format("syscalls", &enter).map_err(|_| PlanError::UnknownSyscall {
            name: name.clone(),
            close: crate::util::close_matches(name, tfs.syscalls().iter().map(String::as_str)),
        })?;
        let xfmt = tfs.event_format("syscalls", &exit).map_err(PlanError::Tracefs)?;
        let fields: Vec<_> = efmt.fields.iter().filter(|f| f.name != "__syscall_nr").collect();
        if fields.len() > crate::record::NVALS {
            return Err(PlanError::Format {
                event: format!("syscalls/{enter}"),
                problem: format!("has {} fields, more than the 6 a record holds", fields.len()),
            });
        }
        let ev =
            fields.iter().map(|f| Value::Field { offset: f.offset as i16, size: f.size as u8 }).collect();
        let ed = fields
            .iter()
            .map(|f| ValueDesc {
                name: f.name.clone(),
                size: f.size as u8,
                signed: f.signed,
                pointer: f.type_name.contains('*'),
            })
            .collect();
        let string_arg = fields.iter().position(|f| f.is_user_string());
        let ret = xfmt.field("ret").ok_or_else(|| PlanError::Format {
            event: format!("syscalls/{exit}"),
            problem: "has no `ret` field".into(),
        })?;
        let rv = vec![Value::Field { offset: ret.offset as i16, size: ret.size as u8 }];
        let rd = vec![ValueDesc { name: "ret".into(), size: ret.size as u8, signed: true, pointer: false }];
        let tp = |n: &str, id| Attach::Tracepoint { category: "syscalls".into(), name: n.into(), id };
        b.pair(
            Kind::Syscall,
            name,
            (tp(&enter, efmt.id), Ctx::Tracepoint, ev, ed),
            (tp(&exit, xfmt.id), Ctx::Tracepoint, rv, rd),
            string_arg,
            false,
            others,
            req.floor,
        );
    }

    for name in &req.kfuncs {
        let addr = check_kernel_function(name, env.kallsyms, env.filter_functions)?;
        if !env.kprobes {
            skipped.push(Skipped { what: name.clone(), why: env.no_kprobes_reason.clone() });
            continue;
        }
        let (ev, ed) = reg_args(6);
        let (rv, rd) = retval();
        let at = Attach::Kprobe { func: name.clone(), addr };
        b.pair(
            Kind::KFunc,
            name,
            (at.clone(), Ctx::PtRegs, ev, ed),
            (at, Ctx::PtRegs, rv, rd),
            None,
            req.kfuncs_with_comm.contains(name),
            others,
            req.floor,
        );
    }

    let mut hidden = Vec::new();
    let mut next_id = b.probes.len() as u32;
    let needs_entry = env.scope == Scope::Binary && b.probes.iter().any(|p| p.spec.filter() == Filter::Tgid);
    if needs_entry {
        hidden.push(register_probe(target, &canon, next_id)?);
        next_id += 1;
    }
    if env.follow {
        let tfs = env.tracefs.expect("the session opens tracefs for -f");
        hidden.push(fork_probe(tfs, next_id)?);
    }
    Ok(Plan { probes: b.probes, skipped, hidden })
}

fn hidden_spec(ctx: Ctx, register: Register) -> ProgSpec {
    let filter = if matches!(register, Register::Field(_)) { Filter::Tgid } else { Filter::None };
    ProgSpec::register(ctx, filter, register)
}

/// The hidden fork probe of `-f`: when a traced process forks (or makes a
/// thread), the child joins the traced set.
fn fork_probe(tfs: &Tracefs, id: u32) -> Result<Probe, PlanError> {
    let fmt = tfs.event_format("sched", "sched_process_fork").map_err(PlanError::Tracefs)?;
    let child = fmt.field("child_pid").ok_or_else(|| PlanError::Format {
        event: "sched/sched_process_fork".into(),
        problem: "has no child_pid field".into(),
    })?;
    Ok(Probe {
        id,
        kind: Kind::Syscall,
        ret: false,
        func: "fork".into(),
        attach: Attach::Tracepoint {
            category: "sched".into(),
            name: "sched_process_fork".into(),
            id: fmt.id,
        },
        spec: hidden_spec(Ctx::Tracepoint, Register::Field(child.offset as i16)),
        values: vec![],
        string_arg: None,
        show_comm: false,
        pair: id,
    })
}

/// Checks that kernel function `name` exists (/proc/kallsyms) and may be traced
/// (`available_filter_functions`), as far as those are readable; returns its
/// address (0 when unknown).
pub fn check_kernel_function(
    name: &str,
    kallsyms: Option<&Kallsyms>,
    filter_functions: Option<&FilterFunctions>,
) -> Result<u64, PlanError> {
    let addr = match kallsyms {
        Some(ks) => ks.function(name).ok_or_else(|| PlanError::KernelFunction {
            name: name.to_string(),
            close: ks.close_matches(name),
        })?,
        None => 0,
    };
    match filter_functions {
        Some(ff) if !ff.contains(name) => Err(PlanError::NotTraceable {
            name: name.to_string(),
            list: ff.path().to_path_buf(),
            close: ff.close_matches(name),
        }),
        _ => Ok(addr),
    }
}

/// The hidden entry-point probe of `--watch`.
fn register_probe(target: &ElfFile, canon: &Path, id: u32) -> Result<Probe, PlanError> {
    let sym = target.entry_symbol().map_err(PlanError::Resolve)?;
    Ok(Probe {
        id,
        kind: Kind::ProgFunc,
        ret: false,
        func: sym.name.clone(),
        attach: uprobe(canon, &sym),
        spec: hidden_spec(Ctx::PtRegs, Register::Current),
        values: vec![],
        string_arg: None,
        show_comm: false,
        pair: id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Env whose target is this test binary, with the given kernel lists.
    fn env<'a>(
        target: &'a ElfFile,
        kallsyms: Option<&'a Kallsyms>,
        filter_functions: Option<&'a FilterFunctions>,
    ) -> Env<'a> {
        Env {
            target,
            pid: None,
            scope: Scope::Process,
            follow: false,
            tracefs: None,
            kallsyms,
            filter_functions,
            kprobes: true,
            no_kprobes_reason: String::new(),
        }
    }

    #[test]
    fn kernel_functions_are_checked_in_kallsyms_then_in_the_filter_list() {
        let target = ElfFile::open(&std::env::current_exe().unwrap()).unwrap();
        let ks = Kallsyms::parse(
            "ffffffff81000010 T vfs_open\nffffffff81000020 T exc_int3\nffffffff81000030 T vcs_open\n",
        );
        let ff = FilterFunctions::parse("vfs_open\nvcs_open\ndo_int3\n", PathBuf::from("/t/aff"));
        let both = env(&target, Some(&ks), Some(&ff));
        assert_eq!(
            check_kernel_function("vfs_open", both.kallsyms, both.filter_functions).unwrap(),
            0xffffffff81000010
        );
        let misspelled = check_kernel_function("vfs_opn", both.kallsyms, both.filter_functions).unwrap_err();
        assert_eq!(
            misspelled.to_string(),
            "no kernel function `vfs_opn` in /proc/kallsyms; did you mean `vfs_open`?"
        );
        let refused = check_kernel_function("exc_int3", both.kallsyms, both.filter_functions).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "the kernel does not let kernel function `exc_int3` be traced: it is not in /t/aff \
             (functions marked notrace or noinstr are left out of it)"
        );
        // Without the filter list (EPERM on the project's VMs), kallsyms alone decides.
        let kallsyms_only = env(&target, Some(&ks), None);
        assert_eq!(
            check_kernel_function("exc_int3", kallsyms_only.kallsyms, kallsyms_only.filter_functions)
                .unwrap(),
            0xffffffff81000020
        );
        // Without kallsyms, the filter list alone, with its suggestions.
        let list_only = env(&target, None, Some(&ff));
        assert_eq!(
            check_kernel_function("vfs_open", list_only.kallsyms, list_only.filter_functions).unwrap(),
            0
        );
        assert!(matches!(
            check_kernel_function("vfs_opn", list_only.kallsyms, list_only.filter_functions),
            Err(PlanError::NotTraceable { name, close, .. }) if name == "vfs_opn" && close == ["vfs_open"]
        ));
        let neither = env(&target, None, None);
        assert_eq!(check_kernel_function("anything", neither.kallsyms, neither.filter_functions).unwrap(), 0);
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "native"));
        assert!(glob_match("with_*", "with_asm"));
        assert!(!glob_match("with_*", "native"));
        assert!(glob_match("n?tive", "native"));
        assert!(!glob_match("n?tive", "ntive"));
        assert!(glob_match("*_asm", "with_asm"));
    }
}
