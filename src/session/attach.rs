//! Programs loaded and attached: probes grouped into units (one program and
//! one attachment each), loaded on one thread or several, attached in order,
//! each held by an [`Attached`] whose drop detaches it.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc;

use nix::sys::signal::SigSet;

use crate::bpf::{self, LoadedProgram, Map};
use crate::codegen::{self, Ctx, Helpers, Ids, MapFds};
use crate::explain::{self, story};
use crate::kernel::KernelVersion;
use crate::knobs;
use crate::plan::{Attach, Plan, Probe, Scope};

use super::*;
/// An attached probe: dropping it closes the perf event or the link, which
/// detaches the program and removes the probe from the kernel, then the program.
pub(super) struct Attached {
    pub(super) _fd: OwnedFd,
    pub(super) _program: LoadedProgram,
}

/// Detaches every probe, closing their links and perf events all at once, one
/// thread each: each close waits for RCU grace periods in the kernel (perf
/// events one after the other, under the kernel's `event_mutex`; uprobe links
/// under no global lock, so their waits overlap). Returns once every probe is
/// detached.
pub(super) fn detach_all(attached: Vec<Attached>) {
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

/// How a probe is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Via {
    /// A perf event (uprobe, kprobe or tracepoint PMU) with PERF_EVENT_IOC_SET_BPF.
    PerfEvent,
    /// A BPF link of type uprobe_multi (see [`bpf::link`]).
    Link,
}

pub(super) fn via(p: &Probe, links: bool) -> Via {
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
pub(super) fn ask_uprobe_links(kernel: KernelVersion) -> mpsc::Receiver<bool> {
    let (tx, rx) = mpsc::channel();
    if knobs::uprobe_links_off() {
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
        // Signals are for the main thread, which catches them once it has
        // attached: this thread may still live then, and must not take one (a
        // caught one would not interrupt the main thread's write). It starts
        // with every signal blocked: the main thread blocks them around the
        // spawn, and a new thread inherits its mask.
        use nix::sys::signal::{pthread_sigmask, SigmaskHow};
        let mut old = SigSet::empty();
        let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), Some(&mut old));
        let _ = std::thread::Builder::new().name("first-uprobe".into()).spawn(ask);
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    }
    rx
}

/// Whether the probes will likely include uprobes, known from the command line
/// alone: then the kernel is asked about uprobe links first thing (see [`run`]).
pub(super) fn uprobes_likely(cfg: &Config) -> bool {
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
pub(super) fn load_program(
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
    let loaded = bpf::load_program_for(prog_type, attach_type, &prog.insns, &p.label(), kernel).map_err(
        |e| match e {
            bpf::BpfError::Verifier { .. } => Error::Rejected { listing: prog.listing(), err: e },
            other => Error::Bpf(other),
        },
    )?;
    story::loaded(&loaded);
    Ok(loaded)
}

/// How a unit's probes are named in an error: `uprobe:native` or
/// `uprobe:native, uprobe:with_asm`.
pub(super) fn unit_label(unit: &Unit) -> String {
    unit.members.iter().map(|(_, p)| p.label()).collect::<Vec<_>>().join(", ")
}

/// The failure `TRACE_TEST_FAIL_ATTACH` asks for at unit `i`, if any (see [`knobs`]).
pub(super) fn injected_attach_failure(i: usize) -> Option<crate::perf::PerfError> {
    (knobs::fail_attach_at() == Some(i))
        .then(|| crate::perf::PerfError::InvalidArgument("failure injected by TRACE_TEST_FAIL_ATTACH".into()))
}

/// The probes (then the hidden ones), each with its index among the plan's, in the
/// order their programs are loaded and attached: uprobes first, so that the kernel's
/// wait at the first one overlaps loading the rest (see [`run`]). Within each group,
/// the plan's order, or last first with `reverse`: the kernel runs the programs of one
/// attach point newest first, so a script's blocks on the same probe run in the
/// script's order only when attached in reverse (as bpftrace does).
pub(super) fn attach_order(plan: &Plan, reverse: bool) -> Vec<(usize, &Probe)> {
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
/// cookie (`-u '*'`: two programs and two links, however many functions). A
/// script's probes keep one each: two blocks on one
/// function run in the order they were attached (see [`attach_order`]).
pub(super) struct Unit<'p> {
    /// The probes with their place in the plan, in attach order.
    pub(super) members: Vec<(usize, &'p Probe)>,
    pub(super) via: Via,
    /// The uprobes' file offsets, each with its cookie (the probe's id), in the
    /// same order: what a link is made with.
    pub(super) places: Vec<(u64, u64)>,
}

impl<'p> Unit<'p> {
    pub(super) fn first(&self) -> &'p Probe {
        self.members[0].1
    }

    pub(super) fn probes(&self) -> Vec<&'p Probe> {
        self.members.iter().map(|&(_, p)| p).collect()
    }

    /// Whether `p` can join: linked alike in the same binary.
    pub(super) fn takes(&self, p: &Probe, via: Via) -> bool {
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
pub(super) fn units<'p>(order: &[(usize, &'p Probe)], links: bool) -> Vec<Unit<'p>> {
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
/// one. Each program is generated, then verified by the kernel on its own, so
/// many load faster in parallel; a few load within the kernel's wait at the
/// first uprobe anyway, which a second busy CPU would make longer (README.md,
/// "Benchmarks", has the figures).
pub(super) fn loaders_for(n: usize) -> usize {
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
pub(super) fn load_programs<P: Sync, T: Send, F>(
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
pub(super) struct InOrder<T> {
    pub(super) rx: mpsc::Receiver<(usize, T)>,
    pub(super) early: std::collections::BTreeMap<usize, T>,
    pub(super) next: usize,
}

impl<T> InOrder<T> {
    pub(super) fn new(rx: mpsc::Receiver<(usize, T)>) -> InOrder<T> {
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
pub(super) fn attach_all(
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
pub(super) enum Placed<'p> {
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
pub(super) fn place<'p>(n: usize, unit: &Unit<'p>, pid: Option<u32>) -> Result<Placed<'p>, Error> {
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
pub(super) fn event_target(p: &Probe, pid: Option<u32>) -> (i32, i32) {
    match (&p.attach, pid) {
        (Attach::Uprobe { .. }, Some(pid)) => (pid as i32, -1),
        _ => (-1, 0),
    }
}

/// Gives `program` to `unit` where [`place`] said: to its probe's perf event
/// (PERF_EVENT_IOC_SET_BPF, then enable), or through a new uprobe link.
pub(super) fn attach(
    unit: &Unit,
    program: LoadedProgram,
    placed: Placed,
    pid: Option<u32>,
) -> Result<Attached, Error> {
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

/// Makes the maps and rings, loads every program and attaches it; on a failure,
/// detaches what was attached. Returns what must live while tracing, the
/// script's stack map and its own maps.
pub(super) fn load_and_attach(
    setup: &Setup,
    plan: &Plan,
    links: bool,
) -> Result<(Live, Option<Map>, Vec<Map>), Error> {
    let per_pid = if setup.cfg.scope() == Scope::Process { setup.pid } else { None };
    let order = attach_order(plan, matches!(setup.show, Show::Script { .. }));
    let units = units(&order, links);
    let helpers = Helpers::for_kernel(setup.kernel);
    let (prepared, attached, result) = std::thread::scope(|s| {
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
        let prepared = prepare(setup);
        let mut loaded = Ok(());
        if let Ok((maps, stacks, user_maps, _)) = &prepared {
            explain::note(|| story::STEP_PROGRAMS.into());
            let fds = maps.fds(stacks.as_ref(), user_maps);
            let load = |u: &Unit| load_program(u, &fds, helpers, setup.kernel);
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
    match (prepared, result) {
        (Ok((maps, stacks, user_maps, rings)), Ok(())) => {
            explain::note(|| story::OUTRO.into());
            Ok((Live { attached, rings, maps }, stacks, user_maps))
        }
        (Err(e), _) | (Ok(_), Err(e)) => {
            // Closed all at once, as at exit (each close waits in the kernel).
            detach_all(attached);
            Err(e)
        }
    }
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
