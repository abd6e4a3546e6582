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
    for _ in 0..6 {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        lines.push(l.trim_end().to_string());
    }
    // It attached between two calls: entries and returns alternate from there.
    assert_eq!(lines, ["> lc_step", "< lc_step", "> lc_step", "< lc_step", "> lc_step", "< lc_step"]);
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
    assert!(!lines.is_empty() && lines.len().is_multiple_of(2), "{lines:?}");
    assert!(lines.chunks(2).all(|p| p == ["> lc_step", "< lc_step"]), "{lines:?}");
    target.wait().unwrap();
}
