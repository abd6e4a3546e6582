//! `trace --explain` checked against independent witnesses:
//!
//! - strace: every bpf, perf_event_open, ioctl and ring mmap call strace sees the
//!   tracer make is in the explanation, in the same order, with the same
//!   arguments (those both show) and the same result; and nothing else is.
//! - bpftool: the listing of every program equals `bpftool prog dump xlated` of
//!   the same loaded program, up to the kernel's own rewrites, named in
//!   [`Rewrite`].
//! - readelf, tracefs and /proc/kallsyms: the attach-point notes carry their numbers.
//!
//! And the trace itself (stdout) is the same with and without `--explain`.

mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

// ---- One parser for strace's lines and the explanation's -----------------------------

/// The system calls the explanation must account for.
const KINDS: [&str; 4] = ["bpf", "perf_event_open", "ioctl", "mmap"];

/// `name(args) = result`, as strace and the explanation both write it.
#[derive(Clone, Debug)]
struct Call {
    name: String,
    args: Vec<String>,
    result: String,
    line: String,
}

fn parse_call(line: &str) -> Option<Call> {
    let open = line.find('(')?;
    let name = &line[..open];
    if !KINDS.contains(&name) {
        return None;
    }
    // strace pads short calls: `ioctl(18, PERF_EVENT_IOC_SET_BPF, 9)    = 0`.
    let eq = line.rfind(" = ")?;
    let call = line[..eq].trim_end();
    let inner = call.strip_suffix(')')?.get(open + 1..)?;
    Some(Call {
        name: name.to_string(),
        args: split_top(inner),
        result: line[eq + 3..].trim().to_string(),
        line: line.to_string(),
    })
}

/// Splits at the commas that are outside quotes, brackets and comments.
fn split_top(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quoted, mut escaped) =
        (Vec::new(), String::new(), 0i32, false, false);
    for c in s.chars() {
        if quoted {
            cur.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '{' | '[' | '(' => depth += 1,
            '}' | ']' | ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// `{a=1, b={c=2}}` -> {a: 1, b.c: 2}; items without `=` (strace's `...`) are left out.
fn fields(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let inner = s.trim().strip_prefix('{').and_then(|s| s.strip_suffix('}')).unwrap_or(s);
    for item in split_top(inner) {
        let Some((k, v)) = item.split_once('=') else { continue };
        if v.starts_with('{') {
            for (k2, v2) in fields(v) {
                out.insert(format!("{k}.{k2}"), v2);
            }
        } else {
            out.insert(k.to_string(), v.to_string());
        }
    }
    out
}

fn int(s: &str) -> Option<i128> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    let v = match digits.strip_prefix("0x") {
        Some(h) => i128::from_str_radix(h, 16).ok()?,
        None => digits.parse().ok()?,
    };
    Some(if neg { -v } else { v })
}

/// A value in a form both tools agree on: numbers in decimal (strace writes
/// `0x88 /* PERF_ATTR_SIZE_??? */`, the explanation `136`; strace
/// `PERF_TYPE_SOFTWARE`, the explanation `PERF_TYPE_SOFTWARE(1)`; strace
/// `BPF_MAP_TYPE_HASH`, the explanation `HASH`).
fn norm(v: &str) -> String {
    let v = v.split(" /*").next().unwrap_or(v).trim();
    if let (Some(open), true) = (v.find('('), v.ends_with(')')) {
        if let Some(n) = int(&v[open + 1..v.len() - 1]) {
            return n.to_string();
        }
    }
    let first = v.split([' ', '(']).next().unwrap_or(v);
    if let Some(n) = int(first) {
        return n.to_string();
    }
    // strace's names for the numbers the explanation writes as NAME(N).
    let known =
        [("PERF_TYPE_SOFTWARE", "1"), ("PERF_TYPE_TRACEPOINT", "2"), ("PERF_COUNT_SW_BPF_OUTPUT", "10")];
    if let Some((_, n)) = known.iter().find(|(name, _)| *name == v) {
        return n.to_string();
    }
    v.trim_start_matches("BPF_MAP_TYPE_").trim_start_matches("BPF_PROG_TYPE_").to_string()
}

/// Does the explanation's call say what strace saw?
fn same_call(st: &Call, ours: &Call) -> Result<(), String> {
    if st.name != ours.name || st.result != ours.result {
        return Err("different call or result".into());
    }
    match st.name.as_str() {
        "ioctl" | "mmap" if st.args == ours.args => Ok(()),
        "ioctl" | "mmap" => Err("different arguments".into()),
        "bpf" => same_bpf(st, ours),
        _ => same_perf_event_open(st, ours),
    }
}

fn same_bpf(st: &Call, ours: &Call) -> Result<(), String> {
    if st.args.first() != ours.args.first() {
        return Err("different command".into());
    }
    let (s, o) = (fields(&st.args[1]), fields(&ours.args[1]));
    if o.is_empty() {
        return Err("the explanation shows no attr fields".into());
    }
    for (k, v) in &o {
        // strace shows the addresses of key and value; the explanation, what is there.
        if k == "key" || k == "value" {
            if !s.contains_key(k) {
                return Err(format!("strace shows no {k}"));
            }
            continue;
        }
        if let (None, Some(name), Some(extra)) =
            (s.get(k), k.strip_prefix("link_create.uprobe_multi."), s.get("extra_data"))
        {
            same_uprobe_multi_field(name, v, extra)?;
            continue;
        }
        match s.get(k) {
            Some(sv) if norm(sv) == norm(v) => {}
            other => return Err(format!("{k}: strace {other:?}, explanation {v:?}")),
        }
    }
    Ok(())
}

/// strace 6.1 does not decode link_create's uprobe_multi member: it shows the attr's
/// bytes 16..63 as `extra_data="\x41\x8f..."`. Read the field there (offsets within
/// that member, include/uapi/linux/bpf.h): path, offsets and cookies are pointers
/// (non-zero), cnt, flags and pid are numbers.
fn same_uprobe_multi_field(name: &str, ours: &str, extra: &str) -> Result<(), String> {
    let quoted = extra.split(" /*").next().unwrap_or(extra).trim().trim_matches('"');
    let bytes: Vec<u8> =
        quoted.split("\\x").skip(1).filter_map(|h| u8::from_str_radix(h.get(..2)?, 16).ok()).collect();
    let at = |off: usize, len: usize| -> Result<u64, String> {
        let b = bytes.get(off..off + len).ok_or(format!("strace's extra_data is {} bytes", bytes.len()))?;
        Ok(b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    };
    let (seen, want) = match name {
        "path" | "offsets" | "cookies" => {
            let off = match name {
                "path" => 0,
                "offsets" => 8,
                _ => 24,
            };
            return if at(off, 8)? != 0 {
                Ok(())
            } else {
                Err(format!("uprobe_multi.{name}: a NULL pointer in strace's bytes"))
            };
        }
        "cnt" => (at(32, 4)?, ours.parse::<u64>().ok()),
        "flags" => (at(36, 4)?, Some(if ours == "BPF_F_UPROBE_MULTI_RETURN" { 1 } else { 0 })),
        "pid" => (at(40, 4)?, ours.parse::<i32>().ok().map(|p| u64::from(p as u32))),
        _ => return Err(format!("uprobe_multi.{name}: not in strace's bytes")),
    };
    match want {
        Some(w) if w == seen => Ok(()),
        _ => Err(format!("uprobe_multi.{name}: strace's bytes say {seen}, the explanation {ours:?}")),
    }
}

fn same_perf_event_open(st: &Call, ours: &Call) -> Result<(), String> {
    let (s, o) = (fields(&st.args[0]), fields(&ours.args[0]));
    let flags: Vec<String> =
        o.get("flags").map(|f| f.split('|').map(str::to_lowercase).collect()).unwrap_or_default();
    for (k, v) in &o {
        match k.as_str() {
            "flags" => {
                for f in &flags {
                    if s.get(f).map(String::as_str) != Some("1") {
                        return Err(format!("flag {f} is not set in strace's attr"));
                    }
                }
            }
            // The explanation shows the string config1 points to; strace, the pointer.
            "config1" if v.starts_with('"') => {
                if s.get("config1").is_none_or(|p| norm(p) == "0") {
                    return Err("config1: no pointer in strace's attr".into());
                }
            }
            _ => match s.get(k) {
                Some(sv) if norm(sv) == norm(v) => {}
                other => return Err(format!("{k}: strace {other:?}, explanation {v:?}")),
            },
        }
    }
    // Everything strace shows set must be in the explanation too.
    for (k, v) in &s {
        let set = norm(v) != "0" && v != "NULL";
        if set && !o.contains_key(k) && !flags.contains(k) {
            return Err(format!("strace shows {k}={v}, the explanation does not"));
        }
    }
    let named = |a: &String| a.split_once('=').map_or(a.clone(), |(_, v)| v.to_string());
    let (sa, oa): (Vec<_>, Vec<_>) = (st.args[1..].to_vec(), ours.args[1..].iter().map(named).collect());
    if sa != oa {
        return Err(format!("pid, cpu, group_fd, flags: strace {sa:?}, explanation {oa:?}"));
    }
    Ok(())
}

#[test]
fn the_parsers_read_both_styles() {
    let st = parse_call(
        "perf_event_open({type=0x8 /* PERF_TYPE_??? */, size=0x88 /* PERF_ATTR_SIZE_??? */, config=0, \
         watermark=0, config1=0x5555653597a0, config2=0xf7fc0, sample_max_stack=0, ...}, 3800, -1, -1, \
         PERF_FLAG_FD_CLOEXEC) = 14",
    )
    .unwrap();
    let ours = parse_call(
        "perf_event_open({type=uprobe(8), size=136, config=0 (entry), config1=\"/a, b\", config2=0xf7fc0}, \
         pid=3800, cpu=-1, group_fd=-1, flags=PERF_FLAG_FD_CLOEXEC) = 14",
    )
    .unwrap();
    assert_eq!(ours.args.len(), 5, "{:?}", ours.args);
    assert_eq!(same_call(&st, &ours), Ok(()));
    let wrong = parse_call(&ours.line.replace("0xf7fc0", "0xf7fc8")).unwrap();
    assert!(same_call(&st, &wrong).unwrap_err().starts_with("config2"));
    let st = parse_call("ioctl(18, PERF_EVENT_IOC_SET_BPF, 9)    = 0").unwrap();
    assert_eq!(same_call(&st, &parse_call("ioctl(18, PERF_EVENT_IOC_SET_BPF, 9) = 0").unwrap()), Ok(()));
    assert!(same_call(&st, &parse_call("ioctl(18, PERF_EVENT_IOC_SET_BPF, 8) = 0").unwrap()).is_err());
    let st = parse_call(
        "bpf(BPF_MAP_CREATE, {map_type=BPF_MAP_TYPE_HASH, key_size=4, value_size=4, max_entries=4096, \
         map_flags=0, inner_map_fd=0, map_name=\"tgids\"}, 44) = 4",
    )
    .unwrap();
    let ours = "bpf(BPF_MAP_CREATE, {map_type=HASH, key_size=4, value_size=4, max_entries=4096, map_name=\"tgids\"}) = 4";
    assert_eq!(same_call(&st, &parse_call(ours).unwrap()), Ok(()));
    assert!(same_call(&st, &parse_call(&ours.replace("4096", "4097")).unwrap()).is_err());
    assert!(same_call(&st, &parse_call(&ours.replace("= 4", "= 5")).unwrap()).is_err());
    // strace 6.1 leaves link_create's uprobe_multi member as bytes: a return probe
    // (flags 1) with one offset (cnt 1) for pid 13762 (0x35c2).
    let bytes = "\\x41\\x8f\\x21\\x6e\\x04\\x7f\\x00\\x00\\x10\\x29\\x21\\x6e\\x04\\x7f\\x00\\x00"
        .to_string()
        + &"\\x00".repeat(16)
        + "\\x01\\x00\\x00\\x00\\x01\\x00\\x00\\x00\\xc2\\x35\\x00\\x00"
        + &"\\x00".repeat(4);
    let st = parse_call(&format!(
        "bpf(BPF_LINK_CREATE, {{link_create={{prog_fd=13, target_fd=0, attach_type=0x30 /* BPF_??? */, \
         flags=0}}, extra_data=\"{bytes}\" /* bytes 16..63 */}}, 64) = 14"
    ))
    .unwrap();
    let ours = "bpf(BPF_LINK_CREATE, {link_create={prog_fd=13, target_fd=0, \
                attach_type=BPF_TRACE_UPROBE_MULTI(48), flags=0, uprobe_multi={path=\"/a\", offsets=[0x11e0], \
                cnt=1, flags=BPF_F_UPROBE_MULTI_RETURN, pid=13762}}}) = 14";
    assert_eq!(same_call(&st, &parse_call(ours).unwrap()), Ok(()));
    for wrong in
        [("pid=13762", "pid=13763"), ("cnt=1", "cnt=2"), ("flags=BPF_F_UPROBE_MULTI_RETURN", "flags=0")]
    {
        assert!(same_call(&st, &parse_call(&ours.replace(wrong.0, wrong.1)).unwrap()).is_err(), "{wrong:?}");
    }
}

// ---- Running the tracer under strace -------------------------------------------------

/// The explanation (stderr), the calls strace saw the tracer make, and the output.
struct Traced {
    output: Output,
    explained: Vec<Call>,
    seen: Vec<Call>,
    /// The tracer's (from its strace file, `st.PID`).
    pid: u32,
    /// The calls of the tracer's other threads and of the command, by thread id.
    others: Vec<(u32, Vec<Call>)>,
}

fn explanation(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// How the records travel: the BPF ring buffer (this kernel's default) or the
/// per-CPU perf rings (forced with TRACE_PERF_RINGS=1, as on kernels before 5.8).
/// With perf rings, uprobes are perf events too (TRACE_UPROBE_LINKS=0, as before
/// 6.6): these tests then follow the oldest kernels' way end to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rings {
    Buffer,
    Perf,
}

impl Rings {
    /// The environment that selects them.
    fn env(self) -> [(&'static str, &'static str); 2] {
        match self {
            Rings::Buffer => [("TRACE_PERF_RINGS", "0"), ("TRACE_UPROBE_LINKS", "1")],
            Rings::Perf => [("TRACE_PERF_RINGS", "1"), ("TRACE_UPROBE_LINKS", "0")],
        }
    }

    /// Are uprobes attached with links in this way, on this kernel? uprobe_multi links
    /// came in 6.6, their pid filter for whole processes in 6.10 (trace asks the kernel;
    /// this independent answer goes by the version, so a 6.6-6.9 kernel with the fix
    /// backported would need it told).
    fn links(self) -> bool {
        let v = trace::kernel::KernelVersion::current();
        self == Rings::Buffer && (v.major, v.minor) >= (6, 10)
    }
}

/// Runs `trace ARGS` under `strace -f` in `dir` and reads both accounts.
fn under_strace(args: &[&str], dir: &Path, rings: Rings) -> Traced {
    let out_dir = temp_dir("strace");
    let prefix = out_dir.join("st");
    let output = Command::new("strace")
        .envs(rings.env())
        .args(["-v", "-ff", "-e", "trace=bpf,perf_event_open,ioctl,mmap,execve", "-o"])
        .arg(&prefix)
        .arg(TRACE)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("strace runs (install Debian's strace package)");
    // -ff writes one file per process; the tracer's is the one that execs it.
    let files: Vec<(u32, String)> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (
                path.extension().unwrap().to_str().unwrap().parse::<u32>().unwrap(),
                std::fs::read_to_string(path).unwrap(),
            )
        })
        .collect();
    let (pid, tracer) = files
        .iter()
        .find(|(_, text)| text.starts_with(&format!("execve(\"{TRACE}\"")))
        .cloned()
        .unwrap_or_else(|| {
            panic!("no strace file of the tracer in {}: {}", out_dir.display(), stderr(&output))
        });
    let others = files
        .into_iter()
        .filter(|(tid, _)| *tid != pid)
        .map(|(tid, text)| (tid, text.lines().filter_map(parse_call).collect()))
        .collect();
    let mut seen: Vec<Call> = tracer.lines().filter_map(parse_call).collect();
    // Only the mmaps of perf events and of the ring buffer map: the others are
    // the memory allocator's and the loader's. Descriptors are reused (the ring
    // buffer's may have been a file the loader mapped), so only the mmaps after
    // the descriptor became a ring count.
    let mut ring_fds = BTreeSet::new();
    seen.retain(|c| {
        let is_ringbuf =
            || c.args[0] == "BPF_MAP_CREATE" && norm(&fields(&c.args[1])["map_type"]) == "RINGBUF";
        if c.name == "perf_event_open" || (c.name == "bpf" && is_ringbuf()) {
            ring_fds.insert(c.result.clone());
        }
        c.name != "mmap" || c.args.get(4).is_some_and(|fd| ring_fds.contains(fd))
    });
    let explained = explanation(&output).lines().filter_map(parse_call).collect();
    Traced { output, explained, seen, pid, others }
}

/// Every call strace saw, in order, is the explanation's call at the same place.
fn assert_accounted(t: &Traced) {
    let mut msg = String::new();
    for i in 0..t.seen.len().max(t.explained.len()) {
        let (s, o) = (t.seen.get(i), t.explained.get(i));
        let verdict = match (s, o) {
            (Some(s), Some(o)) => same_call(s, o).err(),
            _ => Some("missing".into()),
        };
        if let Some(v) = verdict {
            msg.push_str(&format!(
                "call {i}: {v}\n  strace:      {}\n  explanation: {}\n",
                s.map_or("<none>", |c| c.line.as_str()),
                o.map_or("<none>", |c| c.line.as_str())
            ));
        }
    }
    assert!(msg.is_empty(), "the explanation and strace disagree:\n{msg}");
}

fn count(calls: &[Call], name: &str, first_arg: Option<&str>) -> usize {
    calls.iter().filter(|c| c.name == name && first_arg.is_none_or(|a| c.args[0] == a)).count()
}

fn online_cpus() -> usize {
    trace::perf::online_cpus().unwrap().len()
}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).unwrap().unwrap() as usize
}

#[test]
fn every_call_strace_sees_is_explained() {
    every_call_explained(Rings::Buffer);
}

#[test]
fn every_call_strace_sees_is_explained_with_perf_rings() {
    every_call_explained(Rings::Perf);
}

/// Without --explain, the first uprobe registration (see src/bpf/link.rs) is made
/// by a thread of its own, not by the thread that reads the ELF files and loads
/// the programs: the asking program's link to the memfd, which succeeds.
#[test]
fn the_first_registration_is_made_on_a_thread_of_its_own() {
    if !Rings::Buffer.links() {
        eprintln!("skipped: this kernel attaches uprobes with perf events (no first registration)");
        return;
    }
    let dir = build_file_io("first-registration");
    let t = under_strace(&["-u", "native", "./file-io"], &dir, Rings::Buffer);
    assert!(t.output.status.success(), "{}", explanation(&t.output));
    assert_eq!(stdout_lines(&t.output), ["> native", "< native"]);
    let asked = |calls: &[Call]| {
        calls
            .iter()
            .find(|c| {
                c.args[0] == "BPF_PROG_LOAD" && fields(&c.args[1])["prog_name"] == "\"uprobe_link_ask\""
            })
            .map(|c| c.result.clone())
    };
    assert_eq!(asked(&t.seen), None, "the main thread asked:\n{:#?}", t.seen);
    let (tid, calls) = t
        .others
        .iter()
        .find(|(_, calls)| asked(calls).is_some())
        .unwrap_or_else(|| panic!("no thread loaded uprobe_link_ask: {:?}", t.others));
    let prog = asked(calls).unwrap();
    let links: Vec<&Call> = calls.iter().filter(|c| c.args[0] == "BPF_LINK_CREATE").collect();
    // Two refused (the questions), then the registration with the same program.
    assert_eq!(links.len(), 3, "thread {tid}: {links:#?}");
    assert!(links.iter().all(|c| fields(&c.args[1])["link_create.prog_fd"] == prog), "{links:#?}");
    assert_eq!(
        links.iter().map(|c| !c.result.starts_with("-1")).collect::<Vec<_>>(),
        [false, false, true],
        "thread {tid}: {links:#?}"
    );
}

fn every_call_explained(rings: Rings) {
    let dir = build_file_io("explain-strace");
    let t = under_strace(&["--explain", "./file-io"], &dir, rings);
    assert!(t.output.status.success(), "{}", explanation(&t.output));
    assert_accounted(&t);
    // Not vacuous: the lab's probes, each loaded, attached and enabled.
    let probes = if has_kprobes() { 14 } else { 10 };
    let c = &t.explained;
    let maps: BTreeSet<String> = c
        .iter()
        .filter(|x| x.name == "bpf" && x.args[0] == "BPF_MAP_CREATE")
        .map(|x| fields(&x.args[1])["map_name"].clone())
        .collect();
    assert_eq!(
        maps,
        ["\"depth\"", "\"dropped\"", "\"events\"", "\"pending\"", "\"tgids\""].map(String::from).into()
    );
    // The uprobes: native, with_syscall, with_asm and libc's open, entry and return.
    // With links they are BPF_LINK_CREATEs, after a question to the kernel (one
    // program, two links refused) and the first registration (that program linked
    // to an empty memfd, then closed): the three functions' entries share one
    // program and one link (each offset's cookie is its probe's id), so do their
    // returns, and libc's open has one for each. Otherwise they are perf events,
    // one program each, opened then given their program and enabled by two ioctls.
    let (uprobes, links) = (8, rings.links());
    let uprobe_programs = if links { 4 } else { uprobes };
    let events_opened = if links { probes - uprobes } else { probes };
    let (asked_loads, asked_links) = if links { (1, 2) } else { (0, 0) };
    assert_eq!(count(c, "bpf", Some("BPF_PROG_LOAD")), probes - uprobes + uprobe_programs + asked_loads);
    let link_creates: Vec<&Call> =
        c.iter().filter(|x| x.name == "bpf" && x.args[0] == "BPF_LINK_CREATE").collect();
    let first = usize::from(links);
    assert_eq!(link_creates.len(), if links { uprobe_programs + asked_links + first } else { 0 });
    assert_eq!(link_creates.iter().filter(|x| x.result.starts_with("-1")).count(), asked_links);
    if links {
        // The functions' entries and their returns: one link each, at the three
        // offsets readelf gives, with the probe ids as cookies (the plan numbers
        // entry and return of each function in turn: 0, 1 for native, ...).
        let exe = std::fs::canonicalize(dir.join("file-io")).unwrap();
        let (sh_addr, sh_offset) = section(&exe, ".text");
        let offsets: Vec<String> = ["native", "with_syscall", "with_asm"]
            .iter()
            .map(|f| format!("{:#x}", symbol(&exe, f).0 - sh_addr + sh_offset))
            .collect();
        let offsets = format!("[{}]", offsets.join(", "));
        for (flags, cookies) in [("0", "[0, 2, 4]"), ("BPF_F_UPROBE_MULTI_RETURN", "[1, 3, 5]")] {
            let shared = link_creates.iter().find(|x| {
                let f = fields(&x.args[1]);
                f["link_create.uprobe_multi.flags"] == flags && f["link_create.uprobe_multi.cnt"] == "3"
            });
            let f = fields(&shared.unwrap_or_else(|| panic!("no link of 3 with flags {flags}")).args[1]);
            assert_eq!(
                (
                    f["link_create.uprobe_multi.offsets"].as_str(),
                    f["link_create.uprobe_multi.cookies"].as_str()
                ),
                (offsets.as_str(), cookies),
                "flags {flags}"
            );
        }
    }
    if links {
        // The first registration: the asking program (the first one loaded) at
        // offset 0 of a /proc/self/fd path, for trace's own pid, before any probe's.
        let asking = c.iter().find(|x| x.args[0] == "BPF_PROG_LOAD").unwrap();
        let f: BTreeMap<String, String> = fields(&link_creates[asked_links].args[1])
            .into_iter()
            .map(|(k, v)| {
                (k.trim_start_matches("link_create.").trim_start_matches("uprobe_multi.").to_string(), v)
            })
            .collect();
        let tracer = t.pid.to_string();
        assert_eq!(
            (f["prog_fd"].as_str(), f["offsets"].as_str(), f["cnt"].as_str(), f["pid"].as_str()),
            (asking.result.as_str(), "[0x0]", "1", tracer.as_str()),
            "{}",
            link_creates[asked_links].line
        );
        assert!(f["path"].starts_with("\"/proc/self/fd/"), "{}", link_creates[asked_links].line);
        assert!(!link_creates[asked_links].result.starts_with("-1"), "{}", link_creates[asked_links].line);
        let err = explanation(&t.output);
        assert!(err.contains("# made and closed"), "{err}");
    }
    let ioctls = |request: &str| c.iter().filter(|x| x.name == "ioctl" && x.args[1] == request).count();
    let (set, enable) = (ioctls("PERF_EVENT_IOC_SET_BPF"), ioctls("PERF_EVENT_IOC_ENABLE"));
    assert_eq!((count(c, "ioctl", None), set, enable), (2 * events_opened, events_opened, events_opened));
    let events =
        c.iter().find(|x| x.args[0] == "BPF_MAP_CREATE" && x.line.contains("map_name=\"events\"")).unwrap();
    let events_map = fields(&events.args[1]);
    match rings {
        Rings::Perf => {
            assert_eq!(norm(&events_map["map_type"]), "PERF_EVENT_ARRAY");
            assert_eq!(count(c, "perf_event_open", None), events_opened + online_cpus());
            assert_eq!(count(c, "mmap", None), online_cpus());
        }
        Rings::Buffer => {
            // One ring for all CPUs: the default 256 pages per CPU, rounded up
            // to a power of two; no perf event of its own.
            let page = page_size();
            let size = (256 * page * online_cpus()).next_power_of_two();
            assert_eq!(norm(&events_map["map_type"]), "RINGBUF");
            assert_eq!((events_map["key_size"].as_str(), events_map["value_size"].as_str()), ("0", "0"));
            assert_eq!(int(&events_map["max_entries"]), Some(size as i128));
            assert_eq!(count(c, "perf_event_open", None), events_opened);
            let mmaps: Vec<Vec<String>> =
                c.iter().filter(|x| x.name == "mmap").map(|x| x.args.clone()).collect();
            let fd = events.result.clone();
            let want = |len: usize, prot: &str, offset: &str| -> Vec<String> {
                ["NULL", &len.to_string(), prot, "MAP_SHARED", &fd, offset].map(String::from).to_vec()
            };
            assert_eq!(
                mmaps,
                vec![
                    want(page, "PROT_READ|PROT_WRITE", "0"),
                    want(page + 2 * size, "PROT_READ", &format!("{page:#x}"))
                ]
            );
        }
    }
    // The trace itself is unchanged by --explain, and comes after the explanation.
    assert_lines(&stdout_lines(&t.output), &lab_expected(has_kprobes()), "trace --explain ./file-io");
    let err = explanation(&t.output);
    let attaching = err.lines().position(|l| l.starts_with("Attaching")).expect("Attaching line");
    // After it only the `dropped` counters are read, once the command is gone.
    let dropped_fd = c
        .iter()
        .find(|x| x.args[0] == "BPF_MAP_CREATE" && x.line.contains("map_name=\"dropped\""))
        .map(|x| x.result.clone())
        .unwrap();
    let after: Vec<Call> = err.lines().skip(attaching + 1).filter_map(parse_call).collect();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(
        (after[0].args[0].as_str(), fields(&after[0].args[1])["map_fd"].as_str()),
        ("BPF_MAP_LOOKUP_ELEM", dropped_fd.as_str())
    );
}

#[test]
fn a_failing_call_is_explained_with_its_errno() {
    let dir = build_file_io("explain-fail");
    // A ring of 2^20 pages (4 GiB) per CPU: the kernel refuses the mmap.
    let args = ["--explain", "--ring-pages", "1048576", "-s", "open", "./file-io"];
    let t = under_strace(&args, &dir, Rings::Perf);
    assert_eq!(t.output.status.code(), Some(5), "{}", explanation(&t.output));
    assert_accounted(&t);
    let last = t.explained.last().expect("calls explained");
    assert_eq!(last.name, "mmap", "{}", last.line);
    assert_eq!(last.args[1], "4294971392");
    assert_eq!(last.result, "-1 ENOMEM (Cannot allocate memory)");
    // The ring buffer would hold all CPUs' 4 GiB: more than max_entries (a u32)
    // can say, so trace refuses before asking the kernel.
    let t = under_strace(&args, &dir, Rings::Buffer);
    assert_eq!(t.output.status.code(), Some(5), "{}", explanation(&t.output));
    assert_accounted(&t);
    assert_eq!(count(&t.explained, "bpf", Some("BPF_MAP_CREATE")), 0);
    let last = explanation(&t.output).lines().last().unwrap_or_default().to_string();
    assert_eq!(
        last,
        format!(
            "trace: attaching the ring buffer: --ring-pages 1048576 on {} CPUs makes a ring buffer over 2 GiB, \
             the most a BPF ring buffer holds: use fewer pages",
            online_cpus()
        )
    );
}

// ---- Where each probe goes -----------------------------------------------------------

/// `readelf -sW` / `-SW` of a file: (st_value, size) of a function, (sh_addr, sh_offset) of a section.
fn readelf(args: &[&str], file: &Path) -> String {
    let o = Command::new("readelf").args(args).arg(file).output().expect("readelf runs");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn symbol(file: &Path, name: &str) -> (u64, u64) {
    let text = readelf(&["-sW"], file);
    let line = text
        .lines()
        .find(|l| l.split_whitespace().nth(7) == Some(name) && l.contains(" FUNC "))
        .unwrap_or_else(|| panic!("no {name} in readelf -s {}", file.display()));
    let w: Vec<&str> = line.split_whitespace().collect();
    (u64::from_str_radix(w[1], 16).unwrap(), w[2].parse().unwrap())
}

fn section(file: &Path, name: &str) -> (u64, u64) {
    let text = readelf(&["-SW"], file);
    let line = text.lines().find(|l| l.split_whitespace().any(|w| w == name)).unwrap();
    let w: Vec<&str> = line.split(']').nth(1).unwrap().split_whitespace().collect();
    (u64::from_str_radix(w[2], 16).unwrap(), u64::from_str_radix(w[3], 16).unwrap())
}

#[test]
fn attach_points_carry_the_numbers_of_elf_tracefs_and_kallsyms() {
    let dir = build_file_io("explain-where");
    let out = trace(&["--explain", "./file-io"], &dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = explanation(&out);
    let lines: Vec<&str> = err.lines().collect();
    let has = |want: &str| assert!(lines.contains(&want), "missing line:\n{want}\nin:\n{err}");

    // uprobe: native in file-io, numbers from readelf.
    let exe = std::fs::canonicalize(dir.join("file-io")).unwrap();
    let (value, size) = symbol(&exe, "native");
    let (sh_addr, sh_offset) = section(&exe, ".text");
    let offset = value - sh_addr + sh_offset;
    has(&format!("#   symbol native: st_value {value:#x}, {size} bytes, in section .text"));
    has(&format!(
        "#   file offset: st_value {value:#x} - sh_addr {sh_addr:#x} + sh_offset {sh_offset:#x} (.text) = {offset:#x}"
    ));
    // Where the kernel has uprobe links, a link gets the offset; elsewhere, a perf event.
    let open_native =
        format!("config=0 (entry), flags=DISABLED, config1=\"{}\", config2={offset:#x}}}", exe.display());
    // A link places the three functions' entries at once, native's first.
    let link_native = format!("uprobe_multi={{path=\"{}\", offsets=[{offset:#x}, ", exe.display());
    assert!(
        lines.iter().any(|l| (l.starts_with("perf_event_open(") && l.contains(&open_native))
            || (l.starts_with("bpf(BPF_LINK_CREATE, ") && l.contains(&link_native))),
        "no perf_event_open with {open_native} nor BPF_LINK_CREATE with {link_native}:\n{err}"
    );

    // tracepoint: id and field offsets from tracefs.
    let events = Path::new("/sys/kernel/tracing/events/syscalls");
    let id = std::fs::read_to_string(events.join("sys_enter_open/id")).unwrap();
    has(&format!(
        "#   id {}: the `ID:` line of {}; perf_event_open gets it as config",
        id.trim(),
        events.join("sys_enter_open/format").display()
    ));
    let format = std::fs::read_to_string(events.join("sys_enter_open/format")).unwrap();
    let field = |name: &str| {
        let l = format.lines().find(|l| l.contains(&format!(" {name};"))).unwrap();
        let num = |key: &str| l.split(key).nth(1).unwrap().split(';').next().unwrap().to_string();
        format!("{name} at {} ({} bytes", num("offset:"), num("size:"))
    };
    has(&format!(
        "#   fields the program reads (offset, size from that file): {}, a user string), {}), {})",
        field("filename"),
        field("flags"),
        field("mode")
    ));

    // kprobe: the address in /proc/kallsyms (skipped where there are no kprobes).
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap();
    let addr = kallsyms
        .lines()
        .find(|l| l.ends_with(" vfs_open") && (l.contains(" T ") || l.contains(" t ")))
        .map(|l| u64::from_str_radix(l.split_whitespace().next().unwrap(), 16).unwrap())
        .expect("vfs_open in /proc/kallsyms");
    let want = if has_kprobes() {
        format!("kprobe:vfs_open: /proc/kallsyms has vfs_open at {addr:#x}")
    } else {
        format!(
            "# vfs_open: /proc/kallsyms has it at {addr:#x}, but it is skipped: this kernel has no kprobes"
        )
    };
    assert!(err.contains(&want), "missing {want:?} in:\n{err}");
}

// ---- The programs, against the kernel's copy -----------------------------------------

/// A program the explanation showed and the kernel loaded.
#[derive(Debug)]
struct Shown {
    title: String,
    prog_type: String,
    /// `(slot, code, text)` of each instruction of the listing.
    insns: Vec<(usize, String, String)>,
    comments: Vec<String>,
    id: u32,
}

/// `  12: (bf) r1 = r6  ; -> out` -> (12, "bf", "r1 = r6").
fn insn_line(l: &str) -> Option<(usize, String, String)> {
    let (slot, rest) = l.trim_start().split_once(": (")?;
    let (code, text) = rest.split_once(") ")?;
    let text = text.split("  ; -> ").next().unwrap_or(text);
    Some((slot.parse().ok()?, code.to_string(), text.to_string()))
}

/// A map the explanation showed created.
#[derive(Clone, Debug)]
struct ShownMap {
    name: String,
    id: u32,
    map_type: String,
    max_entries: u32,
}

/// The programs, and map fd -> map, from an explanation.
fn shown_programs(lines: &[String]) -> (Vec<Shown>, HashMap<String, ShownMap>) {
    let (mut progs, mut maps, mut created) = (Vec::new(), HashMap::new(), HashMap::new());
    let mut cur: Option<Shown> = None;
    for l in lines {
        if let Some(title) = l.strip_prefix("# program of ") {
            cur = Some(Shown {
                title: title.into(),
                prog_type: String::new(),
                insns: vec![],
                comments: vec![],
                id: 0,
            });
        } else if let (Some(body), Some(p)) = (l.strip_prefix("    "), cur.as_mut()) {
            match insn_line(body) {
                Some(i) => p.insns.push(i),
                None => p.comments.push(body.to_string()),
            }
        } else if let Some(c) = parse_call(l) {
            let f = c.args.get(1).map(|a| fields(a)).unwrap_or_default();
            match c.args[0].as_str() {
                // The program that asks the kernel about uprobe links is no probe's.
                "BPF_PROG_LOAD" if f["prog_name"] == "\"uprobe_link_ask\"" => {}
                "BPF_PROG_LOAD" => cur.as_mut().unwrap().prog_type = f["prog_type"].clone(),
                "BPF_MAP_CREATE" => {
                    let m = ShownMap {
                        name: f["map_name"].trim_matches('"').to_string(),
                        id: 0,
                        map_type: f["map_type"].clone(),
                        max_entries: f["max_entries"].parse().unwrap(),
                    };
                    created.insert(c.result.clone(), m);
                }
                _ => {}
            }
        } else if let Some(rest) = l.strip_prefix("# loaded as prog id ") {
            let mut p = cur.take().expect("a program before its load");
            p.id = rest.split_whitespace().next().unwrap().parse().unwrap();
            progs.push(p);
        } else if let Some(rest) = l.strip_prefix("# map `") {
            // # map `events` (fd 3) has id 223: ...
            let (name, rest) = rest.split_once("` (fd ").unwrap();
            let (fd, rest) = rest.split_once(") has id ").unwrap();
            let id: u32 = rest.split(':').next().unwrap().parse().unwrap();
            let mut m: ShownMap =
                created.get(fd).cloned().unwrap_or_else(|| panic!("map fd {fd} not created"));
            assert_eq!(m.name, name, "map fd {fd}");
            m.id = id;
            maps.insert(fd.to_string(), m);
        }
    }
    (progs, maps)
}

fn bpftool(args: &[&str]) -> String {
    let o = Command::new("bpftool").args(args).output().expect("bpftool runs (Debian's bpftool package)");
    assert!(o.status.success(), "bpftool {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The kernel's own rewrites of a loaded program, the only differences allowed
/// between our listing and `bpftool prog dump xlated`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rewrite {
    /// `r1 = map[fd:3]` -> `r1 = map[id:231]`: the verifier replaces the map fd in
    /// an ld_imm64 with the map's address; bpftool prints the map's id.
    MapFdToId,
    /// `call bpf_ktime_get_ns#5` -> `call bpf_ktime_get_ns#274736`: the helper id
    /// becomes the helper's address relative to __bpf_call_base (same name).
    HelperAddress,
    /// `call bpf_map_lookup_elem#1` on a hash map becomes three instructions:
    /// `call __htab_map_lookup_elem#N; if r0 == 0x0 goto pc+1; r0 += K` (the map's
    /// map_gen_lookup, K = where the value starts in an element). Jumps over it
    /// grow by 2.
    HashLookupInlined,
    /// `call bpf_get_attach_cookie#174` -> `call bpf_get_attach_cookie_uprobe_multi#N`:
    /// the helper has one implementation per kind of attachment, and the
    /// verifier picks the uprobe link's for a program loaded for one.
    AttachCookieOfLink,
    /// `call bpf_map_lookup_elem#1` on an LRU hash map (`depth`) becomes six: the
    /// hash lookup's call, then `if r0 == 0x0 goto pc+4`, and the element's
    /// `ref` byte set when it is clear (`r1 = *(u8 *)(r0 +R); if r1 != 0x0 goto
    /// pc+1; *(u8 *)(r0 +R) = 1`: what keeps it from eviction), then `r0 += K`
    /// (htab_lru_map_gen_lookup). Jumps over it grow by 5.
    LruHashLookupInlined,
    /// `call bpf_map_lookup_elem#1` on a per-CPU array becomes nine instructions
    /// (the map's map_gen_lookup, Linux 6.10+): `r1 += K` (to the array's per-CPU
    /// pointers), load the index, `if r0 >= MAX_ENTRIES goto` the NULL result,
    /// index the pointers, load one, resolve it for this CPU (`r0 = r0` to
    /// bpftool, a mov the kernel marks BPF_ADDR_PERCPU), `goto pc+1; r0 = 0`.
    /// Older kernels call `percpu_array_map_lookup_elem` directly instead.
    PercpuArrayLookupInlined,
    /// `call bpf_map_update_elem#2` / `bpf_map_delete_elem#3` -> direct calls of
    /// the hash map's own `htab_map_update_elem` / `htab_map_delete_elem`
    /// (`htab_lru_map_update_elem` for the LRU hash).
    MapOpsDirectCall,
    /// A per-CPU array lookup as a direct call of the map's own
    /// `percpu_array_map_lookup_elem` (kernels that do not inline it).
    PercpuArrayLookupCall,
    /// In a TRACEPOINT program `bpf_perf_event_output` is the tracepoint variant,
    /// `bpf_perf_event_output_tp`.
    TracepointOutput,
}

/// `(slot, code, text)` of each line of a `bpftool prog dump xlated`.
fn xlated(id: u32) -> Vec<(usize, String, String)> {
    let text = bpftool(&["prog", "dump", "xlated", "id", &id.to_string()]);
    text.lines().filter_map(insn_line).collect()
}

/// `goto pc+5` / `if r0 == 0x0 goto pc-3` -> (the text before `pc`, 5 / -3).
fn jump(text: &str) -> Option<(&str, i64)> {
    let (head, off) = text.rsplit_once("goto pc")?;
    Some((head, off.parse().ok()?))
}

/// Compares a listing with the kernel's copy; returns the rewrites it needed.
/// The nine instructions a per-CPU array lookup becomes ([`Rewrite::PercpuArrayLookupInlined`]).
fn percpu_lookup_shape(kernel: &[(usize, String, String)], j: usize, max_entries: u32) -> bool {
    let want: [(&str, &str); 9] = [
        ("07", "r1 += "),
        ("61", "r0 = *(u32 *)(r2 +0)"),
        ("35", &format!("if r0 >= {max_entries:#x} goto pc+5")),
        ("67", "r0 <<= 3"),
        ("0f", "r0 += r1"),
        ("79", "r0 = *(u64 *)(r0 +0)"),
        ("bf", "r0 = "),
        ("05", "goto pc+1"),
        ("b7", "r0 = 0"),
    ];
    want.iter().enumerate().all(|(i, (code, text))| {
        kernel.get(j + i).is_some_and(|(_, c, t)| match i {
            0 => c == code && t.strip_prefix(text).and_then(|k| k.parse::<i32>().ok()).is_some_and(|k| k > 0),
            6 => c == code && (t == "r0 = r0" || t == "r0 = &(void __percpu *)(r0)"),
            _ => c == code && t == text,
        })
    })
}

/// The six instructions an LRU hash lookup becomes ([`Rewrite::LruHashLookupInlined`]),
/// from the call at `j`.
fn lru_lookup_shape(kernel: &[(usize, String, String)], j: usize) -> bool {
    let text = |i: usize| kernel.get(j + i).map(|(_, c, t)| (c.as_str(), t.as_str()));
    let offset = |t: &str, prefix: &str| t.strip_prefix(prefix).and_then(|k| k.parse::<i32>().ok());
    let Some(("71", load)) = text(2) else { return false };
    let Some(r) = load.strip_prefix("r1 = *(u8 *)(r0 +").and_then(|k| k.strip_suffix(')')) else {
        return false;
    };
    text(1) == Some(("15", "if r0 == 0x0 goto pc+4"))
        && text(3) == Some(("55", "if r1 != 0x0 goto pc+1"))
        && text(4).is_some_and(|(c, t)| c == "72" && t == format!("*(u8 *)(r0 +{r}) = 1"))
        && text(5).is_some_and(|(c, t)| c == "07" && offset(t, "r0 += ").is_some_and(|k| k > 0))
}

fn compare(
    p: &Shown,
    kernel: &[(usize, String, String)],
    maps: &HashMap<String, ShownMap>,
) -> Result<BTreeSet<Rewrite>, String> {
    let mut used = BTreeSet::new();
    let mut r1_map: Option<&ShownMap> = None; // the map the next helper call gets
    let mut at: HashMap<usize, usize> = HashMap::new(); // our slot -> kernel slot
    let mut jumps = Vec::new();
    let mut j = 0;
    let next = |j: usize| kernel.get(j).ok_or_else(|| format!("the kernel's copy ends at line {j}"));
    for (slot, code, text) in &p.insns {
        let (kslot, kcode, ktext) = next(j)?;
        at.insert(*slot, *kslot);
        let bad = || format!("slot {slot}: ours ({code}) {text}, the kernel's ({kcode}) {ktext}");
        let call = text.strip_prefix("call ").map(|c| c.split('#').next().unwrap());
        let kcall = ktext.strip_prefix("call ").map(|c| c.split('#').next().unwrap());
        let map = r1_map;
        if text.starts_with("r1 ") || call.is_some() {
            r1_map = None; // r1 written, or clobbered by the call
        }
        match (call, kcall) {
            (Some("bpf_map_lookup_elem"), _) if map.is_some_and(|m| m.map_type == "PERCPU_ARRAY") => {
                let m = map.unwrap();
                if kcall == Some("percpu_array_map_lookup_elem") {
                    used.insert(Rewrite::PercpuArrayLookupCall);
                } else if percpu_lookup_shape(kernel, j, m.max_entries) {
                    used.insert(Rewrite::PercpuArrayLookupInlined);
                    j += 9;
                    continue;
                } else {
                    return Err(bad());
                }
            }
            (Some("bpf_map_lookup_elem"), Some("__htab_map_lookup_elem"))
                if map.is_some_and(|m| m.map_type == "HASH") =>
            {
                let (_, c1, t1) = next(j + 1)?;
                let (_, c2, t2) = next(j + 2)?;
                let k = t2.strip_prefix("r0 += ").and_then(|k| k.parse::<i32>().ok());
                if (c1.as_str(), t1.as_str(), c2.as_str()) != ("15", "if r0 == 0x0 goto pc+1", "07")
                    || k.is_none_or(|k| k <= 0)
                {
                    return Err(bad());
                }
                used.insert(Rewrite::HashLookupInlined);
                j += 3;
                continue;
            }
            (Some("bpf_map_lookup_elem"), Some("__htab_map_lookup_elem"))
                if map.is_some_and(|m| m.map_type == "LRU_HASH") =>
            {
                if !lru_lookup_shape(kernel, j) {
                    return Err(bad());
                }
                used.insert(Rewrite::LruHashLookupInlined);
                j += 6;
                continue;
            }
            (Some("bpf_get_attach_cookie"), Some("bpf_get_attach_cookie_uprobe_multi"))
                if p.prog_type == "KPROBE" =>
            {
                used.insert(Rewrite::AttachCookieOfLink);
            }
            (Some("bpf_map_update_elem"), Some("htab_map_update_elem"))
            | (Some("bpf_map_update_elem"), Some("htab_lru_map_update_elem"))
            | (Some("bpf_map_delete_elem"), Some("htab_map_delete_elem")) => {
                used.insert(Rewrite::MapOpsDirectCall);
            }
            (Some("bpf_perf_event_output"), Some("bpf_perf_event_output_tp"))
                if p.prog_type == "TRACEPOINT" =>
            {
                used.insert(Rewrite::TracepointOutput);
            }
            (Some(a), Some(b)) if a == b && code == kcode => {
                if text != ktext {
                    used.insert(Rewrite::HelperAddress);
                }
            }
            (Some(_), _) | (_, Some(_)) => return Err(bad()),
            (None, None) => {
                if let Some((reg, fd)) = text.split_once(" = map[fd:") {
                    let fd = fd.trim_end_matches(']');
                    let m = maps.get(fd).ok_or_else(|| format!("no id for map fd {fd}"))?;
                    if *ktext != format!("{reg} = map[id:{}]", m.id) || code != kcode {
                        return Err(bad());
                    }
                    if reg == "r1" {
                        r1_map = Some(m);
                    }
                    used.insert(Rewrite::MapFdToId);
                } else if let (Some((h, off)), Some((kh, koff))) = (jump(text), jump(ktext)) {
                    if h != kh || code != kcode {
                        return Err(bad());
                    }
                    jumps.push((
                        *slot,
                        (*slot as i64 + 1 + off) as usize,
                        (*kslot as i64 + 1 + koff) as usize,
                    ));
                } else if (code, text) != (kcode, ktext) {
                    return Err(bad());
                }
            }
        }
        j += 1;
    }
    if j != kernel.len() {
        return Err(format!("the kernel's copy has {} more lines", kernel.len() - j));
    }
    for (slot, ours, theirs) in jumps {
        if at.get(&ours) != Some(&theirs) {
            return Err(format!(
                "the jump at slot {slot} goes to our slot {ours}, the kernel's to its slot {theirs}"
            ));
        }
    }
    Ok(used)
}

/// A tracer running in the background, its stderr read line by line; killed
/// when dropped unfinished (a failed assertion must not leave a tracer, and its
/// system-wide probes, running).
struct Background {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Background {
    fn start(args: &[&str], dir: &Path, rings: Rings) -> Background {
        let mut child = trace_command()
            .envs(rings.env())
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("trace starts");
        let err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Background { child: Some(child), lines, seen: Vec::new() }
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("the tracer is running")
    }

    /// Waits for the tracer to end; its stdout and status.
    fn finish(mut self) -> std::process::Output {
        self.child.take().expect("the tracer is running").wait_with_output().unwrap()
    }

    fn interrupt(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child().id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    }

    /// Reads stderr until the `Attaching N probes...` line.
    fn wait_attached(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.seen.last().is_some_and(|l| l.starts_with("Attaching")) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(_) => panic!("trace did not attach; stderr so far:\n{}", self.seen.join("\n")),
            }
        }
    }
}

/// Loads programs by running the tracer, then checks each listing against bpftool.
fn check_against_bpftool(tracer: &mut Background, rings: Rings) -> Vec<Shown> {
    tracer.wait_attached();
    let (progs, maps) = shown_programs(&tracer.seen);
    assert!(!progs.is_empty(), "no programs in:\n{}", tracer.seen.join("\n"));
    let mut rewrites = BTreeSet::new();
    for p in &progs {
        // The kernel's maps of this program are ours, by id and by name.
        let show = bpftool(&["prog", "show", "id", &p.id.to_string()]);
        let ids: BTreeSet<u32> = show
            .split("map_ids ")
            .nth(1)
            .map(|s| s.split_whitespace().next().unwrap().split(',').map(|i| i.parse().unwrap()).collect())
            .unwrap_or_default();
        let referenced: BTreeSet<u32> = p
            .insns
            .iter()
            .filter_map(|(_, _, t)| t.split("map[fd:").nth(1))
            .map(|fd| maps[fd.trim_end_matches(']')].id)
            .collect();
        assert_eq!(ids, referenced, "maps of {}", p.title);
        for id in ids {
            let name = maps.values().find(|m| m.id == id).map(|m| m.name.clone()).unwrap();
            let shown = bpftool(&["map", "show", "id", &id.to_string()]);
            assert!(shown.contains(&format!(" name {name} ")), "map {id} is not {name}: {shown}");
        }
        let kernel = xlated(p.id);
        match compare(p, &kernel, &maps) {
            Ok(used) => rewrites.extend(used),
            Err(e) => {
                let ours: Vec<String> = p.insns.iter().map(|(s, c, t)| format!("{s:4}: ({c}) {t}")).collect();
                let theirs: Vec<String> =
                    kernel.iter().map(|(s, c, t)| format!("{s:4}: ({c}) {t}")).collect();
                panic!("{}: {e}\nours:\n{}\nbpftool:\n{}", p.title, ours.join("\n"), theirs.join("\n"));
            }
        }
        // The listing names its blocks: a hidden program registers, the others
        // record and output.
        let hidden = p.comments.iter().any(|c| c.contains("nothing to record"));
        let blocks: &[&str] =
            if hidden { &["; who is running?"] } else { &["; who is running?", "; record:", "; output:"] };
        for block in blocks {
            assert!(
                p.comments.iter().any(|c| c.starts_with(block)),
                "{}: no {block} in {:?}",
                p.title,
                p.comments
            );
        }
    }
    // Each rewrite the test allows was needed somewhere: none is dead weight
    // (the per-CPU lookup takes one of its two forms, by kernel version).
    rewrites.remove(&Rewrite::PercpuArrayLookupCall);
    rewrites.insert(Rewrite::PercpuArrayLookupInlined);
    let mut all: BTreeSet<Rewrite> = [
        Rewrite::MapFdToId,
        Rewrite::HelperAddress,
        Rewrite::HashLookupInlined,
        Rewrite::PercpuArrayLookupInlined,
        Rewrite::MapOpsDirectCall,
    ]
    .into();
    // Programs of uprobe links read their probe ids from the cookies.
    if progs.iter().any(|p| p.insns.iter().any(|(_, _, t)| t.starts_with("call bpf_get_attach_cookie#"))) {
        all.insert(Rewrite::AttachCookieOfLink);
    }
    // The LRU hash is `depth`, which only program functions' probes count in.
    let depth = maps.iter().find(|(_, m)| m.name == "depth").map(|(fd, _)| format!("map[fd:{fd}]"));
    if progs
        .iter()
        .any(|p| p.insns.iter().any(|(_, _, t)| depth.as_ref().is_some_and(|d| t.ends_with(d.as_str()))))
    {
        all.insert(Rewrite::LruHashLookupInlined);
    }
    // bpf_ringbuf_output is the same helper in every program type.
    if rings == Rings::Perf {
        all.insert(Rewrite::TracepointOutput);
    }
    assert_eq!(rewrites, all, "rewrites met");
    progs
}

#[test]
fn listings_match_the_kernels_copy_of_each_program() {
    listings_match(Rings::Buffer);
}

#[test]
fn listings_match_the_kernels_copy_with_perf_rings() {
    listings_match(Rings::Perf);
}

fn listings_match(rings: Rings) {
    let bin = build_prog("waiter", &[]);
    let dir = bin.parent().unwrap();
    // waiter blocks reading stdin: the programs stay loaded until we close it.
    let args = ["--explain", "-u", "work", "-L", "open", "-s", "open,close", "./waiter"];
    let mut t = Background::start(&args, dir, rings);
    let progs = check_against_bpftool(&mut t, rings);
    assert_eq!(progs.len(), 8);
    let all_comments: Vec<&String> = progs.iter().flat_map(|p| &p.comments).collect();
    for block in ["; filter:", "; string:", "; depth:"] {
        assert!(all_comments.iter().any(|c| c.starts_with(block)), "no {block} block in any program");
    }
    drop(t.child().stdin.take());
    let out = t.finish();
    assert!(out.status.success());
    let want = [
        "> work",
        ".. enter open(/dev/null)",
        ".. exit open",
        ".... Enter close() systemcall, arguments: fd=3",
        ".... Exit close() systemcall",
        ".... Enter open() systemcall, argument is /dev/null",
        ".... Exit open() systemcall",
        ".... Enter close() systemcall, arguments: fd=3",
        ".... Exit close() systemcall",
        "< work",
    ];
    let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    assert_lines(&stdout_lines(&out), &want, "trace --explain ./waiter");
}

#[test]
fn listings_of_watch_mode_match_the_kernels_copy() {
    let bin = build_prog("waiter", &[]);
    let dir = bin.parent().unwrap();
    // --watch adds the entry-point program and filters on the traced processes.
    let args = ["--explain", "--watch", "./waiter", "-L", "open", "-s", "close"];
    let mut t = Background::start(&args, dir, Rings::Buffer);
    let progs = check_against_bpftool(&mut t, Rings::Buffer);
    assert_eq!(progs.len(), 5);
    assert!(progs.iter().any(|p| p.comments.iter().any(|c| c.starts_with("; register this process"))));
    assert!(progs
        .iter()
        .any(|p| p.comments.iter().any(|c| c.starts_with("; filter: only the traced processes"))));
    t.interrupt();
    let out = t.finish();
    assert!(out.status.success(), "{:?}", out.status);
}

/// `--watch` with system calls only: its one uprobe is the hidden one at the
/// program's entry, and it goes through a link too where the kernel has them.
#[test]
fn watch_modes_hidden_entry_probe_is_a_link_where_the_kernel_has_them() {
    let bin = build_prog("waiter", &[]);
    let mut t = Background::start(
        &["--explain", "--watch", "./waiter", "-s", "close"],
        bin.parent().unwrap(),
        Rings::Buffer,
    );
    t.wait_attached();
    let path = format!("path={}", explain_quote(&std::fs::canonicalize(&bin).unwrap()));
    let made = |prefix: &str, needle: &str| {
        t.seen.iter().filter(|l| l.starts_with(prefix) && l.contains(needle) && !l.contains(" = -1 ")).count()
    };
    let config1 = path.replace("path=", "config1=");
    let want = if Rings::Buffer.links() { (1, 0) } else { (0, 1) };
    assert_eq!(
        (made("bpf(BPF_LINK_CREATE, ", &path), made("perf_event_open(", &config1)),
        want,
        "links made, uprobe events opened for {path}:\n{}",
        t.seen.join("\n")
    );
    t.interrupt();
    let out = t.finish();
    assert!(out.status.success(), "{:?}", out.status);
}

/// A path as the explanation quotes it (printable ASCII here).
fn explain_quote(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// A script's explanation: the same account of every call (its map included,
/// and the reads of that map at the end), and the table of event ids naming
/// the calls of the script they come from.
#[test]
fn a_scripts_calls_and_event_ids_are_explained() {
    let dir = build_file_io("explain-script");
    std::fs::copy(repo().join("tests/fixtures/lab.bt"), dir.join("lab.bt")).unwrap();
    let t = under_strace(&["--explain", "lab.bt", "-c", "./file-io"], &dir, Rings::Buffer);
    assert!(t.output.status.success(), "{}", explanation(&t.output));
    assert_accounted(&t);
    let c = &t.explained;
    let script_map = c
        .iter()
        .find(|x| {
            x.name == "bpf"
                && x.args[0] == "BPF_MAP_CREATE"
                && fields(&x.args[1])["map_name"] == "\"AT_inside\""
        })
        .unwrap_or_else(|| panic!("no map for @inside: {}", explanation(&t.output)));
    assert_eq!(fields(&script_map.args[1])["map_type"], "HASH");
    // At the end, the map is listed to print it (it is empty: one GET_NEXT_KEY).
    assert_eq!(count(c, "bpf", Some("BPF_MAP_GET_NEXT_KEY")), 1);
    let text = explanation(&t.output);
    assert!(text.contains("# the script lab.bt: 14 blocks, "), "{text}");
    assert!(
        text.contains("#   event 0 (lab.bt:11:45, uprobe:./file-io:native): `printf(\"> native\\n\")`"),
        "{text}"
    );
    assert!(text.contains(", uprobe:libc:open): `printf(\".. enter open(%s)\\n\", str(arg0))`"), "{text}");
}

/// A program reads the clock only when the records need their time (`-T`, or
/// the per-CPU perf rings, merged by it), and the command name only where a
/// line shows it (the lab's ext4_file_open, a script's `comm`): each costs
/// 50-70 ns a program. Counted in the listings of real runs.
#[test]
fn programs_read_the_clock_and_the_command_name_only_when_shown() {
    let dir = build_file_io("explain-carry");
    let calls = |args: &[&str], perf_rings: bool| -> (usize, usize, usize) {
        let out = trace_command()
            .args(["--explain"])
            .args(args)
            .current_dir(&dir)
            .env("TRACE_PERF_RINGS", if perf_rings { "1" } else { "0" })
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let err = explanation(&out);
        let n = |what: &str| err.lines().filter(|l| l.contains(what)).count();
        (n("# program of "), n("call bpf_ktime_get_ns#"), n("call bpf_get_current_comm#"))
    };
    // -u native -s openat: four programs, none showing a time or a command.
    assert_eq!(calls(&["-u", "native", "-s", "openat", "./file-io"], false), (4, 0, 0));
    assert_eq!(calls(&["-T", "-u", "native", "-s", "openat", "./file-io"], false), (4, 4, 0));
    assert_eq!(calls(&["-u", "native", "-s", "openat", "./file-io"], true), (4, 4, 0));
    // A script: the predicate reads comm to compare it, the printf to show it;
    // exit()'s record carries neither.
    let script =
        "tracepoint:syscalls:sys_enter_openat /comm == \"file-io\"/ { printf(\"%s\\n\", comm); exit(); }";
    assert_eq!(calls(&["-e", script, "-c", "./file-io"], false), (1, 0, 2));
}
