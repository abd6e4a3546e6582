//! `-r` (return values) and `-T` (durations), and the lab's mystery: the buggy
//! `with_asm` whose close is really an open of the pointer 0x3.
//!
//! Return values are checked exactly: file-io's descriptors are predictable
//! (0-2 are taken, each open gets the lowest free one), errno names come from
//! the kernel's answers. Durations vary, so they are checked by shape and by
//! what must hold between them (a call lasts at least as long as the calls
//! made inside it).

mod common;
use common::*;

use std::process::Command;

/// file-io traced with its functions, libc's open and the open system call,
/// plus what `-r` adds to each return line, in order (None: nothing).
fn lab_with_returns(buggy: bool) -> Vec<(String, Option<String>)> {
    let mut lines: Vec<(&str, Option<&str>)> = vec![
        ("> native", None),
        (".. enter open(output.txt)", None),
        (".. exit open", Some("3")),
        (".. enter open(output.txt)", None),
        (".. exit open", Some("3")),
        // A function returning void leaves in rax what its last call returned:
        // native and with_syscall end with close(fd) = 0.
        ("< native", Some("0")),
        ("> with_syscall", None),
        (".... Enter open() systemcall, argument is output.txt", None),
        (".... Exit open() systemcall", Some("3")),
        (".... Enter open() systemcall, argument is output.txt", None),
        (".... Exit open() systemcall", Some("3")),
        ("< with_syscall", Some("0")),
        ("> with_asm", None),
        (".... Enter open() systemcall, argument is output.txt", None),
        (".... Exit open() systemcall", Some("3")),
    ];
    if buggy {
        // The "close" asks the kernel for open((char *)3): EFAULT, and 3 stays open,
        // so the next open gets 4, and the last "close" is open((char *)4).
        lines.extend([
            (".... Enter open() systemcall, argument is 0x3 (unreadable: EFAULT)", None),
            (".... Exit open() systemcall", Some("-14 EFAULT")),
            (".... Enter open() systemcall, argument is output.txt", None),
            (".... Exit open() systemcall", Some("4")),
            (".... Enter open() systemcall, argument is 0x4 (unreadable: EFAULT)", None),
            (".... Exit open() systemcall", Some("-14 EFAULT")),
            // with_asm ends with that failed syscall: rax is still -14.
            ("< with_asm", Some("-14")),
        ]);
    } else {
        lines.extend([
            (".... Enter open() systemcall, argument is output.txt", None),
            (".... Exit open() systemcall", Some("3")),
            ("< with_asm", Some("0")),
        ]);
    }
    lines.into_iter().map(|(l, r)| (l.to_string(), r.map(str::to_string))).collect()
}

const PROBES: [&str; 6] = ["-u", "*", "-L", "open", "-s", "open"];

fn run(extra: &[&str], buggy: bool, tag: &str) -> Vec<String> {
    let dir = build_file_io(tag);
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(PROBES);
    args.push("./file-io");
    if buggy {
        args.push("buggy");
    }
    let out = trace(&args, &dir);
    assert!(out.status.success(), "trace {args:?}: {}", stderr(&out));
    assert_eq!(stderr(&out).lines().last(), Some("Attaching 10 probes..."), "{}", stderr(&out));
    stdout_lines(&out)
}

fn with_returns(lines: &[(String, Option<String>)]) -> Vec<String> {
    lines
        .iter()
        .map(|(l, r)| match r {
            Some(v) => format!("{l} = {v}"),
            None => l.clone(),
        })
        .collect()
}

#[test]
fn return_values_of_file_io() {
    let got = run(&["-r"], false, "ret");
    assert_lines(&got, &with_returns(&lab_with_returns(false)), "trace -r ./file-io");
}

#[test]
fn return_values_of_the_buggy_with_asm() {
    let got = run(&["-r"], true, "ret-buggy");
    assert_lines(&got, &with_returns(&lab_with_returns(true)), "trace -r ./file-io buggy");
}

/// ` <S.UUUUUU>` at the end of a line: the duration in microseconds.
fn duration(line: &str) -> Option<(String, u64)> {
    let (text, t) = line.strip_suffix('>')?.rsplit_once(" <")?;
    let (s, us) = t.split_once('.')?;
    let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && us.len() == 6;
    if !ok {
        return None;
    }
    Some((text.to_string(), s.parse::<u64>().ok()? * 1_000_000 + us.parse::<u64>().ok()?))
}

#[test]
fn durations_have_their_shape_and_nest() {
    let want = lab_with_returns(true);
    let got = run(&["-r", "-T"], true, "time");
    assert_eq!(got.len(), want.len(), "{got:#?}");
    // (line index, duration) of the calls still open, to check nesting.
    let mut open: Vec<(usize, Vec<u64>)> = Vec::new();
    for (i, (line, (text, ret))) in got.iter().zip(&want).enumerate() {
        let is_return = ret.is_some();
        let is_entry = text.starts_with("> ") || text.starts_with(".. enter") || text.contains("Enter ");
        if !is_return {
            assert_eq!(line, text, "line {i}: entry lines carry no time");
            if text.starts_with("> ") {
                open.push((i, Vec::new()));
            }
            assert!(is_entry, "{text}");
            continue;
        }
        let (rest, us) = duration(line).unwrap_or_else(|| panic!("line {i} has no <S.UUUUUU>: {line}"));
        assert_eq!(
            rest,
            format!("{text} = {}", ret.as_deref().unwrap()),
            "line {i}: -r's value comes before -T's time"
        );
        if text.starts_with("< ") {
            let (_, inner) = open.pop().expect("a function return closes a function");
            let sum: u64 = inner.iter().sum();
            // Rounded down to microseconds each: allow one per inner call.
            assert!(us + inner.len() as u64 >= sum, "line {i}: {us} us for the function, {sum} us inside it");
        } else {
            open.last_mut().expect("calls are inside functions").1.push(us);
        }
    }
    assert!(open.is_empty());
}

#[test]
fn duration_parser() {
    assert_eq!(duration(".. exit open = 3 <0.000061>"), Some((".. exit open = 3".into(), 61)));
    assert_eq!(duration("< native <12.000001>"), Some(("< native".into(), 12_000_001)));
    assert_eq!(duration("< native <0.00061>"), None);
    assert_eq!(duration("< native"), None);
}

/// The lab's mystery, seen with the open system call alone: the buggy
/// with_asm's two "closes" are opens of the pointers 0x3 and 0x4, and fail.
#[test]
fn the_buggy_close_is_an_open_of_a_bad_pointer() {
    let dir = build_file_io("mystery");
    let out = trace(&["-r", "-s", "open", "./file-io", "buggy"], &dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let want = [
        // with_syscall
        ".... Enter open() systemcall, argument is output.txt",
        ".... Exit open() systemcall = 3",
        ".... Enter open() systemcall, argument is output.txt",
        ".... Exit open() systemcall = 3",
        // with_asm
        ".... Enter open() systemcall, argument is output.txt",
        ".... Exit open() systemcall = 3",
        ".... Enter open() systemcall, argument is 0x3 (unreadable: EFAULT)",
        ".... Exit open() systemcall = -14 EFAULT",
        ".... Enter open() systemcall, argument is output.txt",
        ".... Exit open() systemcall = 4",
        ".... Enter open() systemcall, argument is 0x4 (unreadable: EFAULT)",
        ".... Exit open() systemcall = -14 EFAULT",
    ];
    let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    assert_lines(&stdout_lines(&out), &want, "trace -r -s open ./file-io buggy");

    // The witness: strace sees the same open(2) calls with the same results.
    let log = dir.join("strace.log");
    let st = Command::new("strace")
        .args(["-f", "-e", "trace=open", "-o"])
        .arg(&log)
        .args(["./file-io", "buggy"])
        .current_dir(&dir)
        .output()
        .expect("strace runs");
    assert!(st.status.success());
    let seen: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        // `PID open(...)      = 3`: without the pid and strace's padding.
        .filter_map(|l| {
            l.split_once(' ').map(|(_, call)| call.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .filter(|call| call.starts_with("open("))
        .collect();
    let seen: Vec<&str> = seen.iter().map(String::as_str).collect();
    assert_eq!(
        seen,
        [
            "open(\"output.txt\", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 3",
            "open(\"output.txt\", O_RDONLY) = 3",
            "open(\"output.txt\", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 3",
            "open(0x3, O_RDONLY) = -1 EFAULT (Bad address)",
            "open(\"output.txt\", O_RDONLY) = 4",
            "open(0x4, O_RDONLY) = -1 EFAULT (Bad address)",
        ]
    );

    // Without `buggy`, with_asm's closes are closes: no failing opens.
    let out = trace(&["-r", "-s", "open", "./file-io"], &dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let pair = [".... Enter open() systemcall, argument is output.txt", ".... Exit open() systemcall = 3"];
    let want: Vec<String> = pair.iter().cycle().take(8).map(|s| s.to_string()).collect();
    assert_lines(&stdout_lines(&out), &want, "trace -r -s open ./file-io");
}
