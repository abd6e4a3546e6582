//! One tracing session: plan, load, attach, run the command, read the rings,
//! print, detach. Every resource is owned by a value whose drop releases it, so
//! every exit path (normal, error, signal) detaches every probe.

use std::io;
use std::path::PathBuf;

use nix::sys::signal::Signal;

use crate::bpf::{self};
use crate::creds;
use crate::elf::ElfFile;
use crate::explain::{self, story};
use crate::kernel::KernelVersion;
use crate::knobs;
use crate::output::{Formatter, OutputOpts};
use crate::plan::{self, Plan, Request, Scope};
use crate::process::{self, Exit, HeldChild};
use crate::signals::Signals;
use crate::stdout::TraceOut;

mod attach;
mod error;
mod events;
mod maps;
mod system;

use attach::*;
pub use error::Error;
use events::*;
use maps::*;
use system::*;

/// Whom to trace.
#[derive(Clone, Debug)]
pub enum Target {
    /// Start this command (argv: bytes, as the command line gave them), held
    /// until the probes are attached.
    Command(Vec<std::ffi::OsString>),
    /// A running process.
    Pid(u32),
    /// Every process that runs this binary, until Ctrl-C.
    Watch(PathBuf),
}

/// What to trace and how to show it.
#[derive(Clone, Debug)]
pub enum Job {
    /// The probe flags (`-u -L -s -k`), or the lab set when none is given,
    /// shown in the lab's style.
    Flags { request: Request, output: OutputOpts },
    /// A program in bpftrace's language (`-e`, FILE.bt), checked already.
    Script {
        program: Box<crate::lang::Program>,
        /// Tests only: do not read uprobe strings again at return.
        no_string_retry: bool,
    },
}

/// Everything a session needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// None only for scripts, which may trace the whole system.
    pub target: Option<Target>,
    pub job: Job,
    /// Data pages per CPU ring (a power of two).
    pub ring_pages: usize,
    /// Run the command as root even under sudo.
    pub as_root: bool,
    /// `-f`: follow the children and threads the traced process creates.
    pub follow: bool,
}

impl Config {
    /// Which processes the probes watch: the traced process, it and its
    /// descendants (`-f`), or every process running the binary (`--watch`).
    fn scope(&self) -> Scope {
        match self.target {
            Some(Target::Watch(_)) => Scope::Binary,
            _ if self.follow => Scope::Follow,
            _ => Scope::Process,
        }
    }
}

/// What happened, for the summary.
#[derive(Debug, Default)]
pub struct Summary {
    pub events: u64,
    pub lost: u64,
    pub exit: Option<Exit>,
}

/// What a session prints records with, and what it runs around them.
enum Show {
    Flags(OutputOpts),
    Script { program: Box<crate::lang::Program>, lowered: Box<crate::lang::lower::Lowered> },
}

/// Runs a session; returns the exit status for the tracer. Its phases: whom
/// to run the command as; the target; the plan; the command started held; the
/// programs loaded and attached; signals caught; the trace; the finish.
pub fn run(cfg: &Config) -> Result<i32, Error> {
    explain::note(|| format!("{}\n{}", story::INTRO, story::STEP_PLAN));
    let kernel = KernelVersion::current();
    if let Some(w) = bpf::raise_memlock(kernel) {
        crate::tell!("trace: warning: {w}");
    }
    // Whom the command runs as, decided before anything is read or attached.
    let creds = match &cfg.target {
        Some(Target::Command(_)) if !cfg.as_root => creds::from_env().map_err(Error::Creds)?,
        _ => None,
    };
    // The first uprobe registration waits for an RCU grace period: asked and
    // made now, on a thread, it overlaps reading the ELF files and loading the
    // programs. With --explain, where the story needs it.
    let early_links = (!explain::enabled() && uprobes_likely(cfg)).then(|| ask_uprobe_links(kernel));
    let found = Found::resolve(&cfg.target)?;
    let (plan, show) = plan_job(cfg, kernel, &found)?;
    let cpus = Cpus::read()?;
    if cfg.follow {
        // Orphaned descendants become our children, so we can wait for them all.
        process::become_subreaper();
    }
    // Started held before exec, so its pid is known before attaching.
    let mut child = match (&cfg.target, &found.binary) {
        (Some(Target::Command(argv)), Some(binary)) => {
            Some(HeldChild::spawn(binary, argv, creds.as_ref()).map_err(Error::Spawn)?)
        }
        _ => None,
    };
    let pid = child.as_ref().map(|c| c.pid()).or(found.pid);
    let links =
        plan.has_uprobes() && early_links.unwrap_or_else(|| ask_uprobe_links(kernel)).recv().unwrap_or(false);
    let setup = Setup { cfg, kernel, show: &show, cpus: &cpus, pid, held: child.is_some() };
    let (mut live, stacks, user_maps) = load_and_attach(&setup, &plan, links)?;
    // Caught from the announcement on, so a Ctrl-C right after it is read by the
    // event loop (which detaches everything) and never lost or fatal.
    let signals = Signals::install().map_err(|e| Error::Io("catching signals".into(), e))?;
    let n = plan.probes.len() + show.specials();
    crate::tell!("Attaching {n} probe{}...", if n == 1 { "" } else { "s" });
    if knobs::stop_before_release() {
        let _ = nix::sys::signal::raise(Signal::SIGSTOP);
    }
    // A file shared with the command is written when the command has ended,
    // after finish() (which may wait for it): `out` outlives the formatters.
    let mut out = TraceOut::new(child.is_some());
    let stdout = io::BufWriter::with_capacity(64 * 1024, &mut out);
    let mut tracing = Tracing {
        live: &mut live,
        signals: &signals,
        child: &mut child,
        binary: found.binary.as_deref(),
        target: &cfg.target,
        pidfd: found.pidfd.as_ref(),
        follow: cfg.follow,
    };
    let summary = match show {
        Show::Flags(opts) => tracing.flags(Formatter::new(stdout, plan.probes.clone(), opts)),
        Show::Script { program, lowered } => {
            let printer = crate::lang::printer::Printer::new(
                stdout,
                &program.checked,
                *lowered,
                stacks.as_ref(),
                &user_maps,
            );
            tracing.script(printer)
        }
    };
    let status = finish(live, summary, child.as_mut(), &signals, cpus.possible.len());
    drop(out);
    status
}

/// The binary whose functions are probed and its ELF file, and the process,
/// if known (see [`resolve_target`]).
struct Found {
    binary: Option<PathBuf>,
    elf: Option<ElfFile>,
    pid: Option<u32>,
    /// For `-p`: the process, watched from now on (see [`pidfd_open`]).
    pidfd: Option<std::os::fd::OwnedFd>,
}

impl Found {
    fn resolve(target: &Option<Target>) -> Result<Found, Error> {
        let (binary, pid) = match target {
            Some(t) => {
                let (b, p) = resolve_target(t)?;
                (Some(b), p)
            }
            None => (None, None),
        };
        let pidfd = match (target, pid) {
            (Some(Target::Pid(_)), Some(p)) => pidfd_open(p)?,
            _ => None,
        };
        let elf = binary.as_deref().map(ElfFile::open).transpose().map_err(|e| match pid {
            // The process exited between finding its program and reading it
            // (through /proc/PID/...): said as when it is missing from the start.
            Some(p) if !std::path::Path::new(&format!("/proc/{p}/exe")).exists() => {
                Error::Process(format!("no process with pid {p} (it has exited); `pgrep NAME` finds pids"))
            }
            _ => Error::Elf(e),
        })?;
        Ok(Found { binary, elf, pid, pidfd })
    }
}

/// The plan of the job, and how its records are shown; an error when nothing
/// is left to trace.
fn plan_job(cfg: &Config, kernel: KernelVersion, found: &Found) -> Result<(Plan, Show), Error> {
    let scope = cfg.scope();
    let (plan, show, sys) = match &cfg.job {
        Job::Flags { request, output } => {
            let elf = found.elf.as_ref().ok_or_else(|| Error::Process("nothing to trace".into()))?;
            let req = if request.is_empty() {
                Request {
                    all_events: request.all_events,
                    floor: request.floor,
                    no_string_retry: request.no_string_retry,
                    timing: request.timing,
                    ..Request::lab()
                }
            } else {
                request.clone()
            };
            let sys = System::probe(kernel, !req.syscalls.is_empty() || cfg.follow, &req.kfuncs)?;
            let env = plan::Env {
                target: elf,
                pid: found.pid,
                scope,
                follow: cfg.follow,
                tracefs: sys.tracefs.as_ref(),
                kallsyms: sys.kallsyms.as_ref(),
                filter_functions: sys.filter_functions.as_ref(),
                kprobes: sys.no_kprobes.is_none(),
                no_kprobes_reason: sys.no_kprobes.clone().unwrap_or_default(),
            };
            let plan = plan::plan(&req, &env).map_err(Error::Plan)?;
            (plan, Show::Flags(*output), sys)
        }
        Job::Script { program, no_string_retry } => {
            let (lowered, sys) = lower_script(program, kernel, found.elf.as_ref(), !no_string_retry)?;
            let mut lowered = Box::new(lowered);
            let plan = std::mem::take(&mut lowered.plan);
            explain::note(|| story::script(program, &lowered, &plan));
            (plan, Show::Script { program: program.clone(), lowered }, sys)
        }
    };
    let tracefs_root = sys.tracefs.as_ref().map(|t| t.root().to_path_buf());
    explain::note(|| story::plan(&plan, tracefs_root.as_deref(), sys.kallsyms.as_ref()));
    report_skipped(&plan);
    if plan.probes.is_empty() && show.specials() == 0 {
        return Err(Error::NothingToTrace(plan.skipped));
    }
    Ok((plan, show))
}

impl Show {
    /// A script's BEGIN and END blocks, which count as probes in the announcement.
    fn specials(&self) -> usize {
        match self {
            Show::Script { lowered, .. } => lowered.begin.len() + lowered.end.len(),
            Show::Flags(_) => 0,
        }
    }
}

/// The CPUs: those there can be (per-CPU maps) and those online (perf rings).
struct Cpus {
    possible: Vec<u32>,
    online: Vec<u32>,
}

impl Cpus {
    fn read() -> Result<Cpus, Error> {
        let err = |err| Error::Perf { probe: "CPU list".into(), err };
        Ok(Cpus {
            possible: crate::perf::possible_cpus().map_err(err)?,
            online: crate::perf::online_cpus().map_err(err)?,
        })
    }
}

/// What loading and attaching need to know of the session.
struct Setup<'a> {
    cfg: &'a Config,
    kernel: KernelVersion,
    show: &'a Show,
    cpus: &'a Cpus,
    /// The traced process, when there is one.
    pid: Option<u32>,
    /// The command is held, waiting for the probes.
    held: bool,
}

fn report_skipped(plan: &Plan) {
    if plan.skipped.is_empty() {
        return;
    }
    let names: Vec<_> = plan.skipped.iter().map(|s| s.what.as_str()).collect();
    crate::tell!("trace: skipping kernel functions {}: {}", names.join(", "), plan.skipped[0].why);
}
