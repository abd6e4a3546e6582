//! One tracing session: plan, load, attach, run the command, read the rings,
//! print, detach. Every resource is owned by a value whose drop releases it, so
//! every exit path (normal, error, signal) detaches every probe.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::mpsc;

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};

use crate::bpf::{self, LoadedProgram, Map, MapType};
use crate::codegen::{self, Ctx, Helpers, Ids, MapFds, Output};
use crate::creds;
use crate::elf::ElfFile;
use crate::explain::{self, story};
use crate::kallsyms::{FilterFunctions, Kallsyms};
use crate::kernel::KernelVersion;
use crate::output::{Formatter, OutputOpts, Sink};
use crate::perf::ring::{Record as RingRecord, Ring};
use crate::perf::ringbuf::{self, RingBuf};
use crate::plan::{self, Attach, Plan, Probe, Request, Scope};
use crate::process::{self, Exit, HeldChild};
use crate::record::Record;
use crate::signals::Signals;
use crate::stdout::{say, TraceOut};
use crate::tracefs::Tracefs;

/// Whom to trace.
#[derive(Clone, Debug)]
pub enum Target {
    /// Start this command (argv), held until the probes are attached.
    Command(Vec<String>),
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

/// Why a session failed before or while tracing.
#[derive(Debug)]
pub enum Error {
    Spawn(crate::process::SpawnError),
    /// Whom to run the command as cannot be told (sudo's user is unknown here).
    Creds(crate::creds::CredsError),
    Elf(crate::elf::ElfError),
    Plan(plan::PlanError),
    Tracefs(crate::tracefs::TracefsError),
    Bpf(bpf::BpfError),
    Perf {
        probe: String,
        err: crate::perf::PerfError,
    },
    Gen(codegen::GenError),
    /// The verifier refused a program trace generated: a bug in trace. The
    /// listing goes with the verifier's log.
    Rejected {
        listing: String,
        err: bpf::BpfError,
    },
    /// A script names what does not exist here (rendered diagnostics).
    Compile(String),
    Process(String),
    Io(String, io::Error),
    NothingToTrace(Vec<plan::Skipped>),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Spawn(e) => write!(f, "{e}"),
            Error::Creds(e) => write!(f, "{e}"),
            Error::Elf(e) => write!(f, "{e}"),
            Error::Plan(e) => write!(f, "{e}"),
            Error::Tracefs(e) => write!(f, "{e}"),
            Error::Bpf(e) => write!(f, "{e}"),
            Error::Perf { probe, err } => write!(f, "attaching {probe}: {err}"),
            Error::Gen(codegen::GenError::Asm(e)) => write!(f, "generating a program (a bug in trace): {e}"),
            Error::Gen(e) => write!(f, "{e}"),
            Error::Compile(text) => write!(f, "{}", text.trim_end()),
            Error::Rejected { listing, err } => {
                write!(f, "{err}\nThe program, as trace generated it:\n{}", listing.trim_end())
            }
            Error::Process(s) => write!(f, "{s}"),
            Error::Io(what, e) => write!(f, "{what}: {e}"),
            Error::NothingToTrace(skipped) => {
                write!(f, "nothing left to trace: every probe asked for was skipped (")?;
                let names: Vec<_> = skipped.iter().map(|s| s.what.as_str()).collect();
                write!(f, "{}: {})", names.join(", "), skipped.first().map(|s| s.why.as_str()).unwrap_or(""))
            }
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// A distinct exit status per kind of failure (documented in the README).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Spawn(crate::process::SpawnError::NotFound(_)) => 127,
            Error::Spawn(crate::process::SpawnError::NotExecutable(_)) => 126,
            Error::Spawn(_) => 126,
            // sysexits.h's EX_NOUSER: the user named is unknown.
            Error::Creds(_) => 67,
            Error::Plan(_) | Error::Elf(_) | Error::Compile(_) => 2,
            Error::Gen(codegen::GenError::StackFull { .. }) => 2,
            Error::NothingToTrace(_) => 3,
            Error::Tracefs(_) => 4,
            Error::Bpf(bpf::BpfError::Verifier { .. }) | Error::Gen(_) | Error::Rejected { .. } => 70,
            Error::Bpf(_) | Error::Perf { .. } => 5,
            Error::Process(_) => 6,
            Error::Io(..) => 74,
        }
    }
}

/// An attached probe: dropping it closes the perf event or the link, which
/// detaches the program and removes the probe from the kernel, then the program.
struct Attached {
    _fd: OwnedFd,
    _program: LoadedProgram,
}

/// Threads whose depth `depth` keeps before the kernel evicts any (see [`depth_entries`]).
const DEPTH_THREADS: u32 = 16384;
/// `LOCAL_FREE_TARGET` (kernel/bpf/bpf_lru_list.c, internal, not UAPI): an LRU map
/// moves free entries to a CPU's own list this many at a time, and evicts to
/// fill that list when the shared free list runs short, so up to this many per
/// CPU can sit free while others are evicted.
const LRU_LOCAL_FREE_TARGET: u32 = 128;

/// Entries of the `depth` map: an LRU hash, so that a thread's entry stays (at
/// depth 0) when it leaves its last traced function and the next call only
/// looks it up and counts. (A plain hash entry inserted at every outermost call
/// and deleted at its return cost 0.18-0.2 us an event, entry or return, on
/// bench/run's `-u work_fn`.) Entries of threads that have exited are never
/// looked up again, so they are the ones the kernel evicts when the map is full;
/// sized so that DEPTH_THREADS threads fit before it evicts any, whatever the
/// CPUs hold back.
fn depth_entries(possible_cpus: u32) -> u32 {
    DEPTH_THREADS + LRU_LOCAL_FREE_TARGET * possible_cpus
}

/// The maps every program refers to.
struct Maps {
    events: Map,
    tgids: Map,
    depth: Map,
    pending: Map,
    dropped: Map,
}

impl Maps {
    /// `events` is made already (see [`events_map`]); `possible`: how many CPUs
    /// there can be (sizes `depth`).
    fn create(events: Map, possible: u32) -> Result<Maps, Error> {
        let m = |t, k, v, n, name: &str| Map::create(t, k, v, n, name).map_err(Error::Bpf);
        Ok(Maps {
            events,
            tgids: m(MapType::Hash, 4, 4, 4096, "tgids")?,
            depth: m(MapType::LruHash, 4, 4, depth_entries(possible), "depth")?,
            pending: m(MapType::Hash, 8, 8, 16384, "pending")?,
            dropped: m(MapType::PercpuArray, 4, 8, 1, "dropped")?,
        })
    }

    fn fds(&self, stacks: Option<&Map>, user: &[Map]) -> MapFds {
        let output = match self.events.map_type {
            MapType::Ringbuf => Output::Ringbuf,
            _ => Output::PerfRings,
        };
        MapFds {
            events: self.events.raw_fd(),
            output,
            tgids: self.tgids.raw_fd(),
            depth: self.depth.raw_fd(),
            pending: self.pending.raw_fd(),
            dropped: self.dropped.raw_fd(),
            stacks: stacks.map_or(-1, |m| m.raw_fd()),
            user: user.iter().map(|m| m.raw_fd()).collect(),
        }
    }

    /// Records the programs could not write because a ring was full, summed
    /// over the CPUs. Exact, unlike PERF_RECORD_LOST, which the kernel writes only
    /// at the next successful output.
    fn dropped(&self, possible_cpus: usize) -> u64 {
        let Ok(Some(bytes)) = self.dropped.lookup_percpu(&0u32.to_ne_bytes(), possible_cpus) else {
            return 0;
        };
        bytes.chunks_exact(8).map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes"))).sum()
    }

    fn add_tgid(&self, pid: u32) -> Result<(), Error> {
        self.tgids.update(&pid.to_ne_bytes(), &1u32.to_ne_bytes(), bpf::BPF_ANY).map_err(Error::Bpf)
    }
}

/// Tests and measurements only: `TRACE_PERF_RINGS=1` makes trace use the per-CPU
/// perf rings, as on kernels without the BPF ring buffer.
fn perf_rings_forced() -> bool {
    std::env::var_os("TRACE_PERF_RINGS").is_some_and(|v| v == "1")
}

/// BPF_MAP_TYPE_RINGBUF and bpf_ringbuf_output came with Linux 5.8.
const RINGBUF_SINCE: KernelVersion = KernelVersion::new(5, 8, 0);

/// The `events` map: the BPF ring buffer of `pages` pages per online CPU (their
/// product rounded up to a power of two) where the kernel has one, else a
/// PERF_EVENT_ARRAY for the per-CPU perf rings (`possible`: the highest possible CPU + 1).
fn events_map(kernel: KernelVersion, pages: usize, online: usize, possible: u32) -> Result<Map, Error> {
    let perf = || Map::create(MapType::PerfEventArray, 4, 4, possible, "events").map_err(Error::Bpf);
    if perf_rings_forced() || kernel < RINGBUF_SINCE {
        return perf();
    }
    let bytes = ringbuf::ring_bytes(pages, online).ok_or_else(|| Error::Perf {
        probe: "the ring buffer".into(),
        err: crate::perf::PerfError::InvalidArgument(format!(
            "--ring-pages {pages} on {online} CPUs makes a ring buffer over 2 GiB, the most a BPF ring \
                 buffer holds: use fewer pages"
        )),
    })?;
    match Map::create(MapType::Ringbuf, 0, 0, bytes, "events") {
        Ok(map) => Ok(map),
        // A kernel without the map type (a version string that misleads, or a
        // backport without it) refuses it with EINVAL: use the perf rings.
        Err(bpf::BpfError::Syscall { err, .. }) if err.raw_os_error() == Some(libc::EINVAL) => perf(),
        Err(e) => Err(Error::Bpf(e)),
    }
}

/// A drain of less than an eighth of the ring buffer (the perf rings'
/// watermark) means records come slowly: the reader lets them gather.
fn ringbuf_wakeup(ring_bytes: u32) -> u32 {
    (ring_bytes / 8).max(1)
}

/// Why kernel functions cannot be probed here, or None if they can. trace
/// attaches kprobes only through the kprobe PMU (Linux 4.17+); tracefs
/// `kprobe_events` is looked at only to tell an old kernel from one without kprobes.
fn kprobe_unavailable(kernel: KernelVersion, tracefs: Option<&Tracefs>) -> Option<String> {
    if crate::perf::pmu_type("kprobe").is_ok() {
        return None;
    }
    let root = tracefs.map_or(std::path::Path::new(crate::tracefs::DEFAULT_MOUNT), |t| t.root());
    let has_kprobe_events = root.join("kprobe_events").exists();
    Some(no_kprobes_reason(kernel, has_kprobe_events))
}

/// The KPROBE PMU (`/sys/bus/event_source/devices/kprobe`) came with Linux 4.17.
const KPROBE_PMU_SINCE: KernelVersion = KernelVersion::new(4, 17, 0);

/// Why a kernel without a kprobe PMU cannot trace kernel functions.
fn no_kprobes_reason(kernel: KernelVersion, has_kprobe_events: bool) -> String {
    const NO_PMU: &str = "no kprobe PMU in /sys/bus/event_source/devices";
    match (has_kprobe_events, kernel < KPROBE_PMU_SINCE) {
        (true, true) => format!(
            "kernel {kernel} is too old: trace attaches kprobes through the kprobe PMU, which came \
             with Linux {KPROBE_PMU_SINCE}, and does not use this kernel's tracefs kprobe_events"
        ),
        (true, false) => {
            format!("this kernel has tracefs kprobe_events but {NO_PMU}, which trace needs to attach kprobes")
        }
        (false, _) => format!("this kernel has no kprobes ({NO_PMU}: built without CONFIG_KPROBES)"),
    }
}

/// The kernel functions asked for, to check their names: from the kernel's BTF
/// when it has them all (2-3 ms), else from /proc/kallsyms (50 ms of kernel time
/// and 20 MiB; it also knows functions BTF leaves out, and the close names a
/// misspelling is told about).
fn kernel_functions(names: &[String]) -> Option<Kallsyms> {
    if crate::explain::enabled() {
        // --explain shows each function's address: from kallsyms, as it says.
        return Kallsyms::load().ok();
    }
    let wanted: Vec<&str> = names.iter().map(String::as_str).collect();
    match crate::btf::kernel_functions(&wanted) {
        Ok(found) if found.iter().all(|&f| f) => Some(Kallsyms::from_names(names)),
        _ => Kallsyms::load().ok(),
    }
}

/// The binary whose functions are probed, and the process, if known.
fn resolve_target(target: &Target) -> Result<(PathBuf, Option<u32>), Error> {
    match target {
        Target::Command(argv) => {
            let cmd = argv.first().ok_or_else(|| Error::Process("no command given".into()))?;
            Ok((crate::process::find_program(cmd).map_err(Error::Spawn)?, None))
        }
        Target::Pid(pid) => {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).map_err(|e| {
                let is_process = std::path::Path::new(&format!("/proc/{pid}/status")).exists();
                if is_process && e.kind() == io::ErrorKind::NotFound {
                    Error::Process(format!(
                        "process {pid} is a kernel thread: it runs no program in user space; trace a \
                         user process, or kernel functions with -k"
                    ))
                } else if e.kind() == io::ErrorKind::NotFound {
                    Error::Process(format!(
                        "no process with pid {pid} (it may have exited); `pgrep NAME` finds pids"
                    ))
                } else {
                    Error::Io(format!("cannot inspect process {pid} (/proc/{pid}/exe)"), e)
                }
            })?;
            // A thread's id names the process it belongs to: /proc has it too,
            // but a uprobe link and the `tgids` filter take the process id.
            let tgid = process_of(*pid).unwrap_or(*pid);
            if tgid != *pid {
                eprintln!(
                    "trace: {pid} is a thread of process {tgid}: tracing the process (all its threads)"
                );
            }
            Ok((exe, Some(tgid)))
        }
        Target::Watch(path) => {
            if !path.is_file() {
                return Err(Error::Process(format!(
                    "{} is not a file: --watch takes the program to watch, e.g. --watch ./file-io",
                    path.display()
                )));
            }
            Ok((path.clone(), None))
        }
    }
}

/// The process (thread group) of thread `tid`: the `Tgid:` line of its /proc status.
fn process_of(tid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("Tgid:"))?.trim().parse().ok()
}

/// What the programs write to and trace reads.
enum Rings {
    /// One perf ring per online CPU.
    Perf(Vec<Ring>),
    /// The BPF ring buffer of the `events` map.
    Buffer(RingBuf),
}

/// Everything that must stay alive while tracing, in drop order: probes first.
struct Live {
    attached: Vec<Attached>,
    rings: Rings,
    maps: Maps,
}

impl Drop for Live {
    fn drop(&mut self) {
        detach_all(std::mem::take(&mut self.attached));
    }
}

/// Detaches every probe, closing their links and perf events all at once. Each
/// close waits for RCU grace periods in the kernel: a uprobe or tracepoint perf
/// event 80-120 ms on a 2-CPU VM (measured with `strace -T`), one after the
/// other since the kernel holds its `event_mutex` meanwhile; a uprobe link
/// ~40 ms under no global lock, so links closed from threads wait together
/// (the lab: 0.8 s with perf events, ~0.1 s with links). Returns once every
/// probe is detached.
fn detach_all(attached: Vec<Attached>) {
    /// A closing thread only calls close(2): a small stack is plenty.
    const STACK: usize = 64 * 1024;
    std::thread::scope(|s| {
        for probe in attached {
            // When a thread cannot be started, its closure is dropped unrun, which
            // closes the event right here: slower, never leaked.
            let _ = std::thread::Builder::new().stack_size(STACK).spawn_scoped(s, move || drop(probe));
        }
    });
}

/// What happened, for the summary.
#[derive(Debug, Default)]
pub struct Summary {
    pub events: u64,
    pub lost: u64,
    pub exit: Option<Exit>,
}

/// What the kernel offers for probes, looked up once per session.
struct System {
    tracefs: Option<Tracefs>,
    kallsyms: Option<Kallsyms>,
    filter_functions: Option<FilterFunctions>,
    /// Why kernel functions cannot be probed, if so.
    no_kprobes: Option<String>,
}

impl System {
    /// `kfuncs`: the kernel functions named (a glob needs all of kallsyms).
    fn probe(kernel: KernelVersion, need_tracefs: bool, kfuncs: &[String]) -> Result<System, Error> {
        let tracefs = match (need_tracefs, kfuncs.is_empty()) {
            (true, _) => Some(Tracefs::open().map_err(Error::Tracefs)?),
            // Kernel functions only read available_filter_functions from it, if they can.
            (false, false) => Tracefs::open().ok(),
            (false, true) => None,
        };
        let kallsyms = match kfuncs {
            [] => None,
            names if names.iter().any(|n| n.contains(['*', '?'])) => Kallsyms::load().ok(),
            names => kernel_functions(names),
        };
        let filter_functions = match (&tracefs, kfuncs.is_empty()) {
            (Some(t), false) => FilterFunctions::load(t.root()).ok(),
            _ => None,
        };
        let no_kprobes = if kfuncs.is_empty() { None } else { kprobe_unavailable(kernel, tracefs.as_ref()) };
        Ok(System { tracefs, kallsyms, filter_functions, no_kprobes })
    }
}

/// What a session prints records with, and what it runs around them.
enum Show {
    Flags(OutputOpts),
    Script { program: Box<crate::lang::Program>, lowered: Box<crate::lang::lower::Lowered> },
}

/// Runs a session; returns the exit status for the tracer.
pub fn run(cfg: &Config) -> Result<i32, Error> {
    explain::note(|| format!("{}\n{}", story::INTRO, story::STEP_PLAN));
    let kernel = KernelVersion::current();
    if let Some(w) = bpf::raise_memlock(kernel) {
        eprintln!("trace: warning: {w}");
    }
    // The first uprobe registration waits for an RCU grace period (7-23 ms here):
    // asked and made now, on a thread, it overlaps reading the ELF files and
    // loading the programs. With --explain, where the story needs it.
    // Whom the command runs as, decided before anything is read or attached.
    let creds = match &cfg.target {
        Some(Target::Command(_)) if !cfg.as_root => creds::from_env().map_err(Error::Creds)?,
        _ => None,
    };
    let early_links = (!explain::enabled() && uprobes_likely(cfg)).then(|| ask_uprobe_links(kernel));
    let (binary, known_pid) = match &cfg.target {
        Some(t) => {
            let (b, p) = resolve_target(t)?;
            (Some(b), p)
        }
        None => (None, None),
    };
    let elf = binary.as_deref().map(ElfFile::open).transpose().map_err(Error::Elf)?;
    let scope = match cfg.target {
        Some(Target::Watch(_)) => Scope::Binary,
        _ if cfg.follow => Scope::Follow,
        _ => Scope::Process,
    };
    let (plan, show, tracefs_root, kallsyms) = match &cfg.job {
        Job::Flags { request, output } => {
            let elf = elf.as_ref().ok_or_else(|| Error::Process("nothing to trace".into()))?;
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
                pid: known_pid,
                scope,
                follow: cfg.follow,
                tracefs: sys.tracefs.as_ref(),
                kallsyms: sys.kallsyms.as_ref(),
                filter_functions: sys.filter_functions.as_ref(),
                kprobes: sys.no_kprobes.is_none(),
                no_kprobes_reason: sys.no_kprobes.clone().unwrap_or_default(),
            };
            let plan = plan::plan(&req, &env).map_err(Error::Plan)?;
            (plan, Show::Flags(*output), sys.tracefs.map(|t| t.root().to_path_buf()), sys.kallsyms)
        }
        Job::Script { program, no_string_retry } => {
            let (lowered, sys) = lower_script(program, kernel, elf.as_ref(), !no_string_retry)?;
            let mut lowered = Box::new(lowered);
            let plan = std::mem::take(&mut lowered.plan);
            explain::note(|| story::script(program, &lowered, &plan));
            let show = Show::Script { program: program.clone(), lowered };
            (plan, show, sys.tracefs.map(|t| t.root().to_path_buf()), sys.kallsyms)
        }
    };
    explain::note(|| story::plan(&plan, tracefs_root.as_deref(), kallsyms.as_ref()));
    report_skipped(&plan);
    let specials = match &show {
        Show::Script { lowered, .. } => lowered.begin.len() + lowered.end.len(),
        Show::Flags(_) => 0,
    };
    if plan.probes.is_empty() && specials == 0 {
        return Err(Error::NothingToTrace(plan.skipped));
    }

    let possible =
        crate::perf::possible_cpus().map_err(|err| Error::Perf { probe: "CPU list".into(), err })?;
    let online = crate::perf::online_cpus().map_err(|err| Error::Perf { probe: "CPU list".into(), err })?;
    if cfg.follow {
        // Orphaned descendants become our children, so we can wait for them all.
        process::become_subreaper();
    }
    // Start the command held before exec, so its pid is known before attaching.
    let mut child = match (&cfg.target, &binary) {
        (Some(Target::Command(argv)), Some(binary)) => {
            Some(HeldChild::spawn(binary, argv, creds.as_ref()).map_err(Error::Spawn)?)
        }
        _ => None,
    };
    let pid = child.as_ref().map(|c| c.pid()).or(known_pid);
    let per_pid = if scope == Scope::Process { pid } else { None };
    let has_uprobes =
        plan.probes.iter().chain(&plan.hidden).any(|p| matches!(p.attach, Attach::Uprobe { .. }));
    let links =
        has_uprobes && early_links.unwrap_or_else(|| ask_uprobe_links(kernel)).recv().unwrap_or(false);
    let order = attach_order(&plan, matches!(show, Show::Script { .. }));
    let units = units(&order, links);
    let helpers = Helpers::for_kernel(kernel);
    let (prepared, attached, result) = std::thread::scope(|s| {
        // The first uprobe's registration waits for an RCU grace period (the
        // kernel takes dup_mmap_sem for writing: 10-40 ms on a 2-CPU VM, the larger
        // part of start-up); with links it is on its way already (early_links).
        // A second thread attaches the probes, uprobes first, each as soon as it
        // can: a perf event is opened before its program is loaded, a link once
        // its program comes. Meanwhile this thread makes the maps and the rings,
        // and loads the programs (many with one more thread per CPU, see
        // loaders_for), handing each over. With --explain, one after the
        // other, so the calls are told in order.
        let (tx, rx) = mpsc::channel();
        let units = &units;
        let (attacher, rx, loaders) = if explain::enabled() {
            (None, Some(rx), 1)
        } else {
            let attacher = s.spawn(move || attach_all(InOrder::new(rx), units, per_pid));
            (Some(attacher), None, loaders_for(units.len()))
        };
        let prepared = prepare(cfg, kernel, &show, &online, &possible, pid, child.is_some());
        let mut loaded = Ok(());
        if let Ok((maps, stacks, user_maps, _)) = &prepared {
            explain::note(|| story::STEP_PROGRAMS.into());
            let fds = maps.fds(stacks.as_ref(), user_maps);
            let load = |u: &Unit| load_program(u, &fds, helpers, kernel);
            loaded = load_programs(units, loaders, &load, &tx);
        }
        drop(tx);
        let (attached, result) = match (attacher, rx) {
            (Some(thread), _) => thread.join().expect("the thread attaching the probes panicked"),
            (None, Some(rx)) if prepared.is_ok() && loaded.is_ok() => {
                explain::note(|| story::STEP_ATTACH.into());
                attach_all(InOrder::new(rx), units, per_pid)
            }
            (None, _) => (Vec::new(), Ok(())),
        };
        (prepared, attached, loaded.and(result))
    });
    let (maps, stacks, user_maps, rings) = match (prepared, result) {
        (Ok(prepared), Ok(())) => prepared,
        (Err(e), _) | (Ok(_), Err(e)) => {
            // Closed all at once, as at exit (each close waits in the kernel).
            detach_all(attached);
            return Err(e);
        }
    };
    explain::note(|| story::OUTRO.into());
    let mut live = Live { attached, rings, maps };
    // Caught from the announcement on, so a Ctrl-C right after it is read by the
    // event loop (which detaches everything) and never lost or fatal.
    let signals = Signals::install().map_err(|e| Error::Io("catching signals".into(), e))?;
    let n = plan.probes.len() + specials;
    eprintln!("Attaching {n} probe{}...", if n == 1 { "" } else { "s" });
    if std::env::var_os("TRACE_TEST_STOP_BEFORE_RELEASE").is_some() {
        // Tests only: stop here, the command held, so a test can kill us now.
        let _ = nix::sys::signal::raise(Signal::SIGSTOP);
    }
    let stdout = io::BufWriter::with_capacity(64 * 1024, TraceOut::new(child.is_some()));
    let summary = match show {
        Show::Flags(opts) => {
            let mut fmt = Formatter::new(stdout, plan.probes.clone(), opts);
            release(child.as_mut(), binary.as_deref())?;
            trace_until_done(&mut live, &mut fmt, &signals, child.as_mut(), &cfg.target, pid, cfg.follow)
        }
        Show::Script { program, lowered } => {
            let mut printer = crate::lang::printer::Printer::new(
                stdout,
                &program.checked,
                *lowered,
                stacks.as_ref(),
                &user_maps,
            );
            let begun = printer.begin().map_err(|e| Error::Io("writing the trace".into(), e))?;
            let summary = if begun {
                release(child.as_mut(), binary.as_deref())?;
                trace_until_done(
                    &mut live,
                    &mut printer,
                    &signals,
                    child.as_mut(),
                    &cfg.target,
                    pid,
                    cfg.follow,
                )
            } else {
                // exit() in BEGIN: the command never runs; it is killed held.
                drop(child.take());
                Ok(Summary::default())
            };
            match printer.end() {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                    return Err(Error::Io("writing the trace".into(), e));
                }
                _ => summary,
            }
        }
    };
    finish(live, summary, child.as_mut(), &signals, possible.len())
}

/// The maps and the rings, ready for the programs; the traced pid in `tgids`.
/// All are in place before any probe fires.
#[allow(clippy::type_complexity)]
fn prepare(
    cfg: &Config,
    kernel: KernelVersion,
    show: &Show,
    online: &[u32],
    possible: &[u32],
    pid: Option<u32>,
    held: bool,
) -> Result<(Maps, Option<Map>, Vec<Map>, Rings), Error> {
    explain::note(|| story::STEP_MAPS.into());
    let possible = possible.iter().max().map_or(1, |m| m + 1);
    let events = events_map(kernel, cfg.ring_pages, online.len(), possible)?;
    let maps = Maps::create(events, possible)?;
    let stacks = match show {
        Show::Script { lowered, .. } if lowered.stacks => Some(
            Map::create(MapType::StackTrace, 4, STACK_VALUE_SIZE, STACK_ENTRIES, "stacks")
                .map_err(Error::Bpf)?,
        ),
        _ => None,
    };
    let user_maps = match show {
        Show::Script { program, .. } => script_maps(&program.checked.maps)?,
        Show::Flags(_) => Vec::new(),
    };
    let mut all_maps = vec![&maps.events, &maps.tgids, &maps.depth, &maps.pending, &maps.dropped];
    all_maps.extend(stacks.as_ref());
    all_maps.extend(user_maps.iter());
    story::maps(&all_maps);
    let rings = match maps.events.map_type {
        MapType::Ringbuf => {
            explain::note(|| story::STEP_RINGBUF.into());
            let ring = RingBuf::map(maps.events.as_fd(), maps.events.max_entries)
                .map_err(|err| Error::Perf { probe: "the ring buffer".into(), err })?;
            Rings::Buffer(ring)
        }
        _ => {
            explain::note(|| story::STEP_RINGS.into());
            Rings::Perf(open_rings(online, cfg.ring_pages, &maps)?)
        }
    };
    if let Some(pid) = pid {
        explain::note(|| story::traced_process(pid, held));
        maps.add_tgid(pid)?;
    }
    Ok((maps, stacks, user_maps, rings))
}

/// Lets the held command run.
fn release(child: Option<&mut HeldChild>, binary: Option<&std::path::Path>) -> Result<(), Error> {
    match (child, binary) {
        (Some(c), Some(b)) => c.release(b).map_err(Error::Spawn),
        _ => Ok(()),
    }
}

/// Reads and prints until the command ends, the process exits, Ctrl-C, or the
/// output says stop (a script's `exit()`).
fn trace_until_done<S: Sink>(
    live: &mut Live,
    sink: &mut S,
    signals: &Signals,
    child: Option<&mut HeldChild>,
    target: &Option<Target>,
    pid: Option<u32>,
    follow: bool,
) -> Result<Summary, Error> {
    let pidfd = match (target, pid) {
        (Some(Target::Pid(_)), Some(p)) => pidfd_open(p),
        _ => None,
    };
    let summary = event_loop(live, sink, signals, child, pidfd.as_ref(), target, follow);
    explain::note(|| story::AFTER.into());
    summary
}

/// Detaches everything, then reports losses and the command's end.
fn finish(
    live: Live,
    summary: Result<Summary, Error>,
    child: Option<&mut HeldChild>,
    signals: &Signals,
    possible: usize,
) -> Result<i32, Error> {
    let dropped = live.maps.dropped(possible);
    let full = match live.rings {
        Rings::Perf(_) => "a CPU's ring was full",
        Rings::Buffer(_) => "the ring was full",
    };
    drop(live); // detach everything before reporting
    let mut summary = summary?;
    summary.lost = summary.lost.max(dropped);
    if summary.exit.is_none() {
        // Our output was closed (`trace ... | head`) or the script called exit():
        // the probes are gone; let the command finish as it would have without us.
        summary.exit = child.and_then(|c| wait_forwarding(c, signals));
    }
    if summary.lost > 0 {
        say(&format!(
            "trace: {} events lost: {full} ({} events shown). \
             Use a bigger ring (--ring-pages) or trace fewer probes.\n",
            summary.lost, summary.events
        ));
    }
    Ok(match summary.exit {
        Some(exit) => {
            if let Exit::Signal(sig, core) = exit {
                say(&format!("{}\n", describe_signal(sig, core)));
            }
            exit.status()
        }
        None => 0,
    })
}

/// Elements a script's map holds (bpftrace's default too).
const SCRIPT_MAP_ENTRIES: u32 = 4096;

/// One HASH map (u64 key -> i64 value) per `@name` of a script; the kernel's
/// name is the script's after `AT_` (as bpftrace names them), cut to what
/// BPF_OBJ_NAME_LEN allows.
fn script_maps(decls: &[crate::lang::ir::MapDecl]) -> Result<Vec<Map>, Error> {
    decls
        .iter()
        .map(|d| {
            let safe = d.name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_');
            let name: String = "AT_".chars().chain(safe).take(15).collect();
            Map::create(MapType::Hash, 8, 8, SCRIPT_MAP_ENTRIES, &name).map_err(Error::Bpf)
        })
        .collect()
}

/// PERF_MAX_STACK_DEPTH (include/uapi/linux/perf_event.h): frames a stack map value holds.
const PERF_MAX_STACK_DEPTH: u32 = 127;
const STACK_VALUE_SIZE: u32 = 8 * PERF_MAX_STACK_DEPTH;
/// Distinct stacks kept at once (ids are reused when two stacks hash alike).
const STACK_ENTRIES: u32 = 4096;

/// Checks a script against this system: its files, functions and events.
fn lower_script(
    program: &crate::lang::Program,
    kernel: KernelVersion,
    elf: Option<&ElfFile>,
    retry_strings: bool,
) -> Result<(crate::lang::lower::Lowered, System), Error> {
    use crate::lang::ast::{ProbeKind, Target as PTarget};
    let probes = program.checked.programs.iter().map(|p| &p.probe);
    let kfuncs: Vec<String> = probes
        .clone()
        .filter_map(|p| match &p.target {
            PTarget::Kernel { func } => Some(func.text.clone()),
            _ => None,
        })
        .collect();
    let tracepoints = probes.clone().any(|p| p.kind == ProbeKind::Tracepoint);
    let sys = System::probe(kernel, tracepoints, &kfuncs)?;
    let env = crate::lang::lower::Env {
        tracefs: sys.tracefs.as_ref(),
        kallsyms: sys.kallsyms.as_ref(),
        filter_functions: sys.filter_functions.as_ref(),
        no_kprobes: sys.no_kprobes.clone(),
        cwd: std::env::current_dir().unwrap_or_default(),
        program: elf,
        retry_strings,
    };
    let lowered = crate::lang::lower::lower(&program.checked, &env)
        .map_err(|ds| Error::Compile(crate::lang::CompileError::new(&program.source, ds).to_string()))?;
    Ok((lowered, sys))
}

fn report_skipped(plan: &Plan) {
    if plan.skipped.is_empty() {
        return;
    }
    let names: Vec<_> = plan.skipped.iter().map(|s| s.what.as_str()).collect();
    eprintln!("trace: skipping kernel functions {}: {}", names.join(", "), plan.skipped[0].why);
}

/// How a probe is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// A perf event (uprobe, kprobe or tracepoint PMU) with PERF_EVENT_IOC_SET_BPF.
    PerfEvent,
    /// A BPF link of type uprobe_multi (see [`bpf::link`]).
    Link,
}

fn via(p: &Probe, links: bool) -> Via {
    match p.attach {
        Attach::Uprobe { .. } if links => Via::Link,
        _ => Via::PerfEvent,
    }
}

/// Asks whether uprobes are attached with BPF links, where the kernel has them
/// (see [`bpf::link::uprobe_links`]), and if so makes the session's first uprobe
/// registration (see [`bpf::link::first_registration`]). On a thread, which sends
/// the answer as soon as it has it and registers after; with --explain here, one
/// call after the other. `TRACE_UPROBE_LINKS=0` asks for perf events (tests and
/// benchmarks compare both). No answer (the thread did not start) means perf events.
fn ask_uprobe_links(kernel: KernelVersion) -> mpsc::Receiver<bool> {
    let (tx, rx) = mpsc::channel();
    if std::env::var_os("TRACE_UPROBE_LINKS").is_some_and(|v| v == "0") {
        explain::note(|| story::UPROBE_LINKS_OFF.into());
        let _ = tx.send(false);
        return rx;
    }
    let ask = move || {
        explain::note(|| story::UPROBE_LINKS_PROBE.into());
        let answer = bpf::link::uprobe_links(kernel);
        explain::note(|| story::uprobe_links(answer.as_ref().map(|_| ())));
        let _ = tx.send(answer.is_ok());
        if let Ok(prog) = answer {
            explain::note(|| story::FIRST_REGISTRATION.into());
            let made = bpf::link::first_registration(prog.as_fd());
            explain::note(|| story::first_registration(&made));
        }
    };
    if explain::enabled() {
        ask();
    } else {
        let _ = std::thread::Builder::new().name("first-uprobe".into()).spawn(move || {
            // Signals are for the main thread, which catches them once it has
            // attached: this thread may still live then, and must not take one
            // (a SIGINT's default action here would end trace; a caught one
            // would not interrupt the main thread's write). Blocked before the
            // answer is sent, so before the main thread catches them.
            let _ = nix::sys::signal::pthread_sigmask(
                nix::sys::signal::SigmaskHow::SIG_BLOCK,
                Some(&SigSet::all()),
                None,
            );
            ask()
        });
    }
    rx
}

/// Whether the probes will likely include uprobes, known from the command line
/// alone: then the kernel is asked about uprobe links first thing (see [`run`]).
fn uprobes_likely(cfg: &Config) -> bool {
    match &cfg.job {
        Job::Flags { request, .. } => {
            request.is_empty()
                || !request.funcs.is_empty()
                || !request.libs.is_empty()
                || matches!(cfg.target, Some(Target::Watch(_)))
        }
        Job::Script { program, .. } => program.checked.programs.iter().any(|p| {
            matches!(
                p.probe.kind,
                crate::lang::ast::ProbeKind::Uprobe | crate::lang::ast::ProbeKind::Uretprobe
            )
        }),
    }
}

/// Generates and loads the program of `unit`, for the way it is attached: with
/// a link, the probe ids come from the link's cookies.
fn load_program(
    unit: &Unit,
    fds: &MapFds,
    helpers: Helpers,
    kernel: KernelVersion,
) -> Result<LoadedProgram, Error> {
    let p = unit.first();
    let ids = match unit.via {
        Via::Link => Ids::Cookie,
        Via::PerfEvent => Ids::Immediate,
    };
    let prog = codegen::generate(&p.spec, fds, helpers, ids).map_err(Error::Gen)?;
    let prog_type = match p.spec.ctx {
        Ctx::PtRegs => bpf::ProgType::Kprobe,
        Ctx::Tracepoint => bpf::ProgType::Tracepoint,
    };
    let attach_type = (unit.via == Via::Link).then_some(bpf::link::BPF_TRACE_UPROBE_MULTI);
    story::program(&unit.probes(), &prog);
    let loaded = bpf::load_program_for(prog_type, attach_type, &prog.insns, &probe_label(p), kernel)
        .map_err(|e| match e {
            bpf::BpfError::Verifier { .. } => Error::Rejected { listing: prog.listing(), err: e },
            other => Error::Bpf(other),
        })?;
    story::loaded(&loaded);
    Ok(loaded)
}

/// How a unit's probes are named in an error: `uprobe:native` or
/// `uprobe:native, uprobe:with_asm`.
fn unit_label(unit: &Unit) -> String {
    unit.members.iter().map(|(_, p)| probe_label(p)).collect::<Vec<_>>().join(", ")
}

/// How a probe is named to the user and in the kernel (prog_name).
pub fn probe_label(p: &Probe) -> String {
    match &p.attach {
        Attach::Uprobe { .. } => format!("{}{}", if p.ret { "uretprobe:" } else { "uprobe:" }, p.func),
        Attach::Kprobe { .. } => format!("{}{}", if p.ret { "kretprobe:" } else { "kprobe:" }, p.func),
        Attach::Tracepoint { category, name, .. } => format!("tracepoint:{category}:{name}"),
    }
}

fn open_rings(cpus: &[u32], pages: usize, maps: &Maps) -> Result<Vec<Ring>, Error> {
    let page =
        nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok().flatten().unwrap_or(4096) as usize;
    // Wake the reader when an eighth of the ring is full: early enough to leave
    // room while it works; the poll timeout bounds the latency when events are few.
    let watermark = (pages * page / 8).max(1) as u32;
    cpus.iter()
        .map(|&cpu| {
            let ring = Ring::open(cpu, pages, watermark)
                .map_err(|err| Error::Perf { probe: format!("the ring of CPU {cpu}"), err })?;
            maps.events
                .update(&cpu.to_ne_bytes(), &(ring.fd().as_raw_fd() as u32).to_ne_bytes(), bpf::BPF_ANY)
                .map_err(Error::Bpf)?;
            Ok(ring)
        })
        .collect()
}

/// Tests only: `TRACE_TEST_FAIL_ATTACH=N` makes attaching probe N (from 0, in
/// [`attach_order`]) fail as a kernel refusal would, to prove the probes attached
/// before it are released.
fn injected_attach_failure(i: usize) -> Option<crate::perf::PerfError> {
    let n: usize = std::env::var("TRACE_TEST_FAIL_ATTACH").ok()?.parse().ok()?;
    (n == i)
        .then(|| crate::perf::PerfError::InvalidArgument("failure injected by TRACE_TEST_FAIL_ATTACH".into()))
}

/// The probes (then the hidden ones), each with its index among the plan's, in the
/// order their programs are loaded and attached: uprobes first, so that the kernel's
/// wait at the first one overlaps loading the rest (see [`run`]). Within each group,
/// the plan's order, or last first with `reverse`: the kernel runs the programs of one
/// attach point newest first, so a script's blocks on the same probe run in the
/// script's order only when attached in reverse (as bpftrace does).
fn attach_order(plan: &Plan, reverse: bool) -> Vec<(usize, &Probe)> {
    let mut order: Vec<(usize, &Probe)> = plan.probes.iter().chain(plan.hidden.iter()).enumerate().collect();
    if reverse {
        order.reverse();
    }
    order.sort_by_key(|(_, p)| !matches!(p.attach, Attach::Uprobe { .. }));
    order
}

/// Probes that share one program and one attachment: a probe, or with uprobe
/// links every probe of the command line alike but for its id
/// ([`ProgSpec::alike`](codegen::ProgSpec::alike)) on one binary, entries or
/// returns: one link places them all, each offset with its probe's id as its
/// cookie. (`-u '*'` on a program of 100 functions: 2 programs and 2 links
/// instead of 200 and 200.) A script's probes keep one each: two blocks on one
/// function run in the order they were attached (see [`attach_order`]).
struct Unit<'p> {
    /// The probes with their place in the plan, in attach order.
    members: Vec<(usize, &'p Probe)>,
    via: Via,
    /// The uprobes' file offsets, each with its cookie (the probe's id), in the
    /// same order: what a link is made with.
    places: Vec<(u64, u64)>,
}

impl<'p> Unit<'p> {
    fn first(&self) -> &'p Probe {
        self.members[0].1
    }

    fn probes(&self) -> Vec<&'p Probe> {
        self.members.iter().map(|&(_, p)| p).collect()
    }

    /// Whether `p` can join: linked alike in the same binary.
    fn takes(&self, p: &Probe, via: Via) -> bool {
        let first = self.first();
        match (&first.attach, &p.attach) {
            (Attach::Uprobe { path: a, .. }, Attach::Uprobe { path: b, .. }) => {
                via == Via::Link
                    && self.via == Via::Link
                    && a == b
                    && first.ret == p.ret
                    && first.spec.has_probe_id()
                    && first.spec.alike(&p.spec)
            }
            _ => false,
        }
    }
}

/// The probes of `order` as units, each where its first probe is.
fn units<'p>(order: &[(usize, &'p Probe)], links: bool) -> Vec<Unit<'p>> {
    let mut units: Vec<Unit<'p>> = Vec::new();
    for &(i, p) in order {
        let via = via(p, links);
        let k = match units.iter().position(|u| u.takes(p, via)) {
            Some(k) => k,
            None => {
                units.push(Unit { members: Vec::new(), via, places: Vec::new() });
                units.len() - 1
            }
        };
        units[k].members.push((i, p));
        if let Attach::Uprobe { offset, .. } = p.attach {
            units[k].places.push((offset, u64::from(p.id)));
        }
    }
    units
}

/// How many threads load `n` programs: one per CPU (at most 4) for many, else
/// one. Each program is generated, then verified by the kernel on its own
/// (~0.2 ms a program here), so many load faster in parallel: 200 probes
/// (bench/run's 100 functions, as perf events: with links they are 2 programs,
/// see [`Unit`]) on 2 CPUs started in 35.1 ms instead of 47.7. A
/// few load well within the kernel's wait at the first uprobe, which a second
/// busy CPU makes longer: the lab's 10, in parallel, started in 21.7 ms on
/// average instead of 17.2 (15 interleaved runs each).
fn loaders_for(n: usize) -> usize {
    const MANY: usize = 64;
    if n < MANY {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |c| c.get()).min(4)
    }
}

/// Loads the programs of `items` (the probes in attach order) on this thread
/// and `loaders - 1` more, and sends each, with its place in `items`, to the
/// attacher. Stops at the first failure, or when the attacher is gone (its
/// error is the caller's); returns the failure first in `items`.
fn load_programs<P: Sync, T: Send, F>(
    items: &[P],
    loaders: usize,
    load: &F,
    tx: &mpsc::Sender<(usize, T)>,
) -> Result<(), Error>
where
    F: Fn(&P) -> Result<T, Error> + Sync,
{
    use std::sync::atomic::{AtomicBool, Ordering};
    let loaders = loaders.clamp(1, items.len().max(1));
    let stop = AtomicBool::new(false);
    // Each loader's failure, if any, with the item's place.
    let work = |first: usize, tx: mpsc::Sender<(usize, T)>| -> Option<(usize, Error)> {
        for (i, item) in items.iter().enumerate().skip(first).step_by(loaders) {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let sent = match load(item) {
                Ok(program) => tx.send((i, program)).is_ok(),
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    return Some((i, e));
                }
            };
            if !sent {
                stop.store(true, Ordering::Relaxed);
                break;
            }
        }
        None
    };
    let mut failures: Vec<(usize, Error)> = std::thread::scope(|s| {
        // A loader that cannot be started leaves its share undone: the attacher
        // then stops before its first program, as after a failure.
        let others: Vec<_> = (1..loaders)
            .map(|k| {
                let tx = tx.clone();
                std::thread::Builder::new().name("loader".into()).spawn_scoped(s, move || work(k, tx))
            })
            .collect();
        let mut failures: Vec<(usize, Error)> = work(0, tx.clone()).into_iter().collect();
        for thread in others {
            match thread {
                Ok(t) => failures.extend(t.join().expect("a thread loading programs panicked")),
                Err(e) => failures.push((0, Error::Io("starting a thread to load programs".into(), e))),
            }
        }
        failures
    });
    failures.sort_by_key(|(i, _)| *i);
    match failures.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// The programs from the loaders, in the order they were asked for: each is
/// held until those before it have come. Ends when the loaders are done and the
/// next one is missing (a loader failed).
struct InOrder<T> {
    rx: mpsc::Receiver<(usize, T)>,
    early: std::collections::BTreeMap<usize, T>,
    next: usize,
}

impl<T> InOrder<T> {
    fn new(rx: mpsc::Receiver<(usize, T)>) -> InOrder<T> {
        InOrder { rx, early: Default::default(), next: 0 }
    }
}

impl<T> Iterator for InOrder<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        loop {
            if let Some(program) = self.early.remove(&self.next) {
                self.next += 1;
                return Some(program);
            }
            let (i, program) = self.rx.recv().ok()?;
            self.early.insert(i, program);
        }
    }
}

/// Attaches the probes in `order`, each with its program from `programs` (they
/// come in that order: while they are loaded, or all loaded already). A
/// perf event is opened before its program is taken, so the kernel's wait at the
/// first uprobe overlaps the loading. Stops when `programs` ends early (the loader
/// failed: its error is the caller's) or at the first failure, and returns it
/// with what was attached, for the caller to detach.
fn attach_all(
    programs: impl IntoIterator<Item = LoadedProgram>,
    units: &[Unit],
    pid: Option<u32>,
) -> (Vec<Attached>, Result<(), Error>) {
    let mut programs = programs.into_iter();
    let mut attached = Vec::with_capacity(units.len());
    for (n, unit) in units.iter().enumerate() {
        let placed = match place(n, unit, pid) {
            Ok(placed) => placed,
            Err(e) => return (attached, Err(e)),
        };
        let Some(program) = programs.next() else { break };
        match attach(unit, program, placed, pid) {
            Ok(a) => attached.push(a),
            Err(e) => return (attached, Err(e)),
        }
    }
    (attached, Ok(()))
}

/// Where a unit goes, from [`place`], for [`attach`].
enum Placed<'p> {
    /// Its probe's perf event, opened disabled.
    Event(OwnedFd),
    /// A uprobe link to make at `offsets` of `path`, once the program comes; the
    /// cookies are the probes' ids.
    Link { path: &'p std::path::Path, offsets: Vec<u64>, cookies: Vec<u64> },
}

/// For `unit` (number `n` in the attach order): says where it goes, and for a
/// perf event opens it, disabled: the kernel places the probe (a uprobe's
/// breakpoint, the tracepoint's hook), but it fires only once [`attach`] has set
/// its program and enabled it. A link is made by [`attach`].
fn place<'p>(n: usize, unit: &Unit<'p>, pid: Option<u32>) -> Result<Placed<'p>, Error> {
    let p = unit.first();
    let err = |err| Error::Perf { probe: unit_label(unit), err };
    let (pid, cpu) = event_target(p, pid);
    explain::note(|| story::attaching(&unit.probes(), pid, cpu, unit.via == Via::Link));
    if let Some(e) = injected_attach_failure(n) {
        return Err(err(e));
    }
    let event = match (&p.attach, unit.via) {
        (Attach::Uprobe { path, .. }, Via::Link) => {
            let (offsets, cookies) = unit.places.iter().copied().unzip();
            return Ok(Placed::Link { path, offsets, cookies });
        }
        (Attach::Uprobe { path, offset, .. }, Via::PerfEvent) => {
            crate::perf::open_uprobe(path, *offset, p.ret, pid, cpu)
        }
        (Attach::Kprobe { func, .. }, _) => crate::perf::open_kprobe(func, 0, p.ret),
        (Attach::Tracepoint { id, .. }, _) => crate::perf::open_tracepoint(*id, -1, 0),
    };
    event.map(Placed::Event).map_err(err)
}

/// A perf event's pid and cpu for probe `p`. A uprobe for one pid fires only in
/// that process; without a pid it is system-wide (cpu 0 is enough: the program
/// runs on every CPU). Kprobes and tracepoints are always system-wide: the
/// programs filter.
fn event_target(p: &Probe, pid: Option<u32>) -> (i32, i32) {
    match (&p.attach, pid) {
        (Attach::Uprobe { .. }, Some(pid)) => (pid as i32, -1),
        _ => (-1, 0),
    }
}

/// Gives `program` to `unit` where [`place`] said: to its probe's perf event
/// (PERF_EVENT_IOC_SET_BPF, then enable), or through a new uprobe link.
fn attach(unit: &Unit, program: LoadedProgram, placed: Placed, pid: Option<u32>) -> Result<Attached, Error> {
    let p = unit.first();
    let err = |err| Error::Perf { probe: unit_label(unit), err };
    let (path, offsets, cookies) = match placed {
        Placed::Event(fd) => {
            // On a failure `fd` is closed here, which removes the probe.
            crate::perf::set_bpf_and_enable(fd.as_fd(), program.as_fd()).map_err(err)?;
            return Ok(Attached { _fd: fd, _program: program });
        }
        Placed::Link { path, offsets, cookies } => (path, offsets, cookies),
    };
    let pid = event_target(p, pid).0;
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| err(crate::perf::PerfError::InvalidArgument(format!("{} has a NUL", path.display()))))?;
    // The link's pid 0 means every process.
    let fd =
        bpf::link::attach_uprobes(program.as_fd(), &c_path, &offsets, &cookies, p.ret, pid.max(0) as u32)
            .map_err(|e| {
                let errno = nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0));
                let target = crate::perf::PerfTarget::Uprobe {
                    binary: path.to_path_buf(),
                    offset: offsets[0],
                    retprobe: p.ret,
                    pid,
                };
                err(crate::perf::PerfError::from_open(errno, target))
            })?;
    Ok(Attached { _fd: fd, _program: program })
}

/// Waits for the command to end once the trace is over (a script's exit(),
/// a closed stdout), passing it the stop signals trace gets meanwhile.
fn wait_forwarding(child: &mut HeldChild, signals: &Signals) -> Option<Exit> {
    loop {
        if let Some(exit) = child.try_wait() {
            return Some(exit);
        }
        if child.reaped() {
            return None;
        }
        for sig in signals.take() {
            child.signal(sig);
        }
        // SIGCHLD wakes the poll (its handler writes to the signals' pipe).
        let mut fds = [PollFd::new(signals.fd(), PollFlags::POLLIN)];
        let _ = nix::poll::poll(&mut fds, PollTimeout::from(1000u16));
    }
}

fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: a non-negative return is a new descriptor nobody else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Records from per-CPU perf rings wait this long before printing, so a slower
/// CPU's ring can deliver earlier events first; everything is printed at the end
/// anyway. (The ring buffer's records are ordered by arrival: none waits.)
const HOLD_NS: u64 = 20_000_000;
const POLL_MS: u16 = 100;
/// The longest the ring buffer's records may gather before trace reads them.
const GATHER_MS: u16 = 5;
/// The rate a gathering ring must survive: 400 MB/s, in bytes a millisecond
/// (the lab's workload sends about 30 MB/s here).
const GATHER_RATE: u32 = 400_000;

/// How long to let records gather before reading the ring buffer again, in ms
/// (0: poll it now). Its poll(2) is readable as soon as one record waits, and
/// the kernel wakes the reader with the first record after it caught up (flags
/// 0 in the programs), unlike a perf ring, which its watermark wakes: after a
/// drain that found less than an eighth of the ring, records come slowly, and
/// reading them a few ms later in one batch is cheaper than coming back (and
/// being woken, an interrupt in the traced process) for each. As long as the ring
/// of `ring_bytes` takes at least that to fill at [`GATHER_RATE`]: the default
/// ring (2 MiB on 2 CPUs) gathers 5 ms, rings under 400 KB not at all.
/// `drained`: the bytes the last drain read.
fn gather_ms(drained: u64, ring_bytes: u32) -> u16 {
    if drained == 0 || drained >= u64::from(ringbuf_wakeup(ring_bytes)) {
        return 0;
    }
    u16::try_from(ring_bytes / GATHER_RATE).unwrap_or(u16::MAX).min(GATHER_MS)
}

/// Records ordered by (time, arrival) across the per-CPU perf rings; from the
/// ring buffer, which has one order for all CPUs, by arrival alone (its records
/// carry no time unless `-T` shows it), with no hold. Records wait in slots,
/// which are reused: each sample is decoded into a free slot's record, keeping
/// its string's allocation. The heap holds small keys (time, arrival, slot), so
/// keeping it in order moves 24 bytes, not a record.
#[derive(Default)]
struct Merger {
    heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
    slots: Vec<Record>,
    free: Vec<usize>,
    seq: u64,
    /// Per-CPU rings: merge by the records' time.
    by_time: bool,
}

impl Merger {
    /// Decodes a sample into a slot and queues it; malformed samples are dropped.
    /// The sink hears of each record as it arrives (`Sink::arrived`), before
    /// the hold that orders it.
    fn push<S: Sink>(&mut self, sample: &[u8], sink: &mut S) {
        let slot = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Record::default());
                self.slots.len() - 1
            }
        };
        let record = &mut self.slots[slot];
        if record.decode_into(sample).is_err() {
            self.free.push(slot);
            return;
        }
        sink.arrived(record);
        self.seq += 1;
        let time = if self.by_time { record.ktime } else { 0 };
        self.heap.push(Reverse((time, self.seq, slot)));
    }

    /// Emits records older than `before` (all when None). Returns true when
    /// the sink asked to stop (the records after that one are left unshown).
    fn emit<S: Sink>(&mut self, before: Option<u64>, sink: &mut S, n: &mut u64) -> io::Result<bool> {
        while let Some(&Reverse((ktime, _, slot))) = self.heap.peek() {
            if before.is_some_and(|b| ktime >= b) {
                break;
            }
            self.heap.pop();
            self.free.push(slot);
            *n += 1;
            if sink.event(&self.slots[slot])? {
                sink.flush()?;
                return Ok(true);
            }
        }
        sink.flush().map(|_| false)
    }
}

fn drain<S: Sink>(rings: &mut Rings, merger: &mut Merger, lost: &mut u64, sink: &mut S) {
    match rings {
        Rings::Perf(rings) => {
            for ring in rings.iter_mut() {
                ring.drain(|rec| match rec {
                    RingRecord::Sample(bytes) => merger.push(bytes, sink),
                    RingRecord::Lost { lost: n, .. } => *lost += n,
                    RingRecord::Other { .. } => {}
                });
            }
        }
        // The ring buffer tells of no losses: the `dropped` counters do.
        Rings::Buffer(ring) => {
            ring.drain(|bytes| merger.push(bytes, sink));
        }
    }
}

fn event_loop<S: Sink>(
    live: &mut Live,
    fmt: &mut S,
    signals: &Signals,
    mut child: Option<&mut HeldChild>,
    pidfd: Option<&OwnedFd>,
    target: &Option<Target>,
    follow: bool,
) -> Result<Summary, Error> {
    let mut merger = Merger { by_time: matches!(live.rings, Rings::Perf(_)), ..Merger::default() };
    let mut summary = Summary::default();
    let mut asked_to_stop = false;
    // A closed stdout (`trace ... | head`) ends the trace quietly; other write
    // errors are reported.
    let out_err = |e: io::Error| Error::Io("writing the trace".into(), e);
    let closed = |r: io::Result<()>| match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(out_err),
    };
    loop {
        let (mut fds, timeout): (Vec<PollFd>, u16) = match &live.rings {
            Rings::Perf(rings) => {
                (rings.iter().map(|r| PollFd::new(r.fd(), PollFlags::POLLIN)).collect(), POLL_MS)
            }
            Rings::Buffer(ring) => match gather_ms(ring.drained(), live.maps.events.max_entries) {
                0 => (vec![PollFd::new(live.maps.events.as_fd(), PollFlags::POLLIN)], POLL_MS),
                ms => (Vec::new(), ms),
            },
        };
        fds.push(PollFd::new(signals.fd(), PollFlags::POLLIN));
        if let Some(p) = pidfd {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        let _ = nix::poll::poll(&mut fds, PollTimeout::from(timeout));
        let pid_gone = pidfd.is_some() && fds.last().and_then(|f| f.revents()).is_some_and(|r| !r.is_empty());
        drop(fds);
        let mut stop = pid_gone;
        for sig in signals.take() {
            asked_to_stop = true;
            match child.as_deref() {
                // The command gets the signal (a terminal's Ctrl-C already
                // reached it); we keep reading until it exits.
                Some(c) => c.signal(sig),
                None => stop = true,
            }
        }
        if let Some(c) = child.as_deref_mut() {
            if follow {
                // With -f the trace ends when the command and every descendant
                // (reparented to us) have exited; after a stop signal, when the
                // command has (a daemon it left may run for ever).
                let (exit, others_left) = c.reap_descendants();
                summary.exit = summary.exit.or(exit);
                stop = summary.exit.is_some() && (!others_left || asked_to_stop);
            } else if let Some(exit) = c.try_wait() {
                summary.exit = Some(exit);
                stop = true;
            }
        }
        let now = crate::util::monotonic_ns();
        drain(&mut live.rings, &mut merger, &mut summary.lost, fmt);
        if stop {
            drain(&mut live.rings, &mut merger, &mut summary.lost, fmt);
            closed(merger.emit(None, fmt, &mut summary.events).and_then(|_| fmt.finish()))?;
            if let (Some(Target::Pid(p)), true) = (target, pid_gone) {
                say(&format!("trace: process {p} exited\n"));
            }
            return Ok(summary);
        }
        match merger.emit(Some(now.saturating_sub(HOLD_NS)), fmt, &mut summary.events) {
            Ok(false) => {}
            Ok(true) => {
                // The script called exit(): what came after it is not shown.
                closed(fmt.finish())?;
                return Ok(summary);
            }
            // `trace ... | head`: the reader is gone; stop quietly and detach.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(summary),
            Err(e) => return Err(out_err(e)),
        }
    }
}

/// What a shell prints when a program dies of a signal.
fn describe_signal(sig: i32, core: bool) -> String {
    let name = Signal::try_from(sig).map(|s| s.as_str().to_string()).unwrap_or(format!("signal {sig}"));
    let what = match sig {
        libc::SIGSEGV => "Segmentation fault",
        libc::SIGABRT => "Aborted",
        libc::SIGKILL => "Killed",
        libc::SIGTERM => "Terminated",
        libc::SIGINT => "Interrupt",
        libc::SIGHUP => "Hangup",
        libc::SIGQUIT => "Quit",
        libc::SIGPIPE => "Broken pipe",
        libc::SIGBUS => "Bus error",
        libc::SIGFPE => "Floating point exception",
        libc::SIGILL => "Illegal instruction",
        _ => "Killed by a signal",
    };
    format!("trace: the traced command ended: {what} ({name}){}", if core { " (core dumped)" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loaded_programs_reach_the_attacher_in_order() {
        let (tx, rx) = mpsc::channel();
        for (i, x) in [(2, 'c'), (0, 'a'), (3, 'd'), (1, 'b')] {
            tx.send((i, x)).unwrap();
        }
        drop(tx);
        assert_eq!(InOrder::new(rx).collect::<String>(), "abcd");
        // A gap (the loader of 1 failed): the attacher stops before it.
        let (tx, rx) = mpsc::channel();
        tx.send((0, 'a')).unwrap();
        tx.send((2, 'c')).unwrap();
        drop(tx);
        assert_eq!(InOrder::new(rx).collect::<String>(), "a");
    }

    #[test]
    fn loaders_share_the_work_and_report_the_failure() {
        let items: Vec<u32> = (0..40).collect();
        let (tx, rx) = mpsc::channel();
        let ok = load_programs(&items, 3, &|&i: &u32| Ok(i * 10), &tx);
        drop(tx);
        assert!(ok.is_ok());
        assert_eq!(InOrder::new(rx).collect::<Vec<u32>>(), (0..40).map(|i| i * 10).collect::<Vec<_>>());
        // Item 13 fails: its error comes back, and the attacher gets a prefix
        // that stops before 13 (the other loaders stop at their next item).
        let (tx, rx) = mpsc::channel();
        let load = |&i: &u32| if i == 13 { Err(Error::Process(format!("item {i}"))) } else { Ok(i) };
        let err = load_programs(&items, 3, &load, &tx).unwrap_err();
        drop(tx);
        assert_eq!(err.to_string(), Error::Process("item 13".into()).to_string());
        let got: Vec<u32> = InOrder::new(rx).collect();
        assert!(got.len() <= 13 && got.iter().copied().eq(0..got.len() as u32), "{got:?}");
        // The attacher gone: the loaders stop, and it is not theirs to report.
        let (tx, rx) = mpsc::channel::<(usize, u32)>();
        drop(rx);
        assert!(load_programs(&items, 3, &|&i: &u32| Ok(i), &tx).is_ok());
    }

    #[test]
    fn a_rejected_program_is_shown_with_the_log() {
        let err = bpf::BpfError::Verifier {
            program: "uprobe:native".into(),
            err: io::Error::from_raw_os_error(libc::EACCES),
            log: "0: R1=ctx() R10=fp0\n0: (95) exit\nR0 !read_ok".into(),
        };
        let e = Error::Rejected { listing: "     0: (95) exit\n".into(), err };
        let text = e.to_string();
        assert!(text.contains("bug in trace"), "{text}");
        assert!(
            text.ends_with("R0 !read_ok\nThe program, as trace generated it:\n     0: (95) exit"),
            "{text}"
        );
        assert_eq!(e.exit_code(), 70);
    }

    #[test]
    fn the_ring_buffer_gathers_only_slow_records_in_a_big_ring() {
        let mib = 1 << 20;
        // The default ring on 2 CPUs: 256 KiB wake the reader.
        assert_eq!(ringbuf_wakeup(2 * mib), 256 * 1024);
        assert_eq!(gather_ms(100, 2 * mib), 5);
        assert_eq!(gather_ms(256 * 1024 - 8, 2 * mib), 5);
        assert_eq!(gather_ms(256 * 1024, 2 * mib), 0, "a full wakeup's worth: read on");
        assert_eq!(gather_ms(0, 2 * mib), 0, "nothing read: wait in poll");
        assert_eq!(gather_ms(100, mib), 2);
        assert_eq!(gather_ms(100, 256 * 1024), 0, "a small ring fills too fast");
        assert_eq!(gather_ms(100, 1 << 31), 5);
    }

    #[test]
    fn why_kernel_functions_are_unavailable() {
        assert_eq!(
            no_kprobes_reason(KernelVersion::new(4, 14, 320), true),
            "kernel 4.14.320 is too old: trace attaches kprobes through the kprobe PMU, which came with \
             Linux 4.17.0, and does not use this kernel's tracefs kprobe_events"
        );
        assert_eq!(
            no_kprobes_reason(KernelVersion::new(5, 10, 0), true),
            "this kernel has tracefs kprobe_events but no kprobe PMU in /sys/bus/event_source/devices, \
             which trace needs to attach kprobes"
        );
        for kernel in [KernelVersion::new(4, 9, 0), KernelVersion::new(6, 18, 44)] {
            assert_eq!(
                no_kprobes_reason(kernel, false),
                "this kernel has no kprobes (no kprobe PMU in /sys/bus/event_source/devices: built \
                 without CONFIG_KPROBES)"
            );
        }
    }

    /// A probe on `func` at `offset` of `path`, with the command line's record.
    fn uprobe_at(id: u32, path: &str, func: &str, offset: u64, ret: bool) -> Probe {
        use crate::codegen::{Depth, Filter, ProgSpec, StringOp};
        let symbol = crate::elf::Symbol {
            name: func.into(),
            addr: offset,
            size: 16,
            offset,
            section: ".text".into(),
            sh_addr: 0,
            sh_offset: 0,
            kind: crate::elf::SymKind::Func,
            weak: false,
            aliases: vec![],
        };
        let depth = if ret { Depth::Exit } else { Depth::Enter };
        Probe {
            id,
            kind: plan::Kind::ProgFunc,
            ret,
            func: func.into(),
            attach: Attach::Uprobe { path: path.into(), offset, symbol: Box::new(symbol) },
            spec: ProgSpec::record(id, Ctx::PtRegs, Filter::None, vec![], StringOp::None, depth),
            values: vec![],
            string_arg: None,
            show_comm: false,
            pair: id ^ 1,
        }
    }

    /// With links, probes alike on one binary share a unit (entries apart from
    /// returns); other binaries, other shapes and perf events do not.
    #[test]
    fn probes_alike_on_one_binary_share_a_link() {
        let mut probes = [
            uprobe_at(0, "/bin/a", "f", 0x10, false),
            uprobe_at(1, "/bin/a", "f", 0x10, true),
            uprobe_at(2, "/bin/a", "g", 0x20, false),
            uprobe_at(3, "/bin/a", "g", 0x20, true),
            uprobe_at(4, "/lib/b", "h", 0x30, false),
            uprobe_at(5, "/bin/a", "k", 0x40, false),
        ];
        // k's entry records its first argument: another program.
        probes[5].spec = crate::codegen::ProgSpec::record(
            5,
            Ctx::PtRegs,
            crate::codegen::Filter::None,
            vec![crate::codegen::Value::Reg(crate::codegen::pt_regs::DI)],
            crate::codegen::StringOp::None,
            crate::codegen::Depth::Enter,
        );
        let order: Vec<(usize, &Probe)> = probes.iter().enumerate().collect();
        let ids = |units: &[Unit]| -> Vec<Vec<u32>> {
            units.iter().map(|u| u.members.iter().map(|(_, p)| p.id).collect()).collect()
        };
        assert_eq!(ids(&units(&order, true)), [vec![0, 2], vec![1, 3], vec![4], vec![5]]);
        assert!(units(&order, true).iter().all(|u| u.via == Via::Link));
        // The link's offsets, each with its probe's id as its cookie.
        assert_eq!(units(&order, true)[0].places, [(0x10, 0), (0x20, 2)]);
        assert_eq!(units(&order, true)[1].places, [(0x10, 1), (0x20, 3)]);
        // Perf events have no cookie: one program each.
        assert_eq!(ids(&units(&order, false)), (0..6).map(|i| vec![i]).collect::<Vec<_>>());
        // A script's probe (its records' ids are its own events) keeps its own.
        let mut scripted = uprobe_at(6, "/bin/a", "m", 0x50, false);
        for s in &mut scripted.spec.body {
            if let crate::codegen::Stmt::Emit(e) = s {
                e.probe_id = false;
            }
        }
        let mut scripted2 = scripted.clone();
        scripted2.id = 7;
        let order = [(0, &scripted), (1, &scripted2)];
        assert_eq!(ids(&units(&order, true)), [vec![6], vec![7]]);
    }
}
