//! Under sudo the traced command runs as the user who ran sudo (so the files it
//! makes are theirs, not root's); --as-root keeps root.

mod common;
use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

fn run_as_sudo_user(extra: &[&str]) -> (u32, u32, Vec<String>) {
    let dir = build_file_io("sudo");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = trace_command()
        .args(extra)
        .arg("./file-io")
        .current_dir(&dir)
        .env("SUDO_UID", "65534")
        .env("SUDO_GID", "65534")
        .env("SUDO_USER", "nobody")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let meta = std::fs::metadata(dir.join("output.txt")).unwrap();
    (meta.uid(), meta.gid(), stdout_lines(&out))
}

#[test]
fn the_command_runs_as_the_sudo_user() {
    let (uid, gid, lines) = run_as_sudo_user(&[]);
    assert_eq!((uid, gid), (65534, 65534), "output.txt belongs to the user behind sudo");
    // And it is still traced like any other run.
    assert_lines(&lines, &lab_expected(has_kprobes()), "trace as nobody");
}

#[test]
fn as_root_keeps_root() {
    let (uid, gid, _) = run_as_sudo_user(&["--as-root"]);
    assert_eq!((uid, gid), (0, 0));
}

#[test]
fn without_privileges_trace_says_to_use_sudo() {
    // setpriv (util-linux) drops to nobody with no capabilities.
    let dir = build_file_io("nopriv");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", TRACE, "./file-io"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert!(err.contains("tracing needs root: run it again with sudo"), "{err}");
    assert!(!dir.join("output.txt").exists(), "nothing ran");
}

/// With CAP_BPF and CAP_PERFMON but not root (file capabilities, `setcap`),
/// trace could read any user's processes: it traces only what the user could
/// ptrace, a command it starts or the user's own process, and refuses the
/// rest (exit 77). setpriv gives the capabilities as ambient ones to nobody.
#[test]
fn capabilities_without_root_trace_only_what_the_user_owns() {
    let bin = build_prog("lifecycle", &[]);
    let dir = bin.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(["--inh-caps=+bpf,+perfmon", "--ambient-caps=+bpf,+perfmon", TRACE])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap()
    };
    for args in [&["-p", "1", "-u", "main"][..], &["--watch", "./lifecycle"], &["-e", "BEGIN { exit(); }"]] {
        let out = as_nobody(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(77), "{args:?}: {err}");
        assert!(err.contains("runs as uid 65534, not root"), "{args:?}: {err}");
    }
    let out = as_nobody(&["-u", "lc_step", "./lifecycle", "many", "3"]);
    assert!(out.status.success(), "its own command: {}", stderr(&out));
    assert_eq!(stdout_lines(&out).len(), 8, "lc_step(1) and 3 more, entry and return");
    // tracefs, mounted (trace as root mounts it) but root's only (mode 0700):
    // said so, not "not mounted".
    assert!(trace(&["-l", "syscalls:openat"], dir).status.success());
    let out = as_nobody(&["-s", "openat", "./lifecycle", "many", "3"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("tracefs is readable by root only") && !err.contains("not mounted"), "{err}");
}
