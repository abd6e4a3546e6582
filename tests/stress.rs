//! Load: over a million events through uprobes; a tiny ring loses events and the
//! loss is reported exactly; the tracer's memory does not grow per event.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The two tests measure the reader's speed: they must not compete for the CPUs.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs trace on `stress N`, counting stdout lines as they arrive and sampling the
/// tracer's resident memory. Returns (lines, stderr, RSS samples in KiB).
fn run(extra: &[&str], n: u64) -> (u64, String, Vec<u64>) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bin = build_prog("stress", &[]);
    let dir = bin.parent().unwrap().to_path_buf();
    let mut child = Command::new(TRACE)
        .args(extra)
        .args(["-u", "tick", "./stress", &n.to_string()])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = 0u64;
    let mut rss = Vec::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        // Indentation is nesting as the reader saw it; with lost records it can
        // drift, so only the text is checked here.
        let text = line.trim();
        if text != "> tick" && text != "< tick" {
            panic!("unexpected line {line:?}");
        }
        lines += 1;
        if lines.is_multiple_of(50_000) {
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                let kb = status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()));
                rss.extend(kb);
            }
        }
        line.clear();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    (lines, stderr(&out), rss)
}

fn lost_count(err: &str) -> u64 {
    err.lines()
        .find(|l| l.contains("events lost"))
        .and_then(|l| l.trim_start_matches("trace: ").split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_million_events_nothing_lost_memory_flat() {
    let n = 500_000;
    let (lines, err, rss) = run(&[], n);
    println!("events: {lines}, lost: {}, RSS samples (KiB): {rss:?}", lost_count(&err));
    assert!(!err.contains("lost"), "nothing may be lost with the default ring: {err}");
    assert_eq!(lines, 2 * n);
    // Flat: the last sample is within 1 MiB of the first taken once tracing ran.
    assert!(rss.len() >= 4, "RSS sampled during the run: {rss:?}");
    let (first, last) = (rss[1], *rss.last().unwrap());
    assert!(last <= first + 1024, "memory grew from {first} KiB to {last} KiB: {rss:?}");
}

#[test]
fn a_tiny_ring_reports_exactly_what_it_lost() {
    let n = 200_000;
    let (lines, err, _) = run(&["--ring-pages", "1"], n);
    let lost = lost_count(&err);
    println!("events shown: {lines}, lost: {lost}");
    assert!(lost > 0, "a one-page ring must overflow: {err}");
    assert_eq!(lines + lost, 2 * n, "shown + lost = generated: {err}");
    assert!(err.contains(&format!("({lines} events shown)")), "{err}");
}
