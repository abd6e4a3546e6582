//! Load: over a million events through uprobes; a tiny ring loses events and the
//! loss is reported exactly; the tracer's memory does not grow per event.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::Mutex;

/// The two tests measure the reader's speed: they must not compete for the CPUs.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs trace on `stress N` with its output going to a file (as `trace > out`
/// would: a slow pipe reader would stall the tracer), sampling the tracer's
/// resident memory meanwhile. `perf_rings`: force the per-CPU perf rings
/// (TRACE_PERF_RINGS=1) instead of this kernel's BPF ring buffer. Returns
/// (lines, stderr, RSS samples in KiB).
fn run_with(extra: &[&str], n: u64, perf_rings: bool) -> (u64, String, Vec<u64>) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bin = build_prog("stress", &[]);
    let dir = bin.parent().unwrap().to_path_buf();
    let out_path = dir.join("trace.out");
    let child = trace_command()
        .env("TRACE_PERF_RINGS", if perf_rings { "1" } else { "0" })
        .args(extra)
        .args(["-u", "tick", "./stress", &n.to_string()])
        .current_dir(&dir)
        .stdout(Stdio::from(std::fs::File::create(&out_path).unwrap()))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let sampler = std::thread::spawn(move || {
        let mut rss = Vec::new();
        while let Ok(status) = std::fs::read_to_string(&status_path) {
            let kb = status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()));
            rss.extend(kb);
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        rss
    });
    let out = child.wait_with_output().unwrap();
    let rss = sampler.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut lines = 0u64;
    for line in BufReader::new(std::fs::File::open(&out_path).unwrap()).lines() {
        let line = line.unwrap();
        // Nesting comes from the kernel, so it stays right when records are lost.
        assert!(line == "> tick" || line == "< tick", "unexpected line {line:?}");
        lines += 1;
    }
    (lines, stderr(&out), rss)
}

fn run(extra: &[&str], n: u64) -> (u64, String, Vec<u64>) {
    run_with(extra, n, false)
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
    let (small_lines, small_err, small_rss) = run(&[], 100_000);
    let n = 500_000;
    let (lines, err, rss) = run(&[], n);
    let (small_peak, peak) = (small_rss.iter().max().copied(), rss.iter().max().copied());
    println!(
        "events: {lines}, lost: {}, peak RSS: {peak:?} KiB ({small_peak:?} KiB for {small_lines})",
        lost_count(&err)
    );
    assert!(
        !err.contains("lost") && !small_err.contains("lost"),
        "nothing may be lost with the default ring: {err}"
    );
    assert_eq!(lines, 2 * n);
    assert_eq!(small_lines, 200_000);
    // No growth per event. The peak depends on how far the reader fell behind:
    // at most the two rings' worth of decoded records wait in the merge heap
    // (2 x 1 MiB / 112 B = 18,700 records of ~150 B: under 3 MiB). Beyond that,
    // 800,000 more events may not cost memory; a leak of even 6 bytes per event
    // would exceed this bound.
    let (small_peak, peak) = (small_peak.unwrap(), peak.unwrap());
    assert!(peak <= small_peak + 4096, "peak RSS {small_peak} KiB for 200k events, {peak} KiB for 1M");
}

#[test]
fn a_tiny_ring_reports_exactly_what_it_lost() {
    tiny_ring(false);
}

#[test]
fn tiny_perf_rings_report_exactly_what_they_lost() {
    tiny_ring(true);
}

fn tiny_ring(perf_rings: bool) {
    let n = 200_000;
    let (lines, err, _) = run_with(&["--ring-pages", "1"], n, perf_rings);
    let lost = lost_count(&err);
    println!("events shown: {lines}, lost: {lost}");
    assert!(lost > 0, "a one-page ring must overflow: {err}");
    assert_eq!(lines + lost, 2 * n, "shown + lost = generated: {err}");
    assert!(err.contains(&format!("({lines} events shown)")), "{err}");
}
