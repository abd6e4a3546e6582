//! `trace -p PID`: attach to a process that is already running.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn attach_to_a_running_process_until_ctrl_c() {
    let bin = build_prog("lifecycle", &[]);
    let mut target = Command::new(&bin).args(["tick", "100000"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut tracer = Command::new(TRACE)
        .args(["-p", &target.id().to_string(), "-u", "lc_step"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(tracer.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..8 {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        lines.push(l.trim_end().to_string());
    }
    // A call already running when the probes attach shows only one half (its
    // entry came before the uretprobe, or its return after the uprobe alone);
    // from the first whole call on, entries and returns alternate.
    let first = lines.windows(2).position(|w| w == ["> lc_step", "< lc_step"]).expect("a whole call");
    assert!(first <= 2, "at most the first call is partial: {lines:?}");
    for pair in lines[first..].chunks_exact(2) {
        assert_eq!(pair, ["> lc_step", "< lc_step"], "{lines:?}");
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(tracer.id() as i32), nix::sys::signal::Signal::SIGINT)
        .unwrap();
    let status = tracer.wait().unwrap();
    let mut err = String::new();
    tracer.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("Attaching 2 probes..."), "{err}");
    // The process was not harmed: it is still running, untraced.
    assert!(target.try_wait().unwrap().is_none(), "the traced process survives the tracer");
    target.kill().unwrap();
    target.wait().unwrap();
}

#[test]
fn the_trace_ends_when_the_process_exits() {
    let bin = build_prog("lifecycle", &[]);
    let mut target = Command::new(&bin).args(["tick", "10"]).spawn().unwrap();
    let out = Command::new(TRACE).args(["-p", &target.id().to_string(), "-u", "lc_step"]).output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("process {} exited", target.id())), "{err}");
    let lines = stdout_lines(&out);
    // As above: a first call caught half-way may show one half only.
    let first = lines.windows(2).position(|w| w == ["> lc_step", "< lc_step"]).expect("a whole call");
    assert!(first <= 1, "{lines:?}");
    let whole = &lines[first..];
    let tail = if whole.len() % 2 == 1 { &whole[..whole.len() - 1] } else { whole };
    assert!(tail.chunks(2).all(|p| p == ["> lc_step", "< lc_step"]), "{lines:?}");
    target.wait().unwrap();
}
