//! Every exit path detaches every probe: normal end, an error in the middle of
//! attaching, SIGINT/SIGTERM/SIGHUP, the traced program crashing, and a closed
//! stdout. After each, no program of ours is loaded, tracefs holds no probe of
//! ours, and no traced process is left behind.
//!
//! The tests run one at a time (a lock): the check looks at the whole system.

mod common;
use common::*;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

/// Loaded BPF programs of these tests, as (id, name): prog_name is the probe's
/// label, and the programs traced here are named after lifecycle's `lc_step`, a
/// name no other test uses, so tracers running elsewhere on the machine (other
/// test binaries, other sessions) do not count.
fn our_programs() -> Vec<(u64, String)> {
    let out = Command::new("bpftool").args(["-j", "prog", "show"]).output().expect("bpftool is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    // Each program's JSON object starts with {"id":N,...,"name":"...".
    text.split("{\"id\":")
        .skip(1)
        .filter_map(|obj| {
            let id = obj.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()?;
            let name = obj.split("\"name\":\"").nth(1)?.split('"').next()?.to_string();
            let ours = ["uprobe_lc_step", "uretprobe_lc_st"];
            ours.iter().any(|p| name.starts_with(p)).then_some((id, name))
        })
        .collect()
}

/// The highest program id now: programs of a case have higher ids (ids only
/// grow), so other tracers already running on the machine do not count.
fn last_program_id() -> u64 {
    our_programs().iter().map(|(id, _)| *id).max().unwrap_or(0)
}

/// Processes running `bin`.
fn processes_of(bin: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if std::fs::read_link(e.path().join("exe")).is_ok_and(|p| p == bin) {
            pids.push(pid);
        }
    }
    pids
}

/// The ids of the programs BPF links hold now (`bpftool link show`).
fn linked_programs() -> Vec<u64> {
    let out = Command::new("bpftool").args(["-j", "link", "show"]).output().expect("bpftool is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("\"prog_id\":")
        .skip(1)
        .filter_map(|s| s.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .collect()
}

/// The descriptors some process holds of these programs, as `PID/FD`: the
/// fdinfo of a program's descriptor, and of a link's, names its `prog_id`.
fn descriptors_of(ids: &[u64]) -> Vec<String> {
    let mut held = Vec::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(fds) = std::fs::read_dir(p.path().join("fdinfo")) else { continue };
        for fd in fds.flatten() {
            let info = std::fs::read_to_string(fd.path()).unwrap_or_default();
            let prog =
                info.lines().find_map(|l| l.strip_prefix("prog_id:")).and_then(|v| v.trim().parse().ok());
            if prog.is_some_and(|id| ids.contains(&id)) {
                held.push(format!(
                    "{}/{}",
                    p.file_name().to_string_lossy(),
                    fd.file_name().to_string_lossy()
                ));
            }
        }
    }
    held
}

/// Waits until every RCU callback queued so far has run: then the kernel has
/// put the programs of the links trace closed.
///
/// Closing a uprobe_multi BPF link removes its id and unregisters its uprobes
/// at once (`bpf_link_free`: `bpf_link_free_id`, then `ops->release`), but the
/// link's dealloc is deferred (`dealloc_deferred`): `bpf_link_free` queues it
/// with `call_rcu()`, and only that callback (`bpf_link_dealloc`) puts the
/// program, whose id then leaves `bpftool prog show`. So the programs of a
/// closed link stay listed for an RCU grace period, which ends once every CPU
/// has passed a quiescent state: milliseconds on an idle machine, seconds on a
/// busy one or in a guest whose virtual CPUs the host does not run (3 s seen,
/// so that the fixed 2 s wait this replaces failed 16 runs in 60).
/// `rcu_barrier()` waits for exactly those callbacks; `rcutree.do_rcu_barrier`
/// (Linux 6.7) runs one for a writer and returns when it is done. Older kernels
/// have no such file: the caller's bounded wait covers them.
fn wait_for_rcu_callbacks() {
    let _ = std::fs::write("/sys/module/rcutree/parameters/do_rcu_barrier", "1");
}

/// How long the programs may stay listed after [`wait_for_rcu_callbacks`]:
/// ten times the longest grace period seen, for kernels without
/// `do_rcu_barrier` (perf-event probes put their program as soon as the
/// event's descriptor closes). A leaked program is held by a link or a
/// descriptor, checked at once, and stays however long one waits.
const DEFERRED_PUT: Duration = Duration::from_secs(30);

fn assert_no_leftovers(bin: &Path, case: &str, before: u64) {
    let left = || -> Vec<_> { our_programs().into_iter().filter(|(id, _)| *id > before).collect() };
    // What goes at once when trace's descriptors close (it has exited): every
    // link holding a program of ours, and every descriptor of one.
    let held = linked_programs();
    let linked: Vec<_> = left().into_iter().filter(|(id, _)| held.contains(id)).collect();
    assert_eq!(linked, vec![], "{case}: BPF links left attached");
    let ids: Vec<u64> = left().iter().map(|(id, _)| *id).collect();
    assert_eq!(descriptors_of(&ids), Vec::<String>::new(), "{case}: descriptors of our programs left open");
    // What the kernel puts after a grace period.
    let start = Instant::now();
    wait_for_rcu_callbacks();
    while !left().is_empty() && start.elapsed() < DEFERRED_PUT {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(left(), vec![], "{case}: BPF programs left loaded {:?} after trace ended", start.elapsed());
    for f in ["uprobe_events", "kprobe_events"] {
        let text = std::fs::read_to_string(Path::new("/sys/kernel/tracing").join(f)).unwrap_or_default();
        assert!(!text.contains("trace"), "{case}: tracefs {f} holds {text}");
    }
    assert_eq!(processes_of(bin), Vec::<u32>::new(), "{case}: traced processes left running");
}

fn wait_timeout(child: &mut Child, limit: Duration, case: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{case}: trace did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lifecycle() -> std::path::PathBuf {
    build_prog("lifecycle", &[])
}

#[test]
fn normal_end() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = last_program_id();
    let bin = lifecycle();
    let out = trace(&["-u", "lc_step", "./lifecycle", "many", "10"], bin.parent().unwrap());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout_lines(&out).len(), 22, "step(1) and 10 more, entry and return");
    assert_no_leftovers(&bin, "normal end", before);
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs the test hooks: cargo test --features test-hooks")]
fn error_in_the_middle_of_attaching() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = last_program_id();
    let bin = lifecycle();
    let dir = bin.parent().unwrap();
    // Probe 0 (uprobe step) attaches, probe 1 (its uretprobe) fails.
    let out = trace_command()
        .args(["-u", "lc_step", "-s", "open", "./lifecycle", "many", "10"])
        .env("TRACE_TEST_FAIL_ATTACH", "1")
        .current_dir(dir)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("attaching uretprobe:lc_step") && err.contains("injected"), "{err}");
    assert!(!err.contains("Attaching"), "nothing is announced: {err}");
    assert!(out.stdout.is_empty(), "the command never ran");
    assert_no_leftovers(&bin, "error mid-attach", before);
}

/// The tracer gets a signal while the command sleeps: the signal goes to the
/// command, the events already made are printed, and the exit status says so.
fn signal_case(sig: i32, name: &str, what: &str) {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = last_program_id();
    let bin = lifecycle();
    let (mut child, mut out) = spawn_trace(&["-u", "lc_step", "./lifecycle", "sleep"], bin.parent().unwrap());
    assert_eq!(read_lines(&mut out, 2), ["> lc_step", "< lc_step"]);
    send_signal(&child, nix::sys::signal::Signal::try_from(sig).unwrap());
    let status = wait_timeout(&mut child, Duration::from_secs(10), name);
    let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert_eq!(status.code(), Some(128 + sig), "{err}");
    assert!(err.contains(&format!("the traced command ended: {what} ({name})")), "{err}");
    assert_no_leftovers(&bin, name, before);
}

#[test]
fn sigint_to_the_tracer() {
    signal_case(libc::SIGINT, "SIGINT", "Interrupt");
}

#[test]
fn sigterm_to_the_tracer() {
    signal_case(libc::SIGTERM, "SIGTERM", "Terminated");
}

#[test]
fn sighup_to_the_tracer() {
    signal_case(libc::SIGHUP, "SIGHUP", "Hangup");
}

#[test]
fn the_traced_program_crashes() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = last_program_id();
    let bin = lifecycle();
    let out = trace(&["-u", "lc_step", "./lifecycle", "crash"], bin.parent().unwrap());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(128 + libc::SIGSEGV), "{err}");
    assert!(err.contains("the traced command ended: Segmentation fault (SIGSEGV)"), "{err}");
    assert_eq!(stdout_lines(&out), ["> lc_step", "< lc_step"]);
    assert_no_leftovers(&bin, "crash", before);
}

#[test]
fn stdout_closed_by_the_reader() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = last_program_id();
    let bin = lifecycle();
    let (mut child, mut out) =
        spawn_trace(&["-u", "lc_step", "./lifecycle", "many", "300000"], bin.parent().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(first, "> lc_step\n");
    drop(out); // like `| head -1`
    let status = wait_timeout(&mut child, Duration::from_secs(30), "stdout closed");
    assert_eq!(status.code(), Some(0), "the command's own status");
    assert_no_leftovers(&bin, "stdout closed", before);
}

/// The tracer killed (SIGKILL: no cleanup of ours runs) while its command is
/// still held before exec: the kernel removes the probes with the tracer's file
/// descriptors, and the held command dies with it instead of waiting forever.
#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs the test hooks: cargo test --features test-hooks")]
fn tracer_killed_while_the_command_is_held() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = last_program_id();
    let bin = lifecycle();
    // Killed if an assertion fails before the test kills it (it stops itself).
    let mut tracer = KillOnDrop(
        trace_command()
            .args(["-u", "lc_step", "./lifecycle", "many", "10"])
            .env("TRACE_TEST_STOP_BEFORE_RELEASE", "1")
            .current_dir(bin.parent().unwrap())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let tracer_pid = tracer.id();
    let stat = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let start = Instant::now();
    // Wait until the tracer has stopped itself (state T).
    while !stat(tracer_pid).contains(") T ") {
        assert!(start.elapsed() < Duration::from_secs(10), "the tracer never stopped");
        std::thread::sleep(Duration::from_millis(20));
    }
    let children = std::fs::read_to_string(format!("/proc/{tracer_pid}/task/{tracer_pid}/children")).unwrap();
    let held: u32 = children.split_whitespace().next().expect("the held command").parse().unwrap();
    tracer.kill().unwrap();
    tracer.wait().unwrap();
    let start = Instant::now();
    while !stat(held).is_empty() && !stat(held).contains(") Z ") {
        assert!(start.elapsed() < Duration::from_secs(5), "held command {held} survived: {}", stat(held));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_no_leftovers(&bin, "tracer killed while the command was held", before);
}

/// How long trace may take to end after a stop signal.
const PROMPT: Duration = Duration::from_secs(2);

/// The signals that ask trace to stop, with their names.
const STOPS: [(i32, &str); 3] =
    [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM"), (libc::SIGHUP, "SIGHUP")];

/// A tracer started with these arguments and environment, its stdout and
/// stderr piped; returned once `env` (see trace_command) has become trace, so
/// that a signal sent at once reaches trace, not `env` (which, in a background
/// job, still ignores SIGINT).
fn spawn_with(args: &[&str], envs: &[(&str, &str)], dir: &Path) -> KillOnDrop {
    let mut child = KillOnDrop(
        trace_command()
            .args(args)
            .envs(envs.iter().copied())
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let exe = format!("/proc/{}/exe", child.id());
    let trace = std::fs::canonicalize(TRACE).unwrap();
    let start = Instant::now();
    while std::fs::read_link(&exe).ok().as_ref() != Some(&trace) {
        // A trace that ended at once (a refusal) is a zombie: no exe to see.
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "env never became trace");
        std::thread::sleep(Duration::from_micros(200));
    }
    child
}

fn sig(s: i32) -> nix::sys::signal::Signal {
    nix::sys::signal::Signal::try_from(s).unwrap()
}

/// `exit()` in BEGIN with a command: the command never runs (it is killed
/// held) and trace ends at once with 0, as bpftrace does.
#[test]
fn exit_in_begin_kills_the_held_command_and_ends_at_once() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = build_file_io("begin-exit");
    let mut child = spawn_with(&["-e", "BEGIN { printf(\"hi\\n\"); exit(); }", "-c", "./file-io"], &[], &dir);
    let status = wait_timeout(&mut child, PROMPT, "exit() in BEGIN");
    let out = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(out.lines().next(), Some("hi"), "{out}");
    assert!(!dir.join("output.txt").exists(), "file-io ran after exit() in BEGIN");
    assert_eq!(processes_of(&dir.join("file-io")), Vec::<u32>::new(), "file-io left held");
}

/// `exit()` in a probe while the command sleeps: the trace is over, trace
/// waits for the command, and a stop signal still reaches it.
#[test]
fn after_exit_in_a_probe_signals_reach_the_command() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bin = lifecycle();
    for (s, name) in STOPS {
        let before = last_program_id();
        let script = "uprobe:./lifecycle:lc_step { printf(\"step\\n\"); exit(); }";
        let mut child = spawn_with(&["-e", script, "-c", "./lifecycle sleep"], &[], bin.parent().unwrap());
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        assert_eq!(read_lines(&mut out, 1), ["step"], "{name}");
        std::thread::sleep(Duration::from_millis(200)); // trace now waits for the command
        send_signal(&child, sig(s));
        let status = wait_timeout(&mut child, PROMPT, name);
        let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
        assert_eq!(status.code(), Some(128 + s), "{name}: the command's end: {err}");
        assert!(err.contains(&format!("({name})")), "{name}: {err}");
        assert_no_leftovers(&bin, name, before);
    }
}

/// `-f` on a command that leaves a daemon (setsid, so no terminal signal
/// reaches it): a stop signal ends the trace once the command has ended, and
/// leaves the daemon alone.
#[test]
fn follow_ends_on_a_signal_though_a_daemon_lives_on() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bin = lifecycle();
    let dir = bin.parent().unwrap();
    for (s, name) in STOPS {
        let before = last_program_id();
        let mut child = spawn_with(&["-f", "-u", "lc_step", "./lifecycle", "daemon"], &[], dir);
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        // The command's call and the daemon's, each with its thread id.
        let first = read_lines(&mut out, 4);
        assert!(first.iter().all(|l| l.ends_with("> lc_step") || l.ends_with("< lc_step")), "{first:?}");
        std::thread::sleep(Duration::from_millis(200)); // the command has ended; the daemon sleeps
        let daemons = processes_of(&bin);
        assert_eq!(daemons.len(), 1, "{name}: the daemon runs");
        send_signal(&child, sig(s));
        let status = wait_timeout(&mut child, PROMPT, name);
        assert_eq!(status.code(), Some(0), "{name}: the command's own status");
        assert_eq!(processes_of(&bin), daemons, "{name}: the daemon is not trace's to stop");
        for pid in daemons {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(100));
        assert_no_leftovers(&bin, name, before);
    }
}

/// A reader that stops reading (a terminal stopped with Ctrl-S, a stuck
/// pipe): trace blocks in write(2) as any program does, but a stop signal
/// ends it, and it says how much of the trace was not written.
#[test]
fn a_stalled_reader_does_not_hold_a_stop_signal() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bin = lifecycle();
    for (s, name) in STOPS {
        let before = last_program_id();
        let mut child =
            spawn_with(&["-u", "lc_step", "./lifecycle", "many", "100000000"], &[], bin.parent().unwrap());
        wait_for_announcement(&mut child);
        // Nobody reads stdout: the pipe fills and trace waits in write(2).
        let wchan = format!("/proc/{}/wchan", child.id());
        let start = Instant::now();
        while !std::fs::read_to_string(&wchan).unwrap_or_default().contains("pipe_write") {
            assert!(start.elapsed() < Duration::from_secs(20), "{name}: trace never blocked writing");
            std::thread::sleep(Duration::from_millis(20));
        }
        send_signal(&child, sig(s));
        let status = wait_timeout(&mut child, PROMPT, name);
        let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
        assert_eq!(status.code(), Some(128 + s), "{name}: {err}");
        assert!(err.contains("bytes of the trace were not written"), "{name}: {err}");
        assert_no_leftovers(&bin, name, before);
    }
}

/// A stop signal at any moment: before the probes are attached, while they
/// are, while the command is held, while events pour in. trace ends within
/// PROMPT each time and leaves nothing behind.
#[test]
fn a_stop_signal_at_every_stage_ends_trace_promptly() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bin = lifecycle();
    let dir = bin.parent().unwrap();
    for (s, name) in STOPS {
        // Start-up stages, by delay after the start (a start-up takes ~20 ms).
        for delay_ms in [0, 1, 2, 4, 7, 10, 15, 20, 30, 50, 80, 150] {
            let case = format!("{name} {delay_ms} ms after the start");
            let before = last_program_id();
            let mut child = spawn_with(&["-u", "lc_step", "./lifecycle", "sleep"], &[], dir);
            std::thread::sleep(Duration::from_millis(delay_ms));
            send_signal(&child, sig(s));
            let status = wait_timeout(&mut child, PROMPT, &case);
            // Killed by the signal itself before the handlers are in place, or
            // reporting the command's end by it after.
            let by_signal = std::os::unix::process::ExitStatusExt::signal(&status) == Some(s);
            assert!(by_signal || status.code() == Some(128 + s), "{case}: {status:?}");
            assert_no_leftovers(&bin, &case, before);
        }
        if cfg!(feature = "test-hooks") {
            // Held: trace stops itself with the command held (a test hook), then
            // gets the signal.
            let case = format!("{name} while the command is held");
            let before = last_program_id();
            let mut child = spawn_with(
                &["-u", "lc_step", "./lifecycle", "sleep"],
                &[("TRACE_TEST_STOP_BEFORE_RELEASE", "1")],
                dir,
            );
            let stat = format!("/proc/{}/stat", child.id());
            let start = Instant::now();
            while !std::fs::read_to_string(&stat).unwrap_or_default().contains(") T ") {
                assert!(start.elapsed() < Duration::from_secs(10), "{case}: the tracer never stopped");
                std::thread::sleep(Duration::from_millis(10));
            }
            send_signal(&child, sig(s));
            send_signal(&child, nix::sys::signal::Signal::SIGCONT);
            let status = wait_timeout(&mut child, PROMPT, &case);
            assert_eq!(status.code(), Some(128 + s), "{case}");
            assert_no_leftovers(&bin, &case, before);
        }
        // Draining: events pour in when the signal comes.
        let case = format!("{name} while events pour in");
        let before = last_program_id();
        let (mut child, mut out) = spawn_trace(&["-u", "lc_step", "./lifecycle", "many", "100000000"], dir);
        assert_eq!(read_lines(&mut out, 2), ["> lc_step", "< lc_step"], "{case}");
        let reader = std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        std::thread::sleep(Duration::from_millis(100));
        send_signal(&child, sig(s));
        let status = wait_timeout(&mut child, PROMPT, &case);
        assert_eq!(status.code(), Some(128 + s), "{case}");
        reader.join().unwrap().unwrap();
        assert_no_leftovers(&bin, &case, before);
    }
}

/// `nohup trace ...`: SIGHUP inherited as ignored stays ignored, for trace and
/// for the command; other signals still stop it.
#[test]
fn sighup_inherited_as_ignored_stays_ignored() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = last_program_id();
    let bin = lifecycle();
    let mut child = KillOnDrop(
        Command::new("env")
            .args([
                "--default-signal=INT,TERM",
                "--ignore-signal=HUP",
                TRACE,
                "-u",
                "lc_step",
                "./lifecycle",
                "sleep",
            ])
            .current_dir(bin.parent().unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    assert_eq!(read_lines(&mut out, 2), ["> lc_step", "< lc_step"]);
    let command = processes_of(&bin);
    assert_eq!(command.len(), 1);
    let ignored = std::fs::read_to_string(format!("/proc/{}/status", command[0])).unwrap();
    let mask = ignored.lines().find_map(|l| l.strip_prefix("SigIgn:")).unwrap().trim();
    let mask = u64::from_str_radix(mask, 16).unwrap();
    assert_ne!(mask & (1 << (libc::SIGHUP - 1)), 0, "the command inherits SIGHUP ignored");
    send_signal(&child, nix::sys::signal::Signal::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "trace acted on an ignored SIGHUP");
    assert_eq!(processes_of(&bin), command, "the command got an ignored SIGHUP");
    send_signal(&child, nix::sys::signal::Signal::SIGTERM);
    let status = wait_timeout(&mut child, PROMPT, "nohup");
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    assert_no_leftovers(&bin, "nohup", before);
}

/// A script's background job (`trace --watch ./prog & ... kill -INT $!`)
/// inherits SIGINT ignored from its shell; SIGINT must still stop trace.
#[test]
fn sigint_inherited_as_ignored_still_stops_trace() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = last_program_id();
    let bin = lifecycle();
    let mut child = KillOnDrop(
        Command::new("env")
            .args(["--default-signal=HUP,TERM", "--ignore-signal=INT", TRACE, "--watch", "./lifecycle"])
            .current_dir(bin.parent().unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_for_announcement(&mut child);
    send_signal(&child, nix::sys::signal::Signal::SIGINT);
    let status = wait_timeout(&mut child, PROMPT, "SIGINT inherited ignored");
    assert_eq!(status.code(), Some(0), "--watch ends with 0 on Ctrl-C");
    assert_no_leftovers(&bin, "SIGINT inherited ignored", before);
}

/// stderr that cannot be written (`2>/dev/full`, a hung-up terminal): trace's
/// messages are dropped, not fatal (eprintln! panicked: SIGABRT).
#[test]
fn stderr_that_cannot_be_written_is_not_fatal() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = last_program_id();
    let bin = lifecycle();
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = trace_command()
        .args(["-u", "lc_step", "./lifecycle", "many", "3"])
        .current_dir(bin.parent().unwrap())
        .stderr(Stdio::from(full))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", out.status);
    assert_eq!(stdout_lines(&out).len(), 8, "lc_step(1) and 3 more, entry and return");
    assert_no_leftovers(&bin, "stderr to /dev/full", before);
}

/// stdout that cannot be written (`>/dev/full`): the trace stops, as after a
/// closed pipe, and the command runs to its end, waited for (it was orphaned);
/// trace then says why and exits 74.
#[test]
fn stdout_that_cannot_be_written_stops_the_trace_not_the_command() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = last_program_id();
    let bin = lifecycle();
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let start = Instant::now();
    let out = trace_command()
        .args(["-u", "lc_step", "./lifecycle", "tick", "10"])
        .current_dir(bin.parent().unwrap())
        .stdout(Stdio::from(full))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(74), "{err}");
    assert!(err.contains("No space left on device") && err.contains("the command runs on"), "{err}");
    // tick 10 sleeps 50 ms ten times: trace waited for it.
    assert!(start.elapsed() >= Duration::from_millis(450), "trace did not wait: {:?}", start.elapsed());
    assert_no_leftovers(&bin, "stdout to /dev/full", before);
}

/// A script whose BEGIN output cannot be written (`>/dev/full`) ends at once
/// with the write error, its held command killed, never run.
#[test]
fn begin_output_that_cannot_be_written_kills_the_held_command() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = last_program_id();
    let bin = lifecycle();
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let mut child = KillOnDrop(
        trace_command()
            .args([
                "-e",
                "BEGIN { printf(\"hi\\n\"); } uprobe:./lifecycle:lc_step { }",
                "-c",
                "./lifecycle sleep",
            ])
            .current_dir(bin.parent().unwrap())
            .stdout(Stdio::from(full))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let status = wait_timeout(&mut child, PROMPT, "BEGIN to /dev/full");
    let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert_eq!(status.code(), Some(74), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert_no_leftovers(&bin, "BEGIN to /dev/full", before);
}

/// A slow reader (`| grep`, ssh) after Ctrl-C: what trace still has to write
/// waits for it, a little at a time, and none of it is given up as stalled.
#[test]
fn a_slow_reader_after_a_stop_signal_still_gets_everything() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = last_program_id();
    let bin = lifecycle();
    let mut child =
        spawn_with(&["-u", "lc_step", "./lifecycle", "many", "100000000"], &[], bin.parent().unwrap());
    wait_for_announcement(&mut child);
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let (mut text, mut buf) = (Vec::new(), vec![0u8; 2 * 1024]);
        loop {
            match out.read(&mut buf) {
                Ok(0) | Err(_) => return text,
                Ok(n) => text.extend_from_slice(&buf[..n]),
            }
            std::thread::sleep(Duration::from_millis(10)); // 200 KB/s: slow, never stalled
        }
    });
    std::thread::sleep(Duration::from_millis(300)); // the pipe is full: trace waits on the reader
    send_signal(&child, nix::sys::signal::Signal::SIGINT);
    let status = wait_timeout(&mut child, Duration::from_secs(60), "slow reader");
    let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    let text = String::from_utf8(reader.join().unwrap()).unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGINT), "{err}");
    assert!(!err.contains("not written"), "a slow reader was taken for a stalled one: {err}");
    assert!(text.ends_with('\n') && text.lines().all(|l| l == "> lc_step" || l == "< lc_step"), "cut output");
    assert_no_leftovers(&bin, "slow reader", before);
}

/// `-p` on a process that exits while trace starts: `lifecycle tick 1` ends
/// about 50 ms after it starts, and each round starts trace a little later, so
/// that the process is gone before trace looks, while it attaches, or once it
/// traces; its parent (a thread here) reaps it at once, as a shell does. Each
/// way trace ends by itself, promptly, and leaves nothing behind.
#[test]
fn a_process_that_exits_while_trace_attaches() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bin = lifecycle();
    let dir = bin.parent().unwrap();
    for round in 0..12u64 {
        let before = last_program_id();
        let mut target = Command::new(&bin).args(["tick", "1"]).spawn().unwrap();
        let pid = target.id().to_string();
        let reaper = std::thread::spawn(move || target.wait());
        std::thread::sleep(Duration::from_millis(5 * round));
        let mut child = spawn_with(&["-p", &pid, "-u", "lc_step"], &[], dir);
        let status = wait_timeout(&mut child, Duration::from_secs(10), "-p on an exiting process");
        let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
        let case = format!("-p on a process exiting {} ms after trace starts: {err}", 50 - 5 * round as i64);
        // Refused (no such process), failed attaching (ESRCH): both 6; or traced until it exited.
        assert!(matches!(status.code(), Some(0 | 6)), "{case}: {status:?}");
        reaper.join().unwrap().unwrap();
        assert_no_leftovers(&bin, &case, before);
    }
}
