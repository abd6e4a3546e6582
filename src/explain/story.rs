//! The notes `--explain` puts between the recorded calls: how each attach point
//! was found, each program's listing, and the ids the kernel gave to what was
//! loaded. Built from the plan and from what the kernel answered, never from a
//! second description of the calls (those are recorded where they are made).

use std::path::Path;

use crate::bpf::{LoadedProgram, Map};
use crate::bpf_asm::Program;
use crate::codegen::{Filter, Register, Value};
use crate::escape;
use crate::kallsyms::Kallsyms;
use crate::plan::{Attach, Kind, Plan, Probe, Skipped};

use super::{listing, note};

/// The first lines of the explanation.
pub const INTRO: &str = "\
trace --explain: every call trace makes to the kernel to set up tracing, in order, as strace
would show it (`bpf(...) = 3`), with notes (`#`) and the programs (indented). The trace itself
follows on stdout.";

/// The numbered steps of a session, as section titles.
pub const STEP_PLAN: &str = "\n1. Planning: where each probe goes";
/// See [`STEP_PLAN`].
pub const STEP_MAPS: &str = "\n2. Maps: the memory shared by the programs and trace";
/// See [`STEP_PLAN`]: the per-CPU perf rings.
pub const STEP_RINGS: &str = "\n3. Rings: one perf event per CPU receives what bpf_perf_event_output sends; \
its ring is mapped into trace's memory and its fd stored in the `events` map";
/// See [`STEP_PLAN`]: the BPF ring buffer.
pub const STEP_RINGBUF: &str =
    "\n3. Ring: the `events` map is the BPF ring buffer that bpf_ringbuf_output fills \
from every CPU; trace maps its consumer page read-write (it writes consumer_pos there) and, one page \
further, the producer page and the data area (mapped twice in a row by the kernel) read-only";
/// See [`STEP_PLAN`].
pub const STEP_PROGRAMS: &str =
    "\n4. Programs: one per probe, except that with uprobe links the probes of one binary that differ \
only in their id share one (entries one, returns another: each record's id is the link's cookie for the \
place it fires at). Each is checked by the verifier when loaded (without --explain, 64 or more are \
loaded by one thread per CPU, at most 4: the kernel checks each program on its own)";
/// Before asking the kernel whether uprobes can be attached with links.
pub const UPROBE_LINKS_PROBE: &str = "how to attach uprobes: with a BPF link (BPF_LINK_CREATE, attach type \
BPF_TRACE_UPROBE_MULTI), where the kernel has one, since a link detaches much faster than a perf event. \
trace asks: a two-instruction program loaded for that attach type, then linked to `/` (a directory, so \
nothing is attached) with pid 0 (EBADF: the kernel knows the link type and got as far as the path; \
EINVAL: it does not) and with pid -1 (EINVAL: the kernel checks the pid, as those whose pid filter \
covers the whole process do):";
/// When TRACE_UPROBE_LINKS=0 turns links off.
pub const UPROBE_LINKS_OFF: &str = "uprobes are attached with perf events: TRACE_UPROBE_LINKS=0 asks so";
/// See [`STEP_PLAN`].
pub const STEP_ATTACH: &str = "\n5. Attaching, uprobes first: a tracepoint, kprobe (or uprobe, without links) \
is a perf event opened disabled, given its program (PERF_EVENT_IOC_SET_BPF), then enabled; a uprobe link \
fires as soon as it is made. Without --explain, a second thread does this from the start, while the maps, the \
rings and the programs are made: it opens each perf event before its program is loaded (without links, the \
first uprobe's open waits for an RCU grace period, tens of ms, while the programs load) and makes each link as \
soon as its program is (the first registration of step 1 had that wait already)";
/// The last note before the trace.
pub const OUTRO: &str =
    "\nThe probes are live. Closing the link and perf event fds (at exit, all at once from \
threads) detaches them; closing the program and map fds unloads the rest.";

/// The answer to [`UPROBE_LINKS_PROBE`].
pub fn uprobe_links(answer: Result<(), &String>) -> String {
    match answer {
        Ok(()) => "so uprobes are attached with links".into(),
        Err(why) => format!("{why}: uprobes are attached with perf events"),
    }
}

/// After a yes to [`UPROBE_LINKS_PROBE`].
pub const FIRST_REGISTRATION: &str = "the first uprobe registration, made now: the kernel makes the first \
one after a quiet while wait for an RCU grace period (it takes dup_mmap_sem for writing; tens of ms on a small \
VM), and the ones soon after do not. So the program above is linked at offset 0 of an empty memfd (a file no \
process maps: nothing is ever placed) for our pid, then closed. Without --explain a thread does this first \
thing, while the ELF files are read and the programs loaded: the probes' links then share that wait rather \
than start their own after the work";

/// How [`FIRST_REGISTRATION`] went.
pub fn first_registration(made: &std::io::Result<()>) -> String {
    match made {
        Ok(()) => "made and closed".into(),
        Err(e) => format!("refused ({e}): the first probe's link waits instead"),
    }
}

/// The note before the one call made after the trace.
pub const AFTER: &str = "\nAfter the trace: the `dropped` counters (one per CPU) say how many records found \
their ring full";

/// A script, as trace understood it: each attach point with the block it
/// runs, and each event id with the call in the script that sends it.
pub fn script(program: &crate::lang::Program, lowered: &crate::lang::lower::Lowered, plan: &Plan) -> String {
    use crate::lang::lower::Action;
    let src = &program.source;
    let place = |span: crate::lang::Span| {
        let (line, col) = src.line_col(span.start);
        format!("{}:{line}:{col}", src.name)
    };
    let n = |count: usize, what: &str| format!("{count} {what}{}", if count == 1 { "" } else { "s" });
    let mut out = format!(
        "the script {}: {}, {} to attach{}\n",
        src.name,
        n(program.script.groups.len(), "block"),
        n(plan.probes.len(), "probe"),
        match (lowered.begin.len(), lowered.end.len()) {
            (0, 0) => String::new(),
            (b, e) => format!(", {b} BEGIN and {e} END run by trace itself"),
        }
    );
    for p in &plan.probes {
        out.push_str(&format!("  {}\n", title(p)));
    }
    out.push_str("each output call sends a record whose first field is an event id; trace formats it:\n");
    for (id, e) in lowered.events.iter().enumerate() {
        let what = match &e.action {
            Action::Fill { entry } => {
                format!("the string event {entry} could not read, read again at return")
            }
            _ => format!("`{}`", src.slice(e.span)),
        };
        out.push_str(&format!("  event {id} ({}, {}): {what}\n", place(e.span), e.probe));
    }
    out
}

/// How the probe is named in the explanation: `probe 0, uprobe:native`.
fn title(p: &Probe) -> String {
    format!("probe {}, {}", p.id, p.label())
}

/// How probes sharing a program are named: as [`title`] for one, else
/// `probes 0, 2 (uprobe:native, uprobe:with_asm)`.
fn titles(probes: &[&Probe]) -> String {
    match probes {
        [p] => title(p),
        _ => {
            let ids: Vec<String> = probes.iter().map(|p| p.id.to_string()).collect();
            let labels: Vec<String> = probes.iter().map(|p| p.label()).collect();
            format!("probes {} ({})", ids.join(", "), labels.join(", "))
        }
    }
}

/// How every probe of the plan was placed, and why some were skipped.
pub fn plan(plan: &Plan, tracefs_root: Option<&Path>, kallsyms: Option<&Kallsyms>) -> String {
    let mut out = String::new();
    for p in plan.probes.iter().chain(plan.hidden.iter()) {
        out.push_str(&attach_point(p, tracefs_root));
    }
    for s in &plan.skipped {
        out.push_str(&skipped(s, kallsyms));
    }
    out
}

/// How one probe's attach point was found, with the numbers that go into
/// perf_event_open.
pub fn attach_point(p: &Probe, tracefs_root: Option<&Path>) -> String {
    match &p.attach {
        Attach::Uprobe { path, offset, symbol } => {
            // Names and paths from the traced world: escaped.
            let (func, shown) = (escape::text(&p.func), escape::path(path));
            let what = match (p.spec.register_kind(), p.ret) {
                (Register::No, false) => format!("a breakpoint at the entry of {func} in {shown}"),
                (Register::No, true) => format!(
                    "the same place; at entry the kernel swaps the return address so that it also \
                     stops when {func} returns"
                ),
                (_, _) => format!(
                    "the entry point of {shown} (hidden): adds each process that starts it to the traced set"
                ),
            };
            let mut s = format!("{}: {what}\n", title(p));
            if !p.ret {
                let aliases = match symbol.aliases.as_slice() {
                    [] => String::new(),
                    names => {
                        let names: Vec<String> = names.iter().map(|n| escape::text(n).to_string()).collect();
                        format!(", also named {}", names.join(", "))
                    }
                };
                s.push_str(&format!(
                    "  symbol {}: st_value {:#x}, {} bytes, in section {}{aliases}\n",
                    escape::text(&symbol.name),
                    symbol.addr,
                    symbol.size,
                    escape::text(&symbol.section)
                ));
                s.push_str(&format!("  file offset: {}\n", symbol.formula()));
            }
            s.push_str(&format!(
                "  the uprobe is file {} at offset {offset:#x} (a link's path and offsets, a perf event's \
                 config1 and config2){}\n",
                super::quote(path.as_os_str().as_encoded_bytes()),
                if p.ret { ", a return probe (the link's flag, the event's retprobe bit)" } else { "" }
            ));
            s
        }
        Attach::Tracepoint { category, name, id } => {
            let format = match tracefs_root {
                Some(root) => {
                    root.join("events").join(category).join(name).join("format").display().to_string()
                }
                None => format!("events/{category}/{name}/format"),
            };
            let event = match (category.as_str(), p.ret, p.spec.register_kind()) {
                (_, _, Register::Field(_)) => {
                    "a process forking (hidden): adds the child of a traced process to the traced set".into()
                }
                ("syscalls", false, _) => format!("the entry of the {} system call", p.func),
                ("syscalls", true, _) => format!("the return from the {} system call", p.func),
                _ => format!("{category}/{name}"),
            };
            let mut s = format!("{}: the kernel's tracepoint at {event}\n", title(p));
            s.push_str(&format!(
                "  id {id}: the `ID:` line of {format}; perf_event_open gets it as config\n"
            ));
            let read = match p.spec.register_kind() {
                Register::Field(offset) => format!("the new pid at {offset}"),
                _ => fields(p),
            };
            s.push_str(&format!("  fields the program reads (offset, size from that file): {read}\n"));
            s
        }
        Attach::Kprobe { func, addr } => {
            let mut s = format!("{}: /proc/kallsyms has {func} at {addr:#x}\n", title(p));
            s.push_str(&format!(
                "  perf_event_open gets config1 = {}, config2 = 0 (no offset into it){}\n",
                super::quote(func.as_bytes()),
                if p.ret { ", and the retprobe bit in config" } else { "" }
            ));
            s
        }
    }
}

/// `filename at 16 (8 bytes, a user string), flags at 24 (8 bytes)`.
fn fields(p: &Probe) -> String {
    let shown: Vec<String> = p
        .values
        .iter()
        .zip(p.spec.record_values())
        .enumerate()
        .map(|(i, (desc, v))| {
            let (offset, size) = match v {
                Value::Field { offset, size } => (i64::from(offset), u32::from(size)),
                Value::Reg(off) => (i64::from(off), 8),
            };
            let string = if p.string_arg == Some(i) { ", a user string" } else { "" };
            format!("{} at {offset} ({size} bytes{string})", desc.name)
        })
        .collect();
    if shown.is_empty() {
        "none".into()
    } else {
        shown.join(", ")
    }
}

/// A probe the kernel cannot offer: where it would have gone, and why not.
pub fn skipped(s: &Skipped, kallsyms: Option<&Kallsyms>) -> String {
    match kallsyms.and_then(|k| k.function(&s.what)) {
        Some(addr) => {
            format!("{}: /proc/kallsyms has it at {addr:#x}, but it is skipped: {}\n", s.what, s.why)
        }
        None => format!("{}: skipped: {}\n", s.what, s.why),
    }
}

/// Asks the kernel for each map's id and notes it (`bpftool map show id N`).
pub fn maps(maps: &[&Map]) {
    if !super::enabled() {
        return;
    }
    for m in maps {
        match m.info() {
            Ok(info) => note(|| {
                format!(
                    "map `{}` (fd {}) has id {}: `bpftool map show id {}`; {}",
                    m.name,
                    m.raw_fd(),
                    info.id,
                    info.id,
                    map_purpose(m)
                )
            }),
            Err(e) => note(|| format!("map `{}`: {e}", m.name)),
        }
    }
}

/// What each map of the session is for.
fn map_purpose(map: &Map) -> &'static str {
    match map.name.as_str() {
        "events" if map.map_type == crate::bpf::MapType::Ringbuf => {
            "the ring buffer the programs send their records to (max_entries = its size in bytes)"
        }
        "events" => "CPU number -> the fd of that CPU's ring",
        "tgids" => "the processes traced (tgid -> 1)",
        "depth" => {
            "how many traced program functions each thread is inside (tid -> depth; an LRU hash: \
             an entry stays at 0 after its thread's last return, and those of exited threads are \
             the ones evicted when it is full)"
        }
        "pending" => "file names the entry could not read, kept for the return probe",
        "dropped" => "per CPU, the records that found the ring full",
        _ => "",
    }
}

/// The program of a probe (or of probes alike, which read their ids from a
/// link's cookies), before it is loaded: a title and its listing (verifier
/// syntax, `; ` comments naming the blocks, `label:` lines).
pub fn program(probes: &[&Probe], prog: &Program) {
    let p = probes[0];
    note(|| {
        let filter = match p.spec.filter() {
            Filter::None => {
                "no filter in the program: the perf event or link it is attached to says where it runs"
            }
            Filter::Tgid => "it filters on the traced processes",
            Filter::Inside => "it filters on the threads inside a traced program function",
        };
        let shared = if probes.len() > 1 {
            "; one program for them all: each record's probe id is the cookie the link gave the place it runs at"
        } else {
            ""
        };
        format!("program of {}: {} instructions; {filter}{shared}", titles(probes), prog.len())
    });
    listing(|| prog.listing());
}

/// Asks the kernel about a program just loaded and notes its id and sizes.
pub fn loaded(prog: &LoadedProgram) {
    if !super::enabled() {
        return;
    }
    match prog.info() {
        Ok(info) => note(|| {
            format!(
                "loaded as prog id {} (tag {}): {} bytes after the verifier's rewrites, {} bytes of \
                 machine code; `bpftool prog dump xlated id {}` shows it",
                info.id,
                info.tag_hex(),
                info.xlated_len,
                info.jited_len,
                info.id
            )
        }),
        Err(e) => note(|| format!("loaded; {e}")),
    }
}

/// The process the probes are for, once its pid is known.
pub fn traced_process(pid: u32, held: bool) -> String {
    if held {
        format!(
            "the command is started and held before its exec: its pid {pid} is known before any probe \
             is attached, so nothing it does is missed. Its pid goes into `tgids`:"
        )
    } else {
        format!("the process to trace is {pid}; its pid goes into `tgids`:")
    }
}

/// Before probes are attached (one, or several on one link): which, how,
/// where, for whom.
pub fn attaching(probes: &[&Probe], pid: i32, cpu: i32, link: bool) -> String {
    let p = probes[0];
    let whom = match (pid, cpu, link) {
        (-1, _, true) => "every process (pid 0)".to_string(),
        (-1, _, false) => format!("every process (pid -1, cpu {cpu}: the program runs on every CPU)"),
        (pid, _, true) => format!("process {pid} only"),
        (pid, _, false) => format!("process {pid} only (pid {pid}, cpu -1: on any CPU)"),
    };
    let offsets: Vec<String> = probes
        .iter()
        .filter_map(|q| match &q.attach {
            Attach::Uprobe { offset, .. } => Some(format!("{offset:#x}")),
            _ => None,
        })
        .collect();
    let at = match &p.attach {
        Attach::Uprobe { path, .. } => {
            let s = if offsets.len() > 1 { "s" } else { "" };
            format!("offset{s} {} of {}", offsets.join(", "), escape::path(path))
        }
        Attach::Tracepoint { category, name, id } => format!("tracepoint {category}/{name} (id {id})"),
        Attach::Kprobe { func, .. } => format!("kernel function {func}"),
    };
    let kind = match p.kind {
        Kind::ProgFunc | Kind::LibFunc if link => "uprobe link",
        Kind::ProgFunc | Kind::LibFunc => "uprobe event",
        Kind::Syscall => "tracepoint event",
        Kind::KFunc => "kprobe event",
    };
    let cookies = if link {
        let ids: Vec<String> = probes.iter().map(|q| q.id.to_string()).collect();
        let (s, each) = if probes.len() > 1 { ("s", "each offset's ") } else { ("", "") };
        format!(" with cookie{s} {} ({each}probe id, which the program reads)", ids.join(", "))
    } else {
        String::new()
    };
    format!("{}: a {kind} at {at}{cookies}, for {whom}", titles(probes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codegen::{Ctx, Depth, ProgSpec, StringOp};
    use crate::elf::{SymKind, Symbol};
    use crate::plan::ValueDesc;
    use std::path::PathBuf;

    fn spec(ctx: Ctx, values: Vec<Value>) -> ProgSpec {
        ProgSpec::record(0, ctx, Filter::None, values, StringOp::None, Depth::None)
    }

    fn desc(name: &str) -> ValueDesc {
        ValueDesc { name: name.into(), size: 8, signed: false, pointer: false }
    }

    fn uprobe_probe(ret: bool) -> Probe {
        let symbol = Symbol {
            name: "native".into(),
            addr: 0x1189,
            size: 52,
            offset: 0x1189,
            section: ".text".into(),
            sh_addr: 0x1060,
            sh_offset: 0x1060,
            kind: SymKind::Func,
            weak: false,
            aliases: vec![],
        };
        Probe {
            id: u32::from(ret),
            kind: Kind::ProgFunc,
            ret,
            func: "native".into(),
            attach: Attach::Uprobe {
                path: PathBuf::from("/lab/file-io"),
                offset: 0x1189,
                symbol: Box::new(symbol),
            },
            spec: spec(Ctx::PtRegs, vec![]),
            values: vec![],
            string_arg: None,
            show_comm: false,
            pair: u32::from(!ret),
        }
    }

    #[test]
    fn uprobe_attach_points() {
        assert_eq!(
            attach_point(&uprobe_probe(false), None),
            "probe 0, uprobe:native: a breakpoint at the entry of native in /lab/file-io\n\
             \x20 symbol native: st_value 0x1189, 52 bytes, in section .text\n\
             \x20 file offset: st_value 0x1189 - sh_addr 0x1060 + sh_offset 0x1060 (.text) = 0x1189\n\
             \x20 the uprobe is file \"/lab/file-io\" at offset 0x1189 (a link's path and offsets, a perf \
             event's config1 and config2)\n"
        );
        assert_eq!(
            attach_point(&uprobe_probe(true), None),
            "probe 1, uretprobe:native: the same place; at entry the kernel swaps the return address so \
             that it also stops when native returns\n\
             \x20 the uprobe is file \"/lab/file-io\" at offset 0x1189 (a link's path and offsets, a perf \
             event's config1 and config2), a return probe (the link's flag, the event's retprobe bit)\n"
        );
    }

    /// One link for several entries: their offsets in attach order, each one's
    /// probe id as its cookie.
    #[test]
    fn a_link_for_several_probes_names_them_and_their_cookies() {
        let native = uprobe_probe(false);
        let mut other = uprobe_probe(false);
        other.id = 2;
        other.func = "with_asm".into();
        if let Attach::Uprobe { offset, .. } = &mut other.attach {
            *offset = 0x1480;
        }
        assert_eq!(
            attaching(&[&native], 42, -1, true),
            "probe 0, uprobe:native: a uprobe link at offset 0x1189 of /lab/file-io with cookie 0 (probe id, \
             which the program reads), for process 42 only"
        );
        assert_eq!(
            attaching(&[&native, &other], 42, -1, true),
            "probes 0, 2 (uprobe:native, uprobe:with_asm): a uprobe link at offsets 0x1189, 0x1480 of \
             /lab/file-io with cookies 0, 2 (each offset's probe id, which the program reads), for process 42 only"
        );
        assert_eq!(
            attaching(&[&native], 42, -1, false),
            "probe 0, uprobe:native: a uprobe event at offset 0x1189 of /lab/file-io, for process 42 only \
             (pid 42, cpu -1: on any CPU)"
        );
    }

    #[test]
    fn tracepoint_attach_point() {
        let p = Probe {
            id: 4,
            kind: Kind::Syscall,
            ret: false,
            func: "open".into(),
            attach: Attach::Tracepoint {
                category: "syscalls".into(),
                name: "sys_enter_open".into(),
                id: 784,
            },
            spec: spec(
                Ctx::Tracepoint,
                vec![Value::Field { offset: 16, size: 8 }, Value::Field { offset: 24, size: 8 }],
            ),
            values: vec![desc("filename"), desc("flags")],
            string_arg: Some(0),
            show_comm: false,
            pair: 5,
        };
        assert_eq!(
            attach_point(&p, Some(Path::new("/sys/kernel/tracing"))),
            "probe 4, tracepoint:syscalls:sys_enter_open: the kernel's tracepoint at the entry of the open \
             system call\n\
             \x20 id 784: the `ID:` line of /sys/kernel/tracing/events/syscalls/sys_enter_open/format; \
             perf_event_open gets it as config\n\
             \x20 fields the program reads (offset, size from that file): filename at 16 (8 bytes, a user \
             string), flags at 24 (8 bytes)\n"
        );
        assert_eq!(
            attaching(&[&p], -1, 0, false),
            "probe 4, tracepoint:syscalls:sys_enter_open: a tracepoint event at tracepoint \
             syscalls/sys_enter_open (id 784), for every process (pid -1, cpu 0: the program runs on every CPU)"
        );
    }

    #[test]
    fn kprobe_attach_point_and_skips() {
        let p = Probe {
            id: 8,
            kind: Kind::KFunc,
            ret: false,
            func: "vfs_open".into(),
            attach: Attach::Kprobe { func: "vfs_open".into(), addr: 0xffffffff816d1c90 },
            spec: spec(Ctx::PtRegs, vec![Value::Reg(112)]),
            values: vec![desc("arg0")],
            string_arg: None,
            show_comm: false,
            pair: 9,
        };
        assert_eq!(
            attach_point(&p, None),
            "probe 8, kprobe:vfs_open: /proc/kallsyms has vfs_open at 0xffffffff816d1c90\n\
             \x20 perf_event_open gets config1 = \"vfs_open\", config2 = 0 (no offset into it)\n"
        );
        let k = Kallsyms::parse("ffffffff816d1c90 T vfs_open\n");
        let s = Skipped { what: "vfs_open".into(), why: "no kprobes".into() };
        assert_eq!(
            skipped(&s, Some(&k)),
            "vfs_open: /proc/kallsyms has it at 0xffffffff816d1c90, but it is skipped: no kprobes\n"
        );
        let s = Skipped { what: "nope".into(), why: "no kprobes".into() };
        assert_eq!(skipped(&s, Some(&k)), "nope: skipped: no kprobes\n");
    }
}
