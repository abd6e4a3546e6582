//! `sudo trace ./file-io` against the real kernel: the lab's output, line by line.

mod common;
use common::*;

fn check_lab_run(binary: &str, tag: &str) {
    let dir = build_file_io(tag);
    assert_lab_run(&dir, binary, &format!("trace {binary}"));
}

/// `trace BINARY` in `dir` prints the lab's output, line for line, and file-io did
/// its work there. `what` names the build in failure messages.
fn assert_lab_run(dir: &std::path::Path, binary: &str, what: &str) {
    assert_lab_output(&trace(&[binary], dir), dir, what);
}

/// `out` is the lab's output of a `trace ./file-io` run in `dir`.
fn assert_lab_output(out: &std::process::Output, dir: &std::path::Path, what: &str) {
    let err = stderr(out);
    assert!(out.status.success(), "{what} failed: {err}");
    let kprobes = has_kprobes();
    assert_lines(&stdout_lines(out), &lab_expected(kprobes), what);
    let attaching: Vec<&str> = err.lines().filter(|l| l.starts_with("Attaching")).collect();
    if kprobes {
        assert_eq!(attaching, ["Attaching 14 probes..."], "{what}: stderr: {err}");
    } else {
        assert_eq!(attaching, ["Attaching 10 probes..."], "{what}: stderr: {err}");
        let skip: Vec<&str> = err.lines().filter(|l| l.contains("skipping kernel functions")).collect();
        assert_eq!(skip.len(), 1, "{what}: one skip notice expected: {err}");
        assert!(skip[0].contains("vfs_open, ext4_file_open"), "{what}: skip notice names both: {err}");
        assert!(skip[0].contains("kprobe"), "{what}: and says why: {err}");
    }
    // file-io really ran, in its directory, and did its work.
    let written = std::fs::read_to_string(dir.join("output.txt")).unwrap();
    assert_eq!(written, "hello from file-io\n", "{what}");
}

/// The BPF ring buffer (this kernel's default) and the per-CPU perf rings
/// (TRACE_PERF_RINGS=1, what kernels before 5.8 get) give the same trace.
#[test]
fn lab_trace_through_the_ring_buffer_and_the_perf_rings() {
    let dir = build_file_io("lab-rings");
    let kprobes = has_kprobes();
    for forced in ["0", "1"] {
        let out = trace_command()
            .env("TRACE_PERF_RINGS", forced)
            .args(["--explain", "./file-io"])
            .current_dir(&dir)
            .output()
            .expect("trace runs");
        let err = stderr(&out);
        assert!(out.status.success(), "TRACE_PERF_RINGS={forced}: {err}");
        assert_lines(&stdout_lines(&out), &lab_expected(kprobes), &format!("TRACE_PERF_RINGS={forced}"));
        // And the records really took the way asked for.
        let events = err.lines().find(|l| l.contains("map_name=\"events\"")).unwrap_or_default();
        let want = if forced == "1" { "map_type=PERF_EVENT_ARRAY" } else { "map_type=RINGBUF" };
        assert!(events.contains(want), "TRACE_PERF_RINGS={forced}: {events}");
    }
}

#[test]
fn lab_trace_of_pie_file_io() {
    check_lab_run("./file-io", "lab-pie");
}

#[test]
fn lab_trace_of_static_file_io() {
    check_lab_run("./file-io-static", "lab-static");
}

/// The static file-io where no C library is installed (a minimal VM or
/// initramfs, a container, a musl distribution): a root holding nothing but
/// the static trace and file-io-static, with /proc, /sys and tracefs. Which
/// functions are the program's is read from the program, not from the
/// machine's libc.so.6 (there is none): the lab's probes, not the C library's
/// hundreds (`-l` listed 144 functions here before).
#[test]
fn lab_trace_of_static_file_io_where_no_c_library_is_installed() {
    let dir = build_file_io("lab-no-libc");
    let root = dir.join("root");
    for d in ["proc", "sys"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(TRACE, root.join("trace")).unwrap();
    std::fs::copy(dir.join("file-io-static"), root.join("file-io-static")).unwrap();
    // In a mount namespace of its own, so that the mounts go with it.
    let in_root = |args: &str| {
        let script = format!(
            "mount -t proc proc proc && mount -t sysfs sysfs sys && \
             mount -t tracefs tracefs sys/kernel/tracing && exec chroot . {args}"
        );
        std::process::Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .current_dir(&root)
            .output()
            .expect("unshare runs")
    };
    let listed = in_root("/trace -l /file-io-static");
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert_eq!(
        stdout_lines(&listed),
        ["/file-io-static:native", "/file-io-static:with_asm", "/file-io-static:with_syscall"]
    );
    assert_lab_output(
        &in_root("/trace /file-io-static"),
        &root,
        "trace /file-io-static in a root without libc",
    );
}

#[test]
fn lab_trace_of_non_pie_file_io() {
    check_lab_run("./file-io-nopie", "lab-nopie");
}

/// Students build file-io themselves, mostly as `gcc -g -o file-io file-io.c`
/// (that is -O0): at every optimisation level, with and without debug
/// information, static and non-PIE, the program must define no function but the
/// lab's, so that `trace ./file-io` (every function of the program) prints the
/// lab's output. A helper function in file-io.c is inlined at -O2 but is a real
/// function at -O0, -O1 and -Os, and its `> helper` lines would show.
#[test]
fn lab_trace_of_file_io_built_by_hand_at_each_optimisation_level() {
    let builds: &[&[&str]] = &[
        &["-O0", "-g"],
        &["-O1", "-g"],
        &["-O2", "-g"],
        &["-Os", "-g"],
        &["-O3", "-g"],
        &["-O0"],
        &["-O0", "-g", "-static"],
        &["-O2", "-g", "-static"],
        &["-O0", "-g", "-no-pie", "-fno-pie"],
        &["-O2", "-g", "-no-pie", "-fno-pie"],
    ];
    let src = repo().join("file-io/file-io.c");
    for flags in builds {
        let dir = temp_dir("lab-gcc");
        // Named file-io, as the lab's program: the kernel lines name its command.
        let out = std::process::Command::new("gcc")
            .args(*flags)
            .args(["-o", "file-io"])
            .arg(&src)
            .current_dir(&dir)
            .output()
            .expect("gcc runs");
        let what = format!("gcc {} -o file-io file-io.c; trace ./file-io", flags.join(" "));
        assert!(out.status.success(), "{what}: gcc failed:\n{}", stderr(&out));
        assert_lab_run(&dir, "./file-io", &what);
    }
}

#[test]
fn exit_status_of_the_command_is_returned() {
    let dir = temp_dir("exit");
    let out = trace(&["-s", "exit_group", "--", "/bin/sh", "-c", "exit 7"], &dir);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
}

/// The lab's two-terminal way: `trace --watch ./file-io` in one terminal, the
/// student runs ./file-io (twice here) in another, then Ctrl-C.
#[test]
fn watch_mode_traces_every_run_until_ctrl_c() {
    let dir = build_file_io("watch");
    let (mut tracer, out) = spawn_trace(&["--watch", "./file-io"], &dir);
    let mut seen = wait_for_announcement(&mut tracer);
    for _ in 0..2 {
        let run = std::process::Command::new("./file-io").current_dir(&dir).status().unwrap();
        assert!(run.success());
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    send_signal(&tracer, nix::sys::signal::Signal::SIGINT);
    let out = finish(tracer, out);
    seen.push_str(&stderr(&out));
    assert_eq!(out.status.code(), Some(0), "Ctrl-C ends a watch normally: {seen}");
    let mut want = lab_expected(has_kprobes());
    want.extend(lab_expected(has_kprobes()));
    assert_lines(&stdout_lines(&out), &want, "trace --watch ./file-io, two runs");
}

/// The lab's edit-rebuild-run loop under `--watch`: rebuilding file-io makes a
/// new file, which the probes are not in; trace says so at once.
#[test]
fn watch_mode_says_when_the_program_is_rebuilt() {
    let dir = build_file_io("watch-rebuild");
    let mut tracer = trace_command()
        .args(["--watch", "./file-io"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_announcement(&mut tracer);
    let err = tracer.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // As the linker does: a new file in the old one's place.
    std::fs::copy(dir.join("file-io"), dir.join("file-io.new")).unwrap();
    std::fs::rename(dir.join("file-io.new"), dir.join("file-io")).unwrap();
    let line = rx.recv_timeout(std::time::Duration::from_secs(5));
    send_signal(&tracer, nix::sys::signal::Signal::SIGINT);
    let _ = tracer.wait();
    let line = line.expect("trace said nothing of the rebuild");
    assert!(line.contains("./file-io was rebuilt or replaced"), "{line}");
    assert!(line.contains("trace --watch ./file-io"), "{line}");
}
