//! Every mistake a user can make gets a message naming what was typed and the
//! next step, a distinct non-zero exit status, nothing attached and nothing left
//! running. The README's table lists the same cases.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A directory with file-io, a stripped copy, a script, a text file marked
/// executable and file-io.c.
fn workbench() -> PathBuf {
    let dir = build_file_io("bad");
    std::fs::copy(dir.join("file-io"), dir.join("stripped")).unwrap();
    assert!(Command::new("strip").arg(dir.join("stripped")).status().unwrap().success());
    std::fs::write(dir.join("script.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::write(dir.join("notelf"), "hello\n").unwrap();
    for f in ["script.sh", "notelf"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// Runs trace, checks the exit status, that every `want` is in stderr, and that
/// nothing was attached or run.
fn refused(dir: &Path, args: &[&str], code: i32, want: &[&str]) -> Output {
    let _ = std::fs::remove_file(dir.join("output.txt"));
    let out = trace(args, dir);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "trace {args:?}: {err}");
    for w in want {
        assert!(err.contains(w), "trace {args:?}: stderr lacks {w:?}: {err}");
    }
    assert!(!err.contains("Attaching"), "trace {args:?} attached: {err}");
    assert!(out.stdout.is_empty(), "trace {args:?} printed events");
    assert!(!dir.join("output.txt").exists(), "trace {args:?}: file-io ran");
    out
}

#[test]
fn commands_that_cannot_be_traced() {
    let d = workbench();
    refused(&d, &["./nope"], 127, &["command `./nope` not found", "check the spelling"]);
    refused(&d, &["file-io"], 127, &["`file-io` not found in $PATH", "write ./file-io"]);
    refused(&d, &["./file-io.c"], 126, &["./file-io.c is not executable", "chmod +x ./file-io.c"]);
    refused(&d, &["./notelf"], 126, &["./notelf is not an ELF executable"]);
    refused(
        &d,
        &["./script.sh"],
        126,
        &["./script.sh is a script run by `/bin/sh`", "trace -s open -- /bin/sh ./script.sh"],
    );
}

#[test]
fn functions_that_are_not_there() {
    let d = workbench();
    refused(
        &d,
        &["-u", "nativ", "./file-io"],
        2,
        &["no function `nativ` in ./file-io", "did you mean `native`?"],
    );
    refused(&d, &["-u", "native", "./stripped"], 2, &["no function `native` in ./stripped", "stripped"]);
    refused(&d, &["./stripped"], 2, &["./stripped", "stripped", "-L", "-s"]);
    refused(
        &d,
        &["-u", "open", "./file-io"],
        2,
        &["`open` is not defined in ./file-io", "libc.so.6", "-L open"],
    );
    refused(&d, &["-L", "strlen", "./file-io"], 2, &["`strlen`", "STT_GNU_IFUNC", "resolver"]);
    refused(&d, &["-L", "nosuchfn", "./file-io"], 2, &["`nosuchfn`", "libc.so.6", "-L LIBRARY:nosuchfn"]);
}

#[test]
fn kernel_names_that_are_not_there() {
    let d = workbench();
    refused(
        &d,
        &["-k", "vfs_opn", "./file-io"],
        2,
        &["no kernel function `vfs_opn`", "did you mean `vfs_open`?"],
    );
    refused(&d, &["-s", "opn", "./file-io"], 2, &["unknown system call `opn`", "did you mean `open`?"]);
}

#[test]
fn processes_that_cannot_be_traced() {
    let d = workbench();
    refused(&d, &["-p", "999999999"], 6, &["no process with pid 999999999", "pgrep"]);
    refused(&d, &["-p", "2"], 6, &["process 2 is a kernel thread"]);
    // A zombie: `sleep 0.1` ends, and its parent (sh, become `sleep 10`) never
    // collects it. It was called a kernel thread.
    let parent = KillOnDrop(Command::new("sh").args(["-c", "sleep 0.1 & exec sleep 10"]).spawn().unwrap());
    let children = format!("/proc/{0}/task/{0}/children", parent.id());
    let start = std::time::Instant::now();
    let zombie = loop {
        let kids = std::fs::read_to_string(&children).unwrap_or_default();
        let zombie = kids.split_whitespace().find(|k| {
            let stat = std::fs::read_to_string(format!("/proc/{k}/stat")).unwrap_or_default();
            stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z'))
        });
        if let Some(z) = zombie {
            break z.to_string();
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "no zombie appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let msg = format!("process {zombie} has exited (a zombie");
    refused(&d, &["-p", &zombie], 6, &[&msg]);
}

#[test]
fn command_line_mistakes() {
    let d = workbench();
    refused(&d, &[], 2, &["nothing to trace", "sudo trace ./file-io"]);
    refused(&d, &["-Z", "./file-io"], 2, &["unexpected argument '-Z'"]);
    refused(&d, &["--ring-pages", "3", "./file-io"], 2, &["`3` is not a power of two"]);
}

#[test]
fn only_kernel_functions_on_a_kernel_without_kprobes() {
    if has_kprobes() {
        println!("this kernel has kprobes: the case is the QEMU matrix's, not this host's");
        return;
    }
    let d = workbench();
    refused(&d, &["-k", "vfs_open", "./file-io"], 3, &["nothing left to trace", "vfs_open", "kprobes"]);
}

#[test]
fn tracefs_missing_and_not_mountable() {
    // In a private mount namespace: tracefs unmounted and /sys/kernel made a
    // read-only empty tmpfs, so there is nowhere to mount it.
    let d = workbench();
    let script = format!(
        "umount -l /sys/kernel/tracing 2>/dev/null; umount -l /sys/kernel/debug 2>/dev/null; \
         mount -t tmpfs -o ro,size=4k none /sys/kernel && exec {TRACE} -s open ./file-io"
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .current_dir(&d)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("tracefs"), "{err}");
    assert!(err.contains("/sys/kernel/tracing"), "{err}");
    assert!(!err.contains("Attaching"), "{err}");
}

/// A FIFO (or a directory) named as the program: a clear refusal, at once.
/// Opening a FIFO to read it waits for a writer: `trace -l ./fifo` used to
/// hang there, and `trace ./fifo` said there was no such file.
#[test]
fn files_that_are_no_programs() {
    let d = workbench();
    assert!(Command::new("mkfifo").arg(d.join("fifo")).status().unwrap().success());
    for (args, code, want) in [
        (&["-l", "./fifo"][..], 2, "./fifo is not a regular file"),
        (&["-l", "./fifo:*"][..], 2, "./fifo is not a regular file"),
        (&["./fifo"][..], 126, "./fifo is not a regular file (a directory, a FIFO or a device)"),
        (&["-u", "native", "./fifo"][..], 126, "./fifo is not a regular file"),
        (&["/"][..], 126, "/ is not a regular file"),
    ] {
        // `timeout` kills a trace that hangs (status 124).
        let out = Command::new("timeout").arg("10").arg(TRACE).args(args).current_dir(&d).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "trace {args:?}: {err}");
        assert!(err.contains(want), "trace {args:?}: {err}");
    }
}

/// trace with `args`, run by sh under `ulimit LIMIT` (`-n 16`, `-v 5000`).
fn under_ulimit(dir: &Path, limit: &str, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit {limit} && exec \"$0\" \"$@\""))
        .arg(TRACE)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// Out of file descriptors (`ulimit -n 16`): said so, with the way out, never
/// called a verifier rejection and a bug in trace (exit 70).
#[test]
fn out_of_file_descriptors() {
    let d = workbench();
    for limit in [10, 14, 16] {
        let out = under_ulimit(&d, &format!("-n {limit}"), &["./file-io"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(5), "ulimit -n {limit}: {err}");
        assert!(
            err.contains("out of file descriptors") && err.contains("ulimit -n"),
            "ulimit -n {limit}: {err}"
        );
        assert!(!err.contains("verifier") && !err.contains("bug in trace"), "ulimit -n {limit}: {err}");
        assert!(!d.join("output.txt").exists(), "ulimit -n {limit}: file-io ran");
    }
}

/// A library that cannot be mapped (a small `ulimit -v`) is reported as such,
/// not as "the program needs no shared libraries".
#[test]
fn a_library_that_cannot_be_opened_is_named() {
    let d = workbench();
    for limit in [4000, 5000, 6000] {
        let out = under_ulimit(&d, &format!("-v {limit}"), &["-L", "open", "./file-io"]);
        let err = stderr(&out);
        assert!(!err.contains("needs no shared libraries"), "ulimit -v {limit}: {err}");
        if out.status.code() == Some(2) {
            assert!(
                err.contains("cannot use library") && err.contains("libc.so.6"),
                "ulimit -v {limit}: {err}"
            );
        }
    }
}
