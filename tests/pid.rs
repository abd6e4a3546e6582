//! `trace -p PID`: attach to a process that is already running.

mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn attach_to_a_running_process_until_ctrl_c() {
    let bin = build_prog("lifecycle", &[]);
    let mut target = KillOnDrop(Command::new(&bin).args(["tick", "100000"]).spawn().unwrap());
    std::thread::sleep(Duration::from_millis(200));
    let pid = target.id().to_string();
    let (tracer, mut out) = spawn_trace(&["-p", &pid, "-u", "lc_step"], bin.parent().unwrap());
    let lines = read_lines(&mut out, 8);
    // A call already running when the probes attach shows only one half (its
    // entry came before the uretprobe, or its return after the uprobe alone);
    // from the first whole call on, entries and returns alternate.
    let first = lines.windows(2).position(|w| w == ["> lc_step", "< lc_step"]).expect("a whole call");
    assert!(first <= 2, "at most the first call is partial: {lines:?}");
    for pair in lines[first..].chunks_exact(2) {
        assert_eq!(pair, ["> lc_step", "< lc_step"], "{lines:?}");
    }
    send_signal(&tracer, nix::sys::signal::Signal::SIGINT);
    let o = finish(tracer, out);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("Attaching 2 probes..."), "{err}");
    // The process was not harmed: it is still running, untraced.
    assert!(target.try_wait().unwrap().is_none(), "the traced process survives the tracer");
}

#[test]
fn the_trace_ends_when_the_process_exits() {
    let bin = build_prog("lifecycle", &[]);
    let mut target = KillOnDrop(Command::new(&bin).args(["tick", "10"]).spawn().unwrap());
    let pid = target.id();
    let out = trace_command().args(["-p", &pid.to_string(), "-u", "lc_step"]).output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("process {pid} exited")), "{err}");
    let lines = stdout_lines(&out);
    // As above: a first call caught half-way may show one half only.
    let first = lines.windows(2).position(|w| w == ["> lc_step", "< lc_step"]).expect("a whole call");
    assert!(first <= 1, "{lines:?}");
    let whole = &lines[first..];
    let tail = if whole.len() % 2 == 1 { &whole[..whole.len() - 1] } else { whole };
    assert!(tail.chunks(2).all(|p| p == ["> lc_step", "< lc_step"]), "{lines:?}");
    target.wait().unwrap();
}

/// `-p` with a thread's id (what `top -H` or `ps -L` shows) traces its process:
/// a uprobe link and the `tgids` filter take the process id, and the user is told.
#[test]
fn a_threads_id_traces_its_process() {
    let bin = build_prog("threaded", &["-pthread"]);
    let mut target = KillOnDrop(Command::new(&bin).stdout(std::process::Stdio::piped()).spawn().unwrap());
    let mut tid = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(target.stdout.take().unwrap()), &mut tid)
        .unwrap();
    let (tid, pid) = (tid.trim().to_string(), target.id().to_string());
    assert_ne!(tid, pid, "the ticking thread is not the main thread");
    let (tracer, mut out) = spawn_trace(&["-p", &tid, "-u", "tick"], bin.parent().unwrap());
    let lines = read_lines(&mut out, 6);
    // The ticking thread is not the main one: its lines say its id.
    let (enter, exit) = (format!("[{tid}] > tick"), format!("[{tid}] < tick"));
    let first = lines
        .windows(2)
        .position(|w| w[0] == enter && w[1] == exit)
        .unwrap_or_else(|| panic!("no whole call in {lines:?}"));
    assert!(first <= 2, "at most the first call is partial: {lines:?}");
    send_signal(&tracer, nix::sys::signal::Signal::SIGINT);
    let o = finish(tracer, out);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "trace: {tid} is a thread of process {pid}: tracing the process (all its threads)"
        )),
        "{err}"
    );
    assert!(target.try_wait().unwrap().is_none(), "the traced process survives the tracer");
}

/// The process exits, and its parent reaps it, once the probes are attached
/// but before the trace begins (trace stops itself there: a test hook): trace
/// still sees the exit, says so and ends, instead of waiting for ever.
#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs the test hooks: cargo test --features test-hooks")]
fn a_process_gone_before_the_trace_begins_ends_it() {
    use std::process::Stdio;
    use std::time::Instant;
    let bin = build_prog("lifecycle", &[]);
    let mut target = KillOnDrop(Command::new(&bin).arg("sleep").spawn().unwrap());
    let pid = target.id();
    let mut tracer = KillOnDrop(
        trace_command()
            .args(["-p", &pid.to_string(), "-u", "lc_step"])
            .env("TRACE_TEST_STOP_BEFORE_RELEASE", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stat = format!("/proc/{}/stat", tracer.id());
    let start = Instant::now();
    while !std::fs::read_to_string(&stat).unwrap_or_default().contains(") T ") {
        assert!(start.elapsed() < Duration::from_secs(10), "the tracer never stopped");
        std::thread::sleep(Duration::from_millis(10));
    }
    target.kill().unwrap();
    target.wait().unwrap(); // exited and reaped: the pid names no process now
    send_signal(&tracer, nix::sys::signal::Signal::SIGCONT);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = tracer.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "trace still waits for process {pid}, which exited {:?} ago",
            start.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let err = std::io::read_to_string(tracer.stderr.take().unwrap()).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains(&format!("trace: process {pid} exited")), "{err}");
}

/// A traced process started as `unshare -m` does (a container's processes
/// live in their own mount namespace), with a copy of its program mounted
/// over the program's path there: /proc/PID/exe names that path, which in
/// trace's namespace is another file (same bytes, another inode). Its
/// uprobes would never fire. trace must probe the file the process runs.
#[test]
fn a_process_in_its_own_mount_namespace() {
    let bin = build_prog("lifecycle", &[]);
    let dir = bin.parent().unwrap();
    let inner = dir.join("lifecycle-in-namespace");
    std::fs::copy(&bin, &inner).unwrap();
    let script =
        format!("mount --bind {} {} && exec {} tick 100000", inner.display(), bin.display(), bin.display());
    let target = KillOnDrop(
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .spawn()
            .unwrap(),
    );
    let pid = target.id();
    wait_for_exec(pid, &bin);
    let err = traces_its_calls(pid, dir);
    assert!(
        err.contains(&format!("trace: process {pid} runs {} of another mount namespace", bin.display())),
        "{err}"
    );
}

/// `trace -p PID -u lc_step` for 1.5 s (lifecycle ticks every 50 ms), then
/// Ctrl-C: it must have seen the process's calls. Returns trace's stderr.
fn traces_its_calls(pid: u32, dir: &std::path::Path) -> String {
    let (tracer, out) = spawn_trace(&["-p", &pid.to_string(), "-u", "lc_step"], dir);
    std::thread::sleep(Duration::from_millis(1500));
    send_signal(&tracer, nix::sys::signal::Signal::SIGINT);
    let o = finish(tracer, out);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let lines = stdout_lines(&o);
    assert!(lines.iter().filter(|l| *l == "> lc_step").count() >= 5, "the process's calls: {lines:?}\n{err}");
    err
}

/// The program file of a running process deleted (or replaced by a new build,
/// which unlinks the old one): /proc/PID/exe still leads to the file it runs.
#[test]
fn a_process_whose_program_file_was_deleted() {
    let bin = build_prog("lifecycle", &[]);
    let dir = bin.parent().unwrap();
    let target = KillOnDrop(Command::new(&bin).args(["tick", "100000"]).spawn().unwrap());
    let pid = target.id();
    wait_for_exec(pid, &bin);
    std::fs::remove_file(&bin).unwrap();
    let err = traces_its_calls(pid, dir);
    assert!(err.contains("the file was deleted or replaced since it started"), "{err}");
}

/// Waits until process `pid` runs `bin` (its /proc/PID/exe names it).
fn wait_for_exec(pid: u32, bin: &std::path::Path) {
    let start = std::time::Instant::now();
    while std::fs::read_link(format!("/proc/{pid}/exe")).ok().as_deref() != Some(bin) {
        assert!(start.elapsed() < Duration::from_secs(10), "process {pid} never ran {}", bin.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}
