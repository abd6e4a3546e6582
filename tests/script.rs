//! Scripts run for real (`trace -e`, `trace FILE.bt`, `#!`), on this kernel,
//! side by side with Debian's bpftrace 0.17 (installed by run-tests): the lab
//! text's one-liners (the kstack one on a tracepoint, since this kernel has no
//! kprobes; tests/kernel_matrix.rs runs the kprobe one), the lab solution
//! (tests/fixtures/lab.bt) without its kprobes, and the language's arithmetic,
//! maps, BEGIN/END, exit() and errors. Where trace and bpftrace differ on
//! purpose (a string read again at return), the test names the difference.

mod common;
use common::*;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// Mounts tracefs if nobody has (bpftrace needs it; trace mounts it itself).
fn tracefs_mounted() {
    if !Path::new("/sys/kernel/tracing/events").exists() {
        let ok =
            Command::new("mount").args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"]).status().unwrap();
        assert!(ok.success(), "cannot mount tracefs");
    }
}

/// Both tracers start commands with the test's environment, minus cargo's
/// LD_LIBRARY_PATH (it changes which files the loader opens).
///
/// bpftrace 0.17 sometimes stops short when the command exits: its output ends
/// in the middle, without its normal end (two newlines, then the maps; seen once
/// in 49 runs of this file). That run of the reference is thrown away and
/// bpftrace runs again, at most three times in all.
fn bpftrace(args: &[&str], cwd: &Path) -> Output {
    let run = || {
        Command::new("bpftrace")
            .args(args)
            .current_dir(cwd)
            .env_remove("LD_LIBRARY_PATH")
            .output()
            .expect("bpftrace is installed by run-tests")
    };
    let mut out = run();
    for _ in 1..3 {
        let stdout = text(&out.stdout);
        let ended = stdout.rfind("\n\n").is_some_and(|i| stdout[i + 2..].lines().all(|l| l.starts_with('@')));
        if !out.status.success() || ended {
            break;
        }
        eprintln!("bpftrace stopped short ({:?}); running it again", text(&out.stdout));
        out = run();
    }
    out
}

fn run_trace(args: &[&str], cwd: &Path) -> Output {
    trace_command().args(args).current_dir(cwd).env_remove("LD_LIBRARY_PATH").output().expect("trace runs")
}

/// file-io under another name, so that a probe filtering on the command name
/// sees only this test's process (tests run in parallel).
fn file_io_named(name: &str) -> std::path::PathBuf {
    let dir = build_file_io(name);
    std::fs::rename(dir.join("file-io"), dir.join(name)).unwrap();
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// bpftrace's stdout without its first line (`Attaching N probes...`, which
/// trace writes on stderr), after checking that line.
fn bpftrace_output(o: &Output, probes: usize) -> String {
    assert!(o.status.success(), "bpftrace failed: {}", text(&o.stderr));
    let out = text(&o.stdout);
    let (first, rest) = out.split_once('\n').unwrap_or_else(|| panic!("bpftrace printed {out:?}"));
    let s = if probes == 1 { "" } else { "s" };
    assert_eq!(first, format!("Attaching {probes} probe{s}..."), "bpftrace's first line");
    rest.to_string()
}

/// trace's stdout, after checking its status and that stderr is exactly the
/// announcement.
fn trace_output(o: &Output, probes: usize) -> String {
    let s = if probes == 1 { "" } else { "s" };
    assert_eq!(text(&o.stderr), format!("Attaching {probes} probe{s}...\n"), "trace's stderr");
    assert!(o.status.success(), "trace: {}", o.status);
    text(&o.stdout)
}

/// bpftrace 0.17 sometimes prints a second event after `exit()`: one another
/// CPU had already queued when it read the exit. trace stops at the exit. So
/// bpftrace's output must be ours (one event, then the two newlines of the end)
/// with, at most, further events between the two.
fn assert_first_event_matches(ours: &str, theirs: &str) {
    let event = ours
        .strip_suffix("\n\n")
        .unwrap_or_else(|| panic!("trace's output does not end the bpftrace way: {ours:?}"));
    assert!(
        theirs.starts_with(event) && theirs.ends_with("\n\n"),
        "bpftrace's first event differs:\n ours: {ours:?}\ntheirs: {theirs:?}"
    );
}

const OPEN_ONE_LINER: &str =
    "tracepoint:syscalls:sys_enter_open { printf(\"did an open on %s\", str(args -> filename)); exit()}";
const ECHO_ONE_LINER: &str = "tracepoint:syscalls:sys_enter_openat /comm==\"echo\"/ { printf(\"%s did an openat on %s\", comm, str(args -> filename)); exit()}";

#[test]
fn the_lab_one_liner_on_open_prints_what_bpftrace_prints() {
    tracefs_mounted();
    let dir = build_file_io("script-open");
    let ours = trace_output(&trace(&["-e", OPEN_ONE_LINER, "-c", "./file-io"], &dir), 1);
    let theirs = bpftrace_output(&bpftrace(&["-e", OPEN_ONE_LINER, "-c", "./file-io"], &dir), 1);
    // exit() stops at the first of file-io's four opens; bpftrace ends with two newlines.
    assert_eq!(ours, "did an open on output.txt\n\n");
    assert_first_event_matches(&ours, &theirs);
}

#[test]
fn the_lab_one_liner_filtering_on_echo_prints_what_bpftrace_prints() {
    tracefs_mounted();
    let dir = temp_dir("script-echo");
    let run = |o: Output| {
        // echo's own "hi" goes to the same stdout, before the trace's line or
        // right after it: the format has no newline, so possibly on its line.
        let out = text(&o.stdout);
        assert!(out.contains("hi\n"), "no `hi` in {out:?}");
        out.replacen("hi\n", "", 1).lines().map(str::to_string).collect::<Vec<String>>()
    };
    let ours = run_trace(&["-e", ECHO_ONE_LINER, "-c", "/bin/echo hi"], &dir);
    assert_eq!(text(&ours.stderr), "Attaching 1 probe...\n");
    let theirs = bpftrace(&["-e", ECHO_ONE_LINER, "-c", "/bin/echo hi"], &dir);
    assert!(theirs.status.success(), "{}", text(&theirs.stderr));
    let ours = run(ours);
    // No newline in the format: bpftrace's two at the end close the line.
    assert_eq!(ours, ["echo did an openat on /etc/ld.so.cache", ""]);
    let theirs = run(theirs);
    assert_eq!(&theirs[0], "Attaching 1 probe...");
    // An event bpftrace printed after exit() (see assert_first_event_matches)
    // lands on the same line: the format has no newline.
    assert!(
        theirs[1].starts_with(&ours[0]) && theirs[2..] == ours[1..],
        "ours: {ours:?}\ntheirs: {theirs:?}"
    );
}

/// The lab's kstack one-liner with a tracepoint (this kernel has no kprobes):
/// the same kernel stack, frame for frame, with the same offsets.
#[test]
fn kstack_prints_the_same_frames_as_bpftrace() {
    tracefs_mounted();
    let dir = file_io_named("fio-kstack");
    let program = "tracepoint:syscalls:sys_enter_openat /comm == \"fio-kstack\"/ { print(kstack()); printf(\"[%s]\\n\", kstack(perf, 2)); exit(); }";
    let ours = trace_output(&run_trace(&["-e", program, "-c", "./fio-kstack"], &dir), 1);
    let theirs = bpftrace_output(&bpftrace(&["-e", program, "-c", "./fio-kstack"], &dir), 1);
    assert_first_event_matches(&ours, &theirs);
    // A system call's stack ends in the syscall entry code, each frame indented by 8.
    let frames: Vec<&str> = ours.lines().skip(1).take_while(|l| !l.is_empty()).collect();
    assert!(frames.len() >= 3, "{ours}");
    assert!(frames.iter().all(|f| f.starts_with("        ") && f.contains('+')), "{ours}");
    assert!(frames.last().unwrap().trim_start().starts_with("entry_SYSCALL_64"), "{ours}");
}

/// Wildcards in uprobe functions and tracepoint events, several probes on one
/// block, `probe` and `func`: as bpftrace expands and names them.
#[test]
fn wildcards_and_probe_names_as_bpftrace() {
    tracefs_mounted();
    let dir = file_io_named("fio-wild");
    let program = "uprobe:./fio-wild:with_*, uretprobe:./fio-wild:native { printf(\"%s\\n\", probe); } \
                   u:./fio-wild:w*_syscall { printf(\"func %s\\n\", func); } \
                   u:./fio-wild:nat* { printf(\"func %s\\n\", func); } \
                   t:syscalls:sys_exit_open* /comm == \"fio-wild\"/ { printf(\"%s %d\\n\", probe, args->ret); }";
    let ours = run_trace(&["-e", program, "-c", "./fio-wild"], &dir);
    let theirs = bpftrace(&["-e", program, "-c", "./fio-wild"], &dir);
    // Every sys_exit_open* event of this kernel, plus 5 uprobes.
    let events = std::fs::read_dir("/sys/kernel/tracing/events/syscalls")
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("sys_exit_open"))
        .count();
    let ours = trace_output(&ours, events + 5);
    // bpftrace names `func` from the process's maps when it prints, which a
    // process that has exited no longer has (then it prints an address): the
    // func lines are compared as a shape there, and checked exactly in ours.
    let shape = |text: &str| -> String {
        text.lines().map(|l| if l.starts_with("func ") { "func" } else { l }).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(shape(&ours), shape(&bpftrace_output(&theirs, events + 5)));
    // Two blocks on with_syscall run in the script's order.
    assert!(ours.contains("\nfunc native\n"), "{ours}");
    assert!(
        ours.contains("uretprobe:./fio-wild:native\nuprobe:./fio-wild:with_syscall\nfunc with_syscall\n"),
        "{ours}"
    );
    assert_eq!(ours.matches("tracepoint:syscalls:sys_exit_openat 3\n").count(), 4, "{ours}");
}

/// A user stack, symbolised from the ELF file of the process (its maps read
/// when its first record arrives): as bpftrace prints it. The process lives on
/// for a second (`lifecycle tick 20`), because bpftrace reads the maps only
/// when it prints.
#[test]
fn ustack_names_the_programs_functions_as_bpftrace() {
    let bin = build_prog("lifecycle", &[]);
    let dir = bin.parent().unwrap();
    let program = "uprobe:./lifecycle:lc_step { print(ustack(1)); printf(\"%s\", ustack(perf, 1)); exit(); }";
    // The perf mode's address differs from run to run (ASLR): it is compared as a shape.
    let address = |text: String| -> String {
        text.split('\n')
            .map(|l| match l.strip_prefix('\t').and_then(|r| r.split_once(' ')) {
                Some((addr, rest)) if addr.chars().all(|c| c.is_ascii_hexdigit()) => format!("\tADDR {rest}"),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let run = ["-e", program, "-c", "./lifecycle tick 20"];
    let ours = address(trace_output(&run_trace(&run, dir), 1));
    let theirs = address(bpftrace_output(&bpftrace(&run, dir), 1));
    assert_eq!(ours, theirs);
    // One frame: the program is built without frame pointers, so the frames
    // above a function entered a moment ago are not reliable.
    assert!(ours.starts_with("\n        lc_step+0\n\n"), "{ours}");
    assert!(ours.contains("\tADDR lc_step+0 ("), "{ours}");
    // A process gone before its record is shown (file-io exits within
    // milliseconds) is still named: trace read its maps when the record arrived.
    let dir = file_io_named("fio-ustack");
    let quick = "uprobe:./fio-ustack:native { print(ustack(1)); exit(); }";
    let ours = trace_output(&run_trace(&["-e", quick, "-c", "./fio-ustack"], &dir), 1);
    assert_eq!(ours, "\n        native+0\n\n\n\n");
}

/// lab.bt without the probes this kernel lacks (its kprobe blocks, found with
/// trace's own parser).
fn lab_without_kprobes(dir: &Path) -> std::path::PathBuf {
    let src = std::fs::read_to_string(repo().join("tests/fixtures/lab.bt")).unwrap();
    let script = trace::lang::parser::parse(&src).expect("lab.bt parses");
    let mut out = src.clone();
    for g in script.groups.iter().rev() {
        use trace::lang::ast::ProbeKind::{Kprobe, Kretprobe};
        if g.probes.iter().all(|p| matches!(p.kind, Kprobe | Kretprobe)) {
            let (start, end) = (g.probes[0].span.start, g.body.close.end);
            out.replace_range(start..end, "");
        }
    }
    assert!(!out.contains("kprobe:"), "{out}");
    let path = dir.join("lab-here.bt");
    std::fs::write(&path, out).unwrap();
    path
}

/// The lab's lines without its kernel functions, and what bpftrace prints at
/// the end: two newlines, and an empty line for the emptied @inside map.
fn lab_lines_here() -> String {
    let mut want = lab_expected(false).join("\n");
    want.push_str("\n\n\n\n");
    want
}

#[test]
fn the_lab_script_prints_what_bpftrace_prints_on_this_kernel() {
    tracefs_mounted();
    let dir = build_file_io("script-lab");
    let script = lab_without_kprobes(&dir);
    let script = script.to_str().unwrap();
    let theirs = bpftrace_output(&bpftrace(&[script, "-c", "./file-io"], &dir), 10);
    // bpftrace cannot read the first open's file name: the page holding it is
    // not in memory yet when libc's open is entered. trace behaves the same
    // when it does not read it again at return...
    let same = trace_output(&trace(&["--no-string-retry", script, "-c", "./file-io"], &dir), 10);
    assert_eq!(same, theirs, "trace --no-string-retry and bpftrace");
    let unread = ".. enter open()\n";
    assert_eq!(theirs.matches(unread).count(), 1, "bpftrace's output:\n{theirs}");
    // ...and by default it does, which gives the lab's line.
    let ours = trace_output(&trace(&[script, "-c", "./file-io"], &dir), 10);
    assert_eq!(ours, theirs.replacen(unread, ".. enter open(output.txt)\n", 1));
    assert_eq!(ours, lab_lines_here());
}

#[test]
fn the_whole_lab_script_runs_here_without_its_kernel_functions() {
    if has_kprobes() {
        println!("skipped: this kernel has kprobes; the kernel matrix checks the full output");
        return;
    }
    let dir = build_file_io("script-lab-full");
    std::fs::copy(repo().join("tests/fixtures/lab.bt"), dir.join("trace.bt")).unwrap();
    let o = trace(&["trace.bt", "-c", "./file-io"], &dir);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stderr),
        "trace: skipping kernel functions kprobe:vfs_open, kretprobe:vfs_open, kprobe:ext4_file_open, \
         kretprobe:ext4_file_open: this kernel has no kprobes (no kprobe PMU in \
         /sys/bus/event_source/devices: built without CONFIG_KPROBES)\nAttaching 10 probes...\n"
    );
    assert_eq!(text(&o.stdout), lab_lines_here());
    assert_eq!(std::fs::read_to_string(dir.join("output.txt")).unwrap(), "hello from file-io\n");
}

/// A script whose first line names trace runs as a program (`./trace.bt`).
#[test]
fn a_script_runs_by_its_interpreter_line() {
    let dir = file_io_named("fio-shebang");
    let path = dir.join("opens.bt");
    std::fs::write(
        &path,
        format!(
            "#!{TRACE}\ntracepoint:syscalls:sys_exit_open /comm == \"fio-shebang\"/ {{ printf(\"open -> %d\\n\", args->ret); }}\n"
        ),
    )
    .unwrap();
    let ok = Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    assert!(ok.success());
    let o = Command::new("./opens.bt").args(["-c", "./fio-shebang"]).current_dir(&dir).output().unwrap();
    assert_eq!(trace_output(&o, 1), "open -> 3\nopen -> 3\nopen -> 3\nopen -> 3\n\n\n");
}

/// Signed arithmetic on a run-time value, if/else, variables, maps with
/// count(), +=, ++ and delete, printf's flags and widths, print, str(p, n),
/// BEGIN and END: against values worked out by hand, and against bpftrace.
#[test]
fn the_language_computes_as_bpftrace_does() {
    tracefs_mounted();
    let dir = file_io_named("fio-semantics");
    let program = r#"
BEGIN { printf("start %d %s\n", 6 * 7, "here"); }
tracepoint:syscalls:sys_exit_open /comm == "fio-semantics"/
{
    $r = args->ret;
    @opens = count();
    if ($r < 0) {
        @errors[$r]++;
        printf("error %d: /4=%d %%4=%d >>1=%d *3=%d neg=%d\n", $r, $r / 4, $r % 4, $r >> 1, $r * 3, -$r);
        printf("hex=%x|%-5d|%05d|%5s|\n", -$r, $r, $r, "ab");
    } else {
        @fds[$r] += 10;
        printf("fd %d\n", $r);
    }
}
tracepoint:syscalls:sys_enter_open /comm == "fio-semantics" && str(args->filename) == "output.txt"/
{
    printf("%s|%8s|\n", str(args->filename, 4), comm);
    printf("%.3s|%s\n", str(args->filename), comm);
    print(args->flags & 1);
}
END { printf("end\n"); }
"#;
    let script = dir.join("semantics.bt");
    std::fs::write(&script, program).unwrap();
    let s = script.to_str().unwrap();
    // `buggy`: with_asm's "close" is open(fd) and fails with EFAULT (-14), and
    // the file it meant to close stays open: the next open gets fd 4.
    let ours = run_trace(&[s, "-c", "./fio-semantics buggy"], &dir);
    let ours = trace_output(&ours, 4);
    let open = |write: bool| format!("outp|fio-semantics|\nout|fio-semantics\n{}\n", u8::from(write));
    let error = "error -14: /4=-3 %4=-2 >>1=-7 *3=-42 neg=14\nhex=e|-14  |-0014|   ab|\n";
    let want = [
        "start 42 here\n".to_string(),
        open(true),
        "fd 3\n".into(),
        open(false),
        "fd 3\n".into(),
        open(true),
        "fd 3\n".into(),
        error.into(),
        open(false),
        "fd 4\n".into(),
        error.into(),
        "end\n\n\n@errors[-14]: 2\n@fds[4]: 10\n@fds[3]: 30\n@opens: 6\n".into(),
    ]
    .concat();
    assert_eq!(ours, want);
    let theirs = bpftrace_output(&bpftrace(&[s, "-c", "./fio-semantics buggy"], &dir), 4);
    // One difference on purpose: bpftrace 0.17 divides signed values as
    // unsigned ones (it warns: "signed operands for '/' can lead to undefined
    // behavior"), so -14 / 4 is 2^62 - 4, printed by %d as its low 32 bits, -4,
    // and -14 % 4 is 2. trace divides as C does: -3 and -2.
    let theirs_signed = theirs.replace("/4=-4 %4=2 ", "/4=-3 %4=-2 ");
    assert_ne!(theirs_signed, theirs, "bpftrace's unsigned division shows");
    assert_eq!(ours, theirs_signed, "trace and bpftrace");
}

/// Without -c, a script traces until Ctrl-C; then END runs and every probe is gone.
#[test]
fn ctrl_c_ends_a_script_and_detaches() {
    tracefs_mounted();
    let dir = file_io_named("fio-ctrl-c");
    let program = "tracepoint:syscalls:sys_enter_open /comm == \"fio-ctrl-c\"/ { printf(\"%s\\n\", str(args->filename)); } END { printf(\"bye\\n\"); }";
    let (mut child, out) = spawn_trace(&["-e", program], &dir);
    wait_for_announcement(&mut child);
    let programs = program_ids(child.id());
    assert_eq!(programs.len(), 1, "one program while tracing: {programs:?}");
    let ok = Command::new("./fio-ctrl-c").current_dir(&dir).status().unwrap();
    assert!(ok.success());
    std::thread::sleep(Duration::from_millis(300));
    send_signal(&child, nix::sys::signal::Signal::SIGINT);
    let o = finish(child, out);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "output.txt\noutput.txt\noutput.txt\noutput.txt\nbye\n\n\n");
    for id in programs {
        let shown = Command::new("bpftool").args(["prog", "show", "id", &id.to_string()]).output().unwrap();
        assert!(!shown.status.success(), "program {id} is still loaded: {}", text(&shown.stdout));
    }
}

/// The ids of the BPF programs process `pid` holds (the `prog_id:` of its fds).
fn program_ids(pid: u32) -> Vec<u32> {
    let mut ids = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap() {
        let info = std::fs::read_to_string(fd.unwrap().path()).unwrap_or_default();
        ids.extend(
            info.lines().filter_map(|l| l.strip_prefix("prog_id:")).map(|v| v.trim().parse::<u32>().unwrap()),
        );
    }
    ids.sort();
    ids.dedup();
    ids
}

/// Records that do not fit are counted and reported, as for the probe flags.
#[test]
fn lost_records_are_counted() {
    let burst = build_prog("burst", &[]);
    let dir = burst.parent().unwrap();
    let calls = 20_000;
    let program = "uprobe:./burst:hit { printf(\"hit %d\\n\", arg0); }";
    let o = trace(&["--ring-pages", "1", "-e", program, "-c", &format!("./burst {calls}")], dir);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines[0], "Attaching 1 probe...");
    let shown = text(&o.stdout).lines().filter(|l| l.starts_with("hit ")).count() as u64;
    match lines.get(1) {
        Some(l) => {
            let want_tail = format!(
                " events lost: the ring was full ({shown} events shown). \
                 Use a bigger ring (--ring-pages) or trace fewer probes."
            );
            let lost: u64 = l
                .strip_prefix("trace: ")
                .and_then(|r| r.strip_suffix(want_tail.as_str()))
                .unwrap_or_else(|| panic!("{l}"))
                .parse()
                .unwrap();
            assert_eq!(shown + lost, calls, "shown + lost = sent");
        }
        None => assert_eq!(shown, calls, "nothing lost, so everything shown"),
    }
}

/// What a script names that this system does not have: compiler-style
/// messages, exit status 2, nothing attached.
#[test]
fn missing_files_functions_and_events_are_named() {
    let dir = build_file_io("script-errors");
    let cases = [
        (
            "uprobe:./file-oi:native { exit(); }",
            format!(
                "-e:1:8: error: no file `./file-oi`\n    1 | uprobe:./file-oi:native {{ exit(); }}\n      |        ^~~~~~~~~\n      = help: looked for {}/./file-oi (relative paths start in {})\n",
                dir.display(),
                dir.display()
            ),
        ),
        (
            "uprobe:./file-io:nativ { exit(); }",
            format!(
                "-e:1:18: error: no function `nativ` in {}/file-io; did you mean `native`?\n    1 | uprobe:./file-io:nativ {{ exit(); }}\n      |                  ^~~~~\n",
                std::fs::canonicalize(&dir).unwrap().display()
            ),
        ),
        (
            "uprobe:native { exit(); }",
            "-e:1:8: error: `uprobe:native` names no file: which program is it in?\n    1 | uprobe:native { exit(); }\n      |        ^~~~~~\n      = help: write the path (`uprobe:./file-io:native`), or give the program with -c or -p\n".to_string(),
        ),
        (
            "t:syscalls:sys_enter_opn { exit(); }",
            "-e:1:12: error: there is no tracepoint `sys_enter_opn` in category `syscalls`\n    1 | t:syscalls:sys_enter_opn { exit(); }\n      |            ^~~~~~~~~~~~~\n      = help: did you mean one of `sys_enter_open`, `sys_enter_bpf`, `sys_enter_iopl`?\n".to_string(),
        ),
    ];
    for (program, want) in cases {
        let o = trace(&["-e", program], &dir);
        assert_eq!(o.status.code(), Some(2), "{program}");
        assert_eq!(text(&o.stderr), want, "{program}");
        assert_eq!(text(&o.stdout), "");
    }
    // The same missing file named by two probes: one error.
    let o = trace(&["-e", "u:./nope:f { exit(); } ur:./nope:f { exit(); }"], &dir);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        text(&o.stderr),
        format!(
            "-e:1:3: error: no file `./nope`\n    1 | u:./nope:f {{ exit(); }} ur:./nope:f {{ exit(); }}\n      |   ^~~~~~\n      = help: looked for {}/./nope (relative paths start in {})\n      = help: one more probe names it too\n",
            dir.display(),
            dir.display()
        )
    );
    let o = trace(&["-u", "native", "-e", "BEGIN { exit(); }"], &dir);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("cannot be used with"), "{}", text(&o.stderr));
    std::fs::write(dir.join("x.bt"), "BEGIN { exit(); }\n").unwrap();
    let o = trace(&["x.bt", "./file-io"], &dir);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        text(&o.stderr),
        "trace: x.bt: unexpected arguments after the script: `./file-io`; give the command to trace with \
         -c 'COMMAND' (positional parameters like $1 are not supported yet)\n"
    );
}
