//! `trace -l [PATTERN]` against the sources it lists, each read here another
//! way: readelf for ELF files, the tracefs directory for system calls,
//! /proc/kallsyms for kernel functions. Globs here are matched by hand
//! (prefix, substring), not with the tracer's glob code.

mod common;
use common::*;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn list(pattern: &str, dir: &Path) -> Output {
    trace(&["-l", pattern], dir)
}

fn listed(pattern: &str, dir: &Path) -> Vec<String> {
    let out = list(pattern, dir);
    assert!(out.status.success(), "trace -l {pattern}: {}", stderr(&out));
    stdout_lines(&out)
}

/// The names expected, prefixed and sorted as `trace -l` prints them.
fn expected(prefix: &str, names: impl IntoIterator<Item = String>) -> Vec<String> {
    let set: BTreeSet<String> = names.into_iter().map(|n| format!("{prefix}:{n}")).collect();
    set.into_iter().collect()
}

#[test]
fn the_functions_of_a_program() {
    let dir = build_file_io("list-prog");
    assert_eq!(
        listed("./file-io", &dir),
        ["./file-io:native", "./file-io:with_asm", "./file-io:with_syscall"]
    );
    assert_eq!(listed("./file-io:with_*", &dir), ["./file-io:with_asm", "./file-io:with_syscall"]);
    // With a glob every function symbol counts, main included.
    assert_eq!(listed("./file-io:mai?", &dir), ["./file-io:main"]);
    // The static build carries the C library too; without a glob only its own three.
    assert_eq!(
        listed("./file-io-static", &dir),
        ["./file-io-static:native", "./file-io-static:with_asm", "./file-io-static:with_syscall"]
    );
}

/// The x86-64 libc.so.6 of this machine, from `ldconfig -p`.
fn libc_path() -> PathBuf {
    let o = Command::new("ldconfig").arg("-p").output().expect("ldconfig runs");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("libc.so.6 ") && l.contains("x86-64"))
        .expect("libc.so.6 in ldconfig -p");
    PathBuf::from(line.rsplit(" => ").next().unwrap().trim())
}

/// Defined FUNC (not IFUNC) symbols of `readelf --dyn-syms`, versions stripped.
fn dynamic_functions(file: &Path) -> BTreeSet<String> {
    let o = Command::new("readelf").args(["-W", "--dyn-syms"]).arg(file).output().expect("readelf runs");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() >= 8 && w[3] == "FUNC" && w[6] != "UND")
                .then(|| w[7].split('@').next().unwrap().to_string())
        })
        .collect()
}

#[test]
fn the_functions_of_a_library() {
    let dir = temp_dir("list-lib");
    let want = expected("libc", dynamic_functions(&libc_path()).into_iter().filter(|n| n.starts_with("op")));
    assert!(want.contains(&"libc:open".to_string()) && want.contains(&"libc:openat".to_string()), "{want:?}");
    assert_eq!(listed("libc:op*", &dir), want);
    // The names -L accepts for a library all work.
    assert_eq!(listed("c:op*", &dir), expected("c", want.iter().map(|l| l["libc:".len()..].to_string())));
    assert_eq!(listed("libc.so.6:open", &dir), ["libc.so.6:open"]);
}

/// The system calls with a `sys_enter_` tracepoint in tracefs.
fn syscalls() -> Vec<String> {
    let events = std::fs::read_dir("/sys/kernel/tracing/events/syscalls").expect("tracefs is mounted");
    events
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_prefix("sys_enter_").map(str::to_string))
        .collect()
}

#[test]
fn system_calls_from_tracefs() {
    let dir = temp_dir("list-sys");
    let want = expected("syscalls", syscalls().into_iter().filter(|n| n.contains("open")));
    for name in ["syscalls:open", "syscalls:openat", "syscalls:open_by_handle_at"] {
        assert!(want.contains(&name.to_string()), "{want:?}");
    }
    assert_eq!(listed("syscalls:*open*", &dir), want);
}

/// Text symbols of /proc/kallsyms starting with `prefix`.
fn kernel_functions(prefix: &str) -> BTreeSet<String> {
    std::fs::read_to_string("/proc/kallsyms")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() >= 3 && ["t", "T", "w", "W"].contains(&w[1]) && w[2].starts_with(prefix))
                .then(|| w[2].to_string())
        })
        .collect()
}

#[test]
fn kernel_functions_from_kallsyms() {
    let dir = temp_dir("list-kernel");
    let want = expected("kernel", kernel_functions("vfs_"));
    assert!(want.contains(&"kernel:vfs_open".to_string()), "{want:?}");
    assert_eq!(listed("kernel:vfs_*", &dir), want);
    // A bare glob searches system calls and kernel functions.
    assert_eq!(listed("vfs_ope?", &dir), ["kernel:vfs_open"]);
    let mut both = expected("syscalls", syscalls().into_iter().filter(|n| n.starts_with("openat")));
    both.extend(expected("kernel", kernel_functions("openat")));
    both.sort();
    assert!(both.contains(&"syscalls:openat".to_string()), "{both:?}");
    assert_eq!(listed("openat*", &dir), both);
}

#[test]
fn nothing_matched_and_bad_patterns() {
    let dir = temp_dir("list-bad");
    let out = list("syscalls:no_such_call_*", &dir);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr(&out),
        "trace: nothing matches `syscalls:no_such_call_*`; `trace --help` shows the kinds of pattern\n"
    );
    let out = list("./no-such-program", &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("./no-such-program"), "{}", stderr(&out));
    let out = list("no_such_library_xyz:open", &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("trace: no library `no_such_library_xyz`"), "{}", stderr(&out));
}
