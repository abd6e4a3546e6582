//! What the traced world names reaches the terminal escaped, as strace shows
//! it: file names with ESC, BEL, newlines and bytes that are not UTF-8 (one that
//! sets the window title and clears the screen, one that forges the lab's
//! `.. exit open` line), a command name with ESC (prctl(PR_SET_NAME)), a
//! function whose symbol holds ESC, a name longer than a probe reads (marked
//! `...`), a command argument that is not UTF-8, and a path in a message. tests/progs/escapes.c opens the files.

mod common;
use common::*;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Output;

/// The names escapes.c opens, as trace shows them in the lab's style (strace's
/// escapes; every byte above 0x7f in octal).
const NAMES: [&str; 4] = [
    r"esc-\33]0;owned\7-\33[2J-end",
    r"nl-x\n.. exit open\n> forged",
    r"byte-\377-\303\251-\302\233-end",
    r"tab-\t-cr-\r-del-\177-bs-\\n-end",
];

/// The 300-byte name: the first 254 bytes, then `...`.
fn long_name() -> String {
    format!("long-{}...", "x".repeat(254 - 5))
}

/// The lines of one open_one(name): libc's open, then the system call.
fn opened(name: &str) -> [String; 4] {
    [
        format!(".. enter open({name})"),
        ".. exit open".into(),
        format!(".... Enter open() systemcall, argument is {name}"),
        ".... Exit open() systemcall".into(),
    ]
}

/// Panics unless `bytes` is UTF-8 holding no control character but line ends:
/// nothing a terminal would obey (C0, DEL, C1 controls), nothing that starts a
/// line other than trace's own line ends.
fn assert_terminal_safe(bytes: &[u8], what: &str) {
    let text = std::str::from_utf8(bytes)
        .unwrap_or_else(|e| panic!("{what}: not UTF-8 ({e}): {}", String::from_utf8_lossy(bytes)));
    for (i, c) in text.char_indices() {
        assert!(c == '\n' || !c.is_control(), "{what}: raw {c:?} at byte {i}:\n{text}");
    }
}

fn run(args: &[&OsStr], cwd: &Path) -> Output {
    trace_command().args(args).current_dir(cwd).output().expect("trace runs")
}

#[test]
fn file_names_are_escaped() {
    let bin = build_prog("escapes", &[]);
    let dir = bin.parent().unwrap();
    let out = run(&["-L", "open", "-s", "open", "./escapes"].map(OsStr::new), dir);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_terminal_safe(&out.stdout, "trace -L open -s open ./escapes");
    let mut want: Vec<String> = NAMES.iter().flat_map(|n| opened(n)).collect();
    want.extend(opened(&long_name()));
    assert_lines(&stdout_lines(&out), &want, "trace -L open -s open ./escapes");
}

/// The 300-byte name, read at most 255 bytes at a time by `-L open` (a uprobe)
/// and `-s open` (a tracepoint): its first 254 bytes, then `...`.
#[test]
fn long_file_names_are_marked_cut() {
    let bin = build_prog("escapes", &[]);
    let dir = bin.parent().unwrap();
    let out = run(&["-L", "open", "-s", "open", "./escapes"].map(OsStr::new), dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = stdout_lines(&out);
    let long: Vec<&String> = lines.iter().filter(|l| l.contains("long-")).collect();
    let want = opened(&long_name());
    assert_eq!(long, [&want[0], &want[2]], "{lines:?}");
}

#[test]
fn command_arguments_are_bytes() {
    let bin = build_prog("escapes", &[]);
    let dir = bin.parent().unwrap();
    let arg = OsStr::from_bytes(b"arg-\xff-\x1b[31m-\xc3");
    let out = run(&[OsStr::new("-s"), OsStr::new("open"), OsStr::new("./escapes"), arg], dir);
    assert!(out.status.success(), "an argument that is not UTF-8 is passed on: {}", stderr(&out));
    assert_terminal_safe(&out.stdout, "trace -s open ./escapes ARG");
    let lines = stdout_lines(&out);
    assert_eq!(
        lines.first().map(String::as_str),
        Some(r".... Enter open() systemcall, argument is arg-\377-\33[31m-\303"),
        "the program got the argument's bytes: {lines:?}"
    );
    // A script's -c 'COMMAND ARGS' too.
    let script = r#"uprobe:open_one { printf("%s\n", str(arg0)); exit(); }"#;
    let c = OsStr::from_bytes(b"./escapes arg-\xff");
    let out = run(&[OsStr::new("-e"), OsStr::new(script), OsStr::new("-c"), c], dir);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout_lines(&out).first().map(String::as_str), Some(r"arg-\377"), "{}", stderr(&out));
}

/// comm is shown by the lab's `ext4_file_open` line (a kprobe: not on this
/// kernel; src/output.rs tests it) and by scripts, whose `%s` keeps printable
/// UTF-8 (é) as bpftrace does and escapes the rest.
#[test]
fn command_names_and_strings_in_scripts_are_escaped() {
    let bin = build_prog("escapes", &[]);
    let dir = bin.parent().unwrap();
    let script = r#"uprobe:open_one { printf("%s|%s|\n", comm, str(arg0)); }"#;
    let out = run(&["-e", script, "-c", "./escapes"].map(OsStr::new), dir);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_terminal_safe(&out.stdout, "a script's printf");
    let lines = stdout_lines(&out);
    let comm = r"cm\33[2Jd\n";
    let want = [
        r"esc-\33]0;owned\7-\33[2J-end",
        r"nl-x\n.. exit open\n> forged",
        r"byte-\377-é-\302\233-end",
        r"tab-\t-cr-\r-del-\177-bs-\\n-end",
    ];
    for (i, name) in want.iter().enumerate() {
        assert_eq!(lines.get(i), Some(&format!("{comm}|{name}|")), "{lines:?}");
    }
    // A script shows what str() read (255 bytes), unmarked, as bpftrace does;
    // then bpftrace's two empty lines at the end.
    assert_eq!(lines.get(4), Some(&format!("{comm}|long-{}|", "x".repeat(250))));
    assert_eq!(lines[5..], ["", ""], "{lines:?}");
}

/// A function's name is read from the ELF file: `-u '*'` traces it, `-l` lists it.
#[test]
fn function_names_are_escaped() {
    let bin = build_prog("escapes", &[]);
    let dir = bin.parent().unwrap();
    let out = run(&["-u", "fn*", "./escapes"].map(OsStr::new), dir);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_terminal_safe(&out.stdout, "trace -u 'fn*' ./escapes");
    assert_lines(&stdout_lines(&out), &[r"> fn\33[2J".into(), r"< fn\33[2J".into()], "trace -u 'fn*'");
    let script = r#"uprobe:fn* { printf("%s|%s|\n", func, probe); }"#;
    let out = run(&["-e", script, "-c", "./escapes"].map(OsStr::new), dir);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_terminal_safe(&out.stdout, "a script's func and probe");
    let first = stdout_lines(&out).into_iter().next().unwrap_or_default();
    assert!(first.starts_with(r"fn\33[2J|uprobe:") && first.ends_with(r":fn\33[2J|"), "{first}");
    let out = run(&["-l", "./escapes"].map(OsStr::new), dir);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_terminal_safe(&out.stdout, "trace -l ./escapes");
    assert!(
        stdout_lines(&out).contains(&r"./escapes:fn\33[2J".to_string()),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn paths_in_messages_are_escaped() {
    let dir = temp_dir("escapes-message");
    // Valid UTF-8, then bytes that are not.
    for (typed, shown) in [
        (&b"./no-\x1b]0;owned\x07-\x1b[2J"[..], r"./no-\33]0;owned\7-\33[2J"),
        (&b"./no-\xff-\n"[..], r"./no-\377-\n"),
    ] {
        let out = run(&[OsStr::from_bytes(typed)], &dir);
        assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
        assert_terminal_safe(&out.stderr, "the message");
        assert!(stderr(&out).contains(&format!("command `{shown}` not found")), "{}", stderr(&out));
    }
}
