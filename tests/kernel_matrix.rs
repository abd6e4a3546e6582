//! The kernel matrix: the tracer on Debian's stock kernels 5.10 (bullseye), 6.1
//! (bookworm) and 6.12 (trixie), which have kprobes (the project's machines do
//! not), booted under QEMU by tests/matrix/run-guest.sh.
//!
//! One guest boot per kernel runs every scenario of tests/matrix/kernel-matrix.sh
//! (the guest's run.sh) and sends each one's stdout, stderr and exit status back,
//! framed; this file then checks them:
//!
//! - the lab: `trace ./file-io` (PIE, static, non-PIE) prints the lab's output
//!   line for line, all 14 probes, kernel functions nested under the libc open
//!   and the open system call ([`lab_expected`] states the one difference from
//!   the lab's file: its author's buggy with_asm);
//! - `-a`: the exec and the dynamic loader's opens (ld.so.cache, libc.so.6)
//!   reach vfs_open before main, hidden by default and shown with `-a`; a run
//!   that also traces execve and openat names every file;
//! - `-k vfs_opn` and `-k exc_int3` (in kallsyms, not traceable) fail before
//!   anything attaches, and file-io never runs;
//! - RLIMIT_MEMLOCK is raised on 5.10 (which charges BPF memory to it) and left
//!   alone from 5.11;
//! - lost events: a burst into a one-page ring; shown + lost = generated;
//! - Ctrl-C on `trace --watch` with kprobes attached leaves no kprobe and no BPF
//!   program behind;
//! - the language: tests/fixtures/lab.bt (`trace lab.bt -c ./file-io`) prints
//!   the lab's lines, and the lab text's `kprobe:ext4_file_open { print(kstack());
//!   exit(); }` prints the stack from ext4_file_open to the system call entry;
//! - uprobes are attached with BPF links on 6.12, with perf events on 5.10 and 6.1.
//!
//! Needs root, qemu-system-x86, busybox-static, e2fsprogs, cpio, gcc, make,
//! binutils (strip) and, on the first run, network access to fetch the kernels
//! (see tests/matrix/README.md). `cargo test --test kernel_matrix -- --nocapture`
//! shows each kernel's release, probe count and timings.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Calls of hit() by tests/progs/burst.c: 2 events each.
const BURST_CALLS: u64 = 10_000;

/// BPF programs of the lab run under --watch: one per probe, where uprobes are
/// perf events. (No hidden entry-point probe: with program functions traced,
/// every other probe only counts inside them, so no process needs registering.)
const WATCH_PROGRAMS: u64 = 14;
/// The same with uprobe links: the three functions' entries share one program,
/// their returns another (each record's probe id is the link's cookie).
const WATCH_PROGRAMS_LINKED: u64 = WATCH_PROGRAMS - 4;

/// The kernel function used to prove the available_filter_functions check: it
/// is in kallsyms on every kernel of the matrix but noinstr (x86 int3 handler),
/// so not traceable.
const UNTRACEABLE: &str = "exc_int3";

/// The items the guest sent back, by name.
struct Items {
    suite: String,
    items: BTreeMap<String, String>,
}

impl Items {
    /// Item `name`; the test fails naming the missing item and what came back.
    fn get(&self, name: &str) -> &str {
        self.items.get(name).unwrap_or_else(|| {
            panic!("{}: the guest sent no item `{name}`; it sent {:?}", self.suite, self.items.keys())
        })
    }

    /// Item `name` without its trailing newline (a one-line fact or status).
    fn line(&self, name: &str) -> &str {
        let text = self.get(name);
        text.strip_suffix('\n')
            .filter(|l| !l.contains('\n'))
            .unwrap_or_else(|| panic!("{}: item `{name}` is not one line: {text:?}", self.suite))
    }

    /// The lines of item `name`.
    fn lines(&self, name: &str) -> Vec<String> {
        self.get(name).lines().map(str::to_string).collect()
    }
}

/// Splits run.sh's stdout into items: `@@ITEM name size@@\n`, exactly `size`
/// bytes, `\n@@END name@@\n`, one after another and nothing else.
fn parse_items(mut rest: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let mut items = BTreeMap::new();
    while !rest.is_empty() {
        let eol = rest.iter().position(|&b| b == b'\n').ok_or("a header without a newline")?;
        let header = std::str::from_utf8(&rest[..eol]).map_err(|_| "a header that is not UTF-8")?;
        let inner = header
            .strip_prefix("@@ITEM ")
            .and_then(|h| h.strip_suffix("@@"))
            .ok_or_else(|| format!("expected an @@ITEM header, found {header:?}"))?;
        let (name, size) = inner.split_once(' ').ok_or_else(|| format!("bad header {header:?}"))?;
        let size: usize = size.parse().map_err(|_| format!("bad size in {header:?}"))?;
        let body = &rest[eol + 1..];
        if body.len() < size {
            return Err(format!("item {name}: {size} bytes announced, {} left", body.len()));
        }
        let trailer = format!("\n@@END {name}@@\n");
        if !body[size..].starts_with(trailer.as_bytes()) {
            return Err(format!("item {name}: no {trailer:?} after its {size} bytes"));
        }
        let text =
            String::from_utf8(body[..size].to_vec()).map_err(|_| format!("item {name} is not UTF-8"))?;
        if items.insert(name.to_string(), text).is_some() {
            return Err(format!("item {name} sent twice"));
        }
        rest = &body[size + trailer.len()..];
    }
    Ok(items)
}

/// Copies `from` to `to`, naming both on failure.
fn copy(from: &Path, to: &Path) {
    fs::copy(from, to).unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
}

/// The payload directory: the tracer, the programs, the loader's cache, run.sh.
fn build_payload(suite: &str) -> PathBuf {
    let payload = temp_dir(&format!("kernel-matrix-{suite}")).join("payload");
    fs::create_dir_all(&payload).unwrap();
    // Tests build the unstripped dev-profile binary (30 MB); the guest needs only the code.
    let strip = Command::new("strip")
        .arg("-o")
        .arg(payload.join("trace"))
        .arg(TRACE)
        .output()
        .expect("run strip (install binutils)");
    assert!(strip.status.success(), "strip {TRACE}: {}", String::from_utf8_lossy(&strip.stderr));
    let file_io = build_file_io(&format!("kernel-matrix-file-io-{suite}"));
    for build in ["file-io", "file-io-static", "file-io-nopie"] {
        copy(&file_io.join(build), &payload.join(build));
    }
    for prog in ["burst", "bpf-progs"] {
        copy(&build_prog(prog, &[]), &payload.join(prog));
    }
    // The guest's root file system is the initramfs, which has no loader cache;
    // run.sh puts the host's at /etc/ld.so.cache (it names the same libc path).
    copy(Path::new("/etc/ld.so.cache"), &payload.join("ld.so.cache"));
    copy(&repo().join("tests/matrix/kernel-matrix.sh"), &payload.join("run.sh"));
    copy(&repo().join("tests/fixtures/lab.bt"), &payload.join("lab.bt"));
    fs::write(payload.join("params.sh"), format!("BURST_CALLS={BURST_CALLS}\n")).unwrap();
    payload
}

/// Where the host's loader finds libc.so.6 for file-io (`ldd`), which is where
/// run-guest.sh puts it in the guest and what the copied cache names.
fn libc_path(file_io: &Path) -> String {
    let out = Command::new("ldd").arg(file_io).output().expect("run ldd");
    assert!(out.status.success(), "ldd {}", file_io.display());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("libc.so.6 => "))
        .filter_map(|rest| rest.split_whitespace().next())
        .next()
        .unwrap_or_else(|| panic!("ldd names no libc.so.6 for file-io: {text}"))
        .to_string()
}

/// Boots `suite`'s kernel with the payload; returns the parsed items and the
/// guest's `uname -r`.
fn run_guest(suite: &str, payload: &Path) -> (Items, String) {
    let out = payload.parent().unwrap().join("out");
    let run = Command::new("bash")
        .arg(repo().join("tests/matrix/run-guest.sh"))
        .args([suite, payload.to_str().unwrap(), out.to_str().unwrap()])
        .output()
        .expect("run bash tests/matrix/run-guest.sh");
    assert!(
        run.status.success(),
        "run-guest.sh {suite} failed ({}):\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let read =
        |name: &str| fs::read(out.join(name)).unwrap_or_else(|e| panic!("read {name} of {suite}: {e}"));
    let stderr = String::from_utf8_lossy(&read("stderr")).into_owned();
    assert_eq!(
        String::from_utf8_lossy(&read("status")),
        "0\n",
        "{suite}: run.sh failed; its stderr:\n{stderr}"
    );
    assert_eq!(stderr, "", "{suite}: run.sh wrote to stderr");
    let items = parse_items(&read("stdout")).unwrap_or_else(|e| panic!("{suite}: the guest's report: {e}"));
    let uname = String::from_utf8_lossy(&read("uname")).trim_end().to_string();
    (Items { suite: suite.to_string(), items }, uname)
}

/// The four lines of one open reaching the kernel: vfs_open, and ext4_file_open
/// inside it when the file is on ext4 (`ext4` = the suffix after its name, e.g.
/// " with command file-io").
fn kernel_open(ext4: Option<&str>) -> Vec<String> {
    let mut lines = vec![".... .... Called vfs_open".to_string()];
    if let Some(suffix) = ext4 {
        lines.push(format!(".... .... .... Called ext4_file_open{suffix}"));
        lines.push(".... .... .... Return from ext4_file_open".to_string());
    }
    lines.push(".... .... Return from vfs_open".to_string());
    lines
}

/// An openat system call of `path` with the kernel lines inside it.
fn openat(path: &str, kernel: Vec<String>) -> Vec<String> {
    let mut lines = vec![format!(".... Enter openat() systemcall, argument is {path}")];
    lines.extend(kernel);
    lines.push(".... Exit openat() systemcall".to_string());
    lines
}

/// What `-a` adds before main, in order: execve opens file-io (on ext4, while
/// the process still has the tracer's name) and the interpreter (initramfs),
/// then the loader opens /etc/ld.so.cache and libc.so.6 (initramfs).
/// `comm` is the ext4_file_open suffix, `wrap` puts the system calls around.
fn before_main(comm: &str, libc: &str, wrap: bool) -> Vec<String> {
    let mut exec = kernel_open(Some(comm));
    exec.extend(kernel_open(None));
    if !wrap {
        let mut lines = exec;
        for _ in 0..2 {
            lines.extend(kernel_open(None));
        }
        return lines;
    }
    let mut lines = vec![".... Enter execve() systemcall, argument is ./file-io".to_string()];
    lines.extend(exec);
    lines.push(".... Exit execve() systemcall".to_string());
    lines.extend(openat("/etc/ld.so.cache", kernel_open(None)));
    lines.extend(openat(libc, kernel_open(None)));
    lines
}

/// The lab's lines for the program `build`: ext4_file_open names the command,
/// which is the program's file name (the lab's is `file-io`).
fn lab_expected_for(build: &str) -> Vec<String> {
    let lab_comm = " with command file-io";
    lab_expected(true)
        .into_iter()
        .map(|l| match l.strip_suffix(lab_comm) {
            Some(start) => format!("{start} with command {build}"),
            None => l,
        })
        .collect()
}

fn check_lab(items: &Items, suite: &str) {
    for build in ["file-io", "file-io-static", "file-io-nopie"] {
        let name = format!("lab-{build}");
        assert_eq!(items.line(&format!("{name}.status")), "0", "{suite}: trace ./{build}");
        let want = lab_expected_for(build);
        assert_lines(&items.lines(&format!("{name}.stdout")), &want, &format!("{suite}: trace ./{build}"));
        assert_eq!(
            items.get(&format!("{name}.stderr")),
            "Attaching 14 probes...\n",
            "{suite}: trace ./{build}"
        );
        assert_eq!(
            items.get(&format!("{name}.output")),
            "hello from file-io\n",
            "{suite}: ./{build} did its work"
        );
    }
}

fn check_all_events(items: &Items, suite: &str, libc: &str) {
    // -a on the lab's probes: the opens before main, then the lab's lines.
    let mut want = before_main(" with command trace", libc, false);
    want.extend(lab_expected(true));
    assert_eq!(items.line("all.status"), "0", "{suite}: trace -a");
    assert_lines(&items.lines("all.stdout"), &want, &format!("{suite}: trace -a ./file-io"));
    assert_eq!(items.get("all.stderr"), "Attaching 14 probes...\n", "{suite}: trace -a");

    // The same opens, each named by its system call. file-io's own six opens
    // of output.txt: two openat (native, through libc) and four open(2)
    // (with_syscall, with_asm), which are not traced here.
    let mut want = before_main("", libc, true);
    for _ in 0..2 {
        want.extend(openat("output.txt", kernel_open(Some(""))));
    }
    for _ in 0..4 {
        want.extend(kernel_open(Some("")));
    }
    assert_eq!(items.line("all-named.status"), "0", "{suite}: trace -a -s execve,openat");
    assert_lines(
        &items.lines("all-named.stdout"),
        &want,
        &format!("{suite}: trace -a -s execve,openat -k ..."),
    );
    assert_eq!(
        items.get("all-named.stderr"),
        "Attaching 8 probes...\n",
        "{suite}: trace -a -s execve,openat"
    );
}

/// A plan error: exit status 2, one line on stderr (returned), nothing on
/// stdout, and file-io never ran (its directory holds only itself).
fn check_refused<'a>(items: &'a Items, scenario: &str, suite: &str) -> &'a str {
    let what = format!("{suite}: {scenario}");
    assert_eq!(items.line(&format!("{scenario}.status")), "2", "{what}: exit status (plan error)");
    assert_eq!(items.get(&format!("{scenario}.stdout")), "", "{what}: stdout");
    assert_eq!(items.get(&format!("{scenario}.files")), "file-io\n", "{what}: file-io must not run");
    let err = items.line(&format!("{scenario}.stderr"));
    assert!(!err.contains("Attaching"), "{what}: {err}");
    err
}

fn check_refusals(items: &Items, suite: &str) {
    let err = check_refused(items, "misspelled", suite);
    let prefix = "trace: no kernel function `vfs_opn` in /proc/kallsyms; did you mean ";
    let rest = err.strip_prefix(prefix).unwrap_or_else(|| panic!("{suite}: -k vfs_opn: {err}"));
    // "`vfs_open`?" for one suggestion, "one of: vfs_open, vcs_open?" for several.
    let list = rest.strip_suffix('?').unwrap_or_else(|| panic!("{suite}: -k vfs_opn: {err}"));
    let first = list.strip_prefix("one of: ").unwrap_or(list).split(", ").next().unwrap_or("");
    assert_eq!(first.trim_matches('`'), "vfs_open", "{suite}: vfs_open first among the suggestions: {err}");

    assert_eq!(
        items.line(&format!("facts.kallsyms-{UNTRACEABLE}")),
        "1",
        "{suite}: {UNTRACEABLE} in kallsyms"
    );
    assert_eq!(
        items.line(&format!("facts.filter-{UNTRACEABLE}")),
        "0",
        "{suite}: {UNTRACEABLE} not traceable"
    );
    let err = check_refused(items, "unprobeable", suite);
    let want = format!(
        "trace: the kernel does not let kernel function `{UNTRACEABLE}` be traced: it is not in \
         /sys/kernel/tracing/available_filter_functions (functions marked notrace or noinstr are left out of it)"
    );
    assert!(
        err == want || err.starts_with(&format!("{want}; did you mean ")),
        "{suite}: -k {UNTRACEABLE}:\n got: {err}\nwant: {want}"
    );
}

/// The tracer's RLIMIT_MEMLOCK as its command read it from /proc/PPID/limits.
fn check_memlock(items: &Items, suite: &str, kernel_5_10: bool) {
    assert_eq!(items.line("memlock.status"), "0", "{suite}: memlock scenario");
    assert_eq!(items.get("memlock.stderr"), "Attaching 2 probes...\n", "{suite}: no memlock warning");
    let limits = items.line("memlock.limits");
    let words: Vec<&str> = limits.split_whitespace().collect();
    assert_eq!(words[..3], ["Max", "locked", "memory"], "{suite}: {limits}");
    let shell_kib: u64 = items.line("facts.shell-memlock").parse().expect("ulimit -l prints KiB");
    if kernel_5_10 {
        // 5.10 charges BPF maps to the limit, and the guest's default of 64 KiB
        // is too small for the tracer's maps (creating a 16384-entry hash map
        // there fails with EPERM): the tracer raised it.
        assert_eq!(shell_kib, 64, "{suite}: the guest's default limit");
        assert_eq!(words[3..], ["unlimited", "unlimited", "bytes"], "{suite}: {limits}");
    } else {
        // From 5.11 BPF memory is charged to the memory cgroup: left alone.
        let bytes = (shell_kib * 1024).to_string();
        assert_eq!(words[3..], [bytes.as_str(), bytes.as_str(), "bytes"], "{suite}: {limits}");
    }
}

/// Checks the burst; returns (shown, lost).
fn check_lost_events(items: &Items, suite: &str) -> (u64, u64) {
    assert_eq!(items.line("burst.status"), "0", "{suite}: burst");
    let err = items.lines("burst.stderr");
    assert_eq!(err.len(), 2, "{suite}: burst stderr {err:?}");
    assert_eq!(err[0], "Attaching 2 probes...", "{suite}");
    let numbers: Vec<u64> = err[1]
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect();
    let [lost, shown] = numbers[..] else { panic!("{suite}: two numbers expected in {:?}", err[1]) };
    assert_eq!(
        err[1],
        format!(
            "trace: {lost} events lost: the ring was full ({shown} events shown). \
             Use a bigger ring (--ring-pages) or trace fewer probes."
        ),
        "{suite}"
    );
    let lines = items.lines("burst.stdout");
    for l in &lines {
        // Nesting drifts when a return is lost: only the text is fixed.
        assert!(l.trim_start() == "> hit" || l.trim_start() == "< hit", "{suite}: burst line {l:?}");
    }
    assert_eq!(lines.len() as u64, shown, "{suite}: lines printed = events shown");
    assert!(lost > 0, "{suite}: a one-page ring must overflow during the burst");
    assert_eq!(shown + lost, 2 * BURST_CALLS, "{suite}: shown + lost = generated");
    (shown, lost)
}

/// The lab solution in bpftrace's syntax (tests/fixtures/lab.bt), run by
/// `trace lab.bt -c ./file-io`: the lab's lines, then what bpftrace prints at
/// the end (two newlines, and an empty line for the emptied @inside map).
fn check_lab_script(items: &Items, suite: &str) {
    assert_eq!(items.line("lab-bt.status"), "0", "{suite}: trace lab.bt");
    assert_eq!(items.get("lab-bt.stderr"), "Attaching 14 probes...\n", "{suite}: trace lab.bt");
    let mut want = lab_expected(true);
    want.extend(["".to_string(), "".to_string(), "".to_string()]);
    assert_lines(&items.lines("lab-bt.stdout"), &want, &format!("{suite}: trace lab.bt -c ./file-io"));
    assert!(
        items.get("lab-bt.stdout").ends_with("< with_asm\n\n\n\n"),
        "{suite}: the end of lab.bt's output"
    );
    assert_eq!(items.get("lab-bt.output"), "hello from file-io\n", "{suite}: file-io did its work");
}

/// The lab text's `kprobe:ext4_file_open { print(kstack()); exit(); }`: an
/// empty line, then the frames from ext4_file_open down to the system call
/// entry, each `        function+offset`, then print's newline and the two of
/// the end. bpftrace cannot run in the guest, so the frames are checked for
/// their shape and the functions every open goes through.
fn check_kstack(items: &Items, suite: &str) {
    assert_eq!(items.line("kstack.status"), "0", "{suite}: kstack");
    assert_eq!(items.get("kstack.stderr"), "Attaching 1 probe...\n", "{suite}: kstack");
    let out = items.get("kstack.stdout");
    let body = out
        .strip_prefix('\n')
        .and_then(|o| o.strip_suffix("\n\n\n"))
        .unwrap_or_else(|| panic!("{suite}: kstack output {out:?}"));
    let frames: Vec<(&str, u64)> = body
        .lines()
        .map(|l| {
            let f = l.strip_prefix("        ").unwrap_or_else(|| panic!("{suite}: frame {l:?}"));
            let (name, off) = f.rsplit_once('+').unwrap_or_else(|| panic!("{suite}: frame {l:?}"));
            (name, off.parse().unwrap_or_else(|_| panic!("{suite}: offset in {l:?}")))
        })
        .collect();
    let names: Vec<&str> = frames.iter().map(|f| f.0).collect();
    assert_eq!(names.first(), Some(&"ext4_file_open"), "{suite}: {names:?}");
    // The VFS calls the file system's open from do_dentry_open (vfs_open's tail
    // call to it leaves vfs_open off the stack on some builds).
    assert_eq!(names.get(1), Some(&"do_dentry_open"), "{suite}: {names:?}");
    // Whatever opened the file first (file-io's execve, usually), it came
    // through a system call.
    assert!(names.iter().any(|n| n.starts_with("__x64_sys_")), "{suite}: a system call in {names:?}");
    assert!(names.last().unwrap().starts_with("entry_SYSCALL_64"), "{suite}: {names:?}");
    assert!(frames[1..].iter().all(|f| f.1 > 0), "{suite}: callers are inside their functions: {frames:?}");
}

/// `trace --explain -u native ./file-io`: uprobes go through BPF links where the
/// kernel has uprobe_multi links with a process-wide pid filter (6.10+: trixie's
/// 6.12), through perf events before (5.10, 6.1); either way the trace is right.
fn check_uprobe_links(items: &Items, suite: &str, links: bool) {
    assert_eq!(items.line("links.status"), "0", "{suite}: links: {}", items.get("links.stderr"));
    assert_eq!(items.lines("links.stdout"), ["> native", "< native"], "{suite}: links");
    let err = items.lines("links.stderr");
    // Made for file-io (the first registration is on a memfd; the asked links are refused).
    let made = |prefix: &str| {
        err.iter()
            .filter(|l| l.starts_with(prefix) && l.contains("/file-io\"") && !l.contains(" = -1 "))
            .count()
    };
    let (link_lines, event_lines) = (made("bpf(BPF_LINK_CREATE, "), made("perf_event_open({type=uprobe"));
    let answer = if links {
        "# so uprobes are attached with links"
    } else {
        "# this kernel has no uprobe links (BPF_TRACE_UPROBE_MULTI, Linux 6.6+): uprobes are attached with perf events"
    };
    assert!(err.iter().any(|l| l == answer), "{suite}: no {answer:?} in:\n{}", err.join("\n"));
    // With links, the first registration is made (and closed) before them.
    let first = err.iter().any(|l| l == "# made and closed");
    assert_eq!(first, links, "{suite}: the first registration:\n{}", err.join("\n"));
    // native's entry and return: two links, or two perf events.
    let want = if links { (2, 0) } else { (0, 2) };
    assert_eq!(
        (link_lines, event_lines),
        want,
        "{suite}: links made, uprobe events opened:\n{}",
        err.join("\n")
    );
}

fn check_watch_and_ctrl_c(items: &Items, suite: &str, links: bool) {
    assert_eq!(items.line("watch.file-io-status"), "0", "{suite}: file-io under --watch");
    assert_eq!(items.line("watch.status"), "0", "{suite}: trace --watch after Ctrl-C");
    assert_lines(
        &items.lines("watch.stdout"),
        &lab_expected(true),
        &format!("{suite}: trace --watch ./file-io"),
    );
    assert_eq!(items.get("watch.stderr"), "Attaching 14 probes...\n", "{suite}: --watch");
    // A kprobe and a kretprobe on each of vfs_open and ext4_file_open while
    // tracing; none before or after.
    assert_eq!(items.line("facts.kprobes-before"), "0", "{suite}: kprobes before");
    assert_eq!(items.line("facts.kprobes-during"), "4", "{suite}: kprobes while tracing");
    assert_eq!(items.line("facts.kprobes-during-vfs_open"), "2", "{suite}: vfs_open probes while tracing");
    assert_eq!(items.line("facts.kprobes-after"), "0", "{suite}: kprobes left behind");
    assert_eq!(items.line("facts.kprobe-events-after"), "0", "{suite}: kprobe_events left behind");
    let count = |name: &str| -> u64 { items.line(name).parse().unwrap() };
    let before = count("facts.bpf-progs-before");
    assert_eq!(
        count("facts.bpf-progs-during"),
        before + if links { WATCH_PROGRAMS_LINKED } else { WATCH_PROGRAMS },
        "{suite}: our programs while tracing"
    );
    assert_eq!(count("facts.bpf-progs-after"), before, "{suite}: BPF programs left behind");
}

/// Boots `suite`, runs every scenario, checks everything; the kernel release
/// must start with `release_prefix`.
fn check_kernel(suite: &str, release_prefix: &str) {
    let started = Instant::now();
    let payload = build_payload(suite);
    let libc = libc_path(&payload.join("file-io"));
    let (items, uname) = run_guest(suite, &payload);
    let release = items.line("facts.release");
    assert!(release.starts_with(release_prefix), "{suite}: kernel {release:?}, expected {release_prefix}*");
    assert_eq!(release, uname, "{suite}: release inside and outside the payload");
    let pmu: u32 = items.line("facts.kprobe-pmu-type").parse().expect("a kprobe PMU type");
    assert!(pmu >= 6, "{suite}: kprobe PMU type {pmu} (dynamic types start at PERF_TYPE_MAX = 6)");

    check_lab(&items, suite);
    check_all_events(&items, suite, &libc);
    check_refusals(&items, suite);
    check_memlock(&items, suite, release_prefix == "5.10.");
    let (shown, lost) = check_lost_events(&items, suite);
    check_watch_and_ctrl_c(&items, suite, release_prefix == "6.12.");
    check_lab_script(&items, suite);
    check_kstack(&items, suite);
    check_uprobe_links(&items, suite, release_prefix == "6.12.");

    let attached =
        items.line("lab-file-io.stderr").trim_start_matches("Attaching ").trim_end_matches(" probes...");
    let times: Vec<String> = items
        .items
        .iter()
        .filter_map(|(k, v)| k.strip_suffix(".seconds").map(|s| format!("{s} {}s", v.trim())))
        .collect();
    println!(
        "{suite}: kernel {release}: {attached} probes attached; burst of {} events: {shown} shown, {lost} lost; \
         all checks passed in {:.1} s (guest scenarios: {})",
        2 * BURST_CALLS,
        started.elapsed().as_secs_f64(),
        times.join(", ")
    );
    let _ = fs::remove_dir_all(payload.parent().unwrap());
}

#[test]
fn bullseye_kernel_5_10() {
    check_kernel("bullseye", "5.10.");
}

#[test]
fn bookworm_kernel_6_1() {
    check_kernel("bookworm", "6.1.");
}

#[test]
fn trixie_kernel_6_12() {
    check_kernel("trixie", "6.12.");
}

#[test]
fn items_are_framed_by_size() {
    let ok = b"@@ITEM a.stdout 13@@\nline\n@@END x\n\n@@END a.stdout@@\n@@ITEM b 0@@\n\n@@END b@@\n";
    let items = parse_items(ok).unwrap();
    assert_eq!(items["a.stdout"], "line\n@@END x\n");
    assert_eq!(items["b"], "");
    assert_eq!(items.len(), 2);
    assert!(parse_items(b"@@ITEM a 5@@\nabc\n@@END a@@\n").is_err(), "short body");
    assert!(parse_items(b"@@ITEM a 1@@\nab\n@@END a@@\n").is_err(), "long body");
    assert!(parse_items(b"noise\n").is_err());
    assert!(parse_items(b"@@ITEM a 0@@\n\n@@END a@@\n@@ITEM a 0@@\n\n@@END a@@\n").is_err(), "twice");
}
