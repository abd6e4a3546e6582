//! The language front end on what students type: the lab text's three
//! one-liners, a complete lab solution (tests/fixtures/lab.bt), and the
//! mistakes beginners make, with the exact messages they get. Debian's bpftrace
//! (a test dependency, see run-tests) is the reference: it must accept the same
//! programs and refuse the same mistakes.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;

use trace::lang::ast::{ExprKind, ProbeKind, Target};
use trace::lang::format::{Conv, Piece};
use trace::lang::ir::{Builtin, FieldRef, ProbeProgram, Site, StackMode, StackSpec, TExpr, TKind, TStmt};
use trace::lang::{compile, Formats, Program};
use trace::tracefs::parse_format;

/// The tracepoints of tests/fixtures/tracefs, as the checker's schema.
fn schema() -> Formats {
    let mut f = Formats::new();
    for event in
        ["sys_enter_open", "sys_exit_open", "sys_enter_openat", "sys_exit_openat", "sys_enter_execve"]
    {
        let path = repo().join("tests/fixtures/tracefs/events/syscalls").join(event).join("format");
        f.insert("syscalls", parse_format(&std::fs::read_to_string(path).unwrap()).unwrap());
    }
    f
}

fn compiled(name: &str, text: &str) -> Program {
    compile(name, text, &schema()).unwrap_or_else(|e| panic!("{text}\n{e}"))
}

/// The lab text's one-liners, as printed there.
const ONE_LINERS: [&str; 3] = [
    "kprobe:ext4_file_open { print(kstack()); exit(); }",
    "tracepoint:syscalls:sys_enter_open { printf(\"did an open on %s\", str(args -> filename)); exit()}",
    "tracepoint:syscalls:sys_enter_openat /comm==\"echo\"/ { printf(\"%s did an openat on %s\", comm, str(args -> filename)); exit()}",
];

/// A printf's format written back (`%s` for each conversion), for comparisons.
fn format_text(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.clone(),
            Piece::Spec(s) => s.text.clone(),
        })
        .collect()
}

/// What an argument is, in short: `comm`, `str(arg0)`, `str(args->filename@16)`.
fn kind(e: &TExpr) -> String {
    match &e.kind {
        TKind::Builtin(Builtin::Comm) => "comm".into(),
        TKind::Builtin(Builtin::Arg(n)) => format!("arg{n}"),
        TKind::Builtin(b) => format!("{b:?}"),
        TKind::Field(FieldRef { name, field: Some(f) }) => format!("args->{name}@{}", f.offset),
        TKind::ReadStr { ptr, len: None } => format!("str({})", kind(ptr)),
        other => format!("{other:?}"),
    }
}

/// The printf statements of a probe: (format, argument kinds).
fn printfs(p: &Program, prog: &ProbeProgram) -> Vec<(String, Vec<String>)> {
    prog.body
        .iter()
        .filter_map(|s| match s {
            TStmt::Printf { site, args } => {
                let Site::Printf { format, .. } = p.checked.site(*site) else { panic!("site {site:?}") };
                Some((format_text(format), args.iter().map(kind).collect()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn the_one_liner_printing_a_kernel_stack() {
    let p = compiled("-e", ONE_LINERS[0]);
    let g = &p.script.groups[0];
    assert_eq!(g.probes[0].kind, ProbeKind::Kprobe);
    assert!(matches!(&g.probes[0].target, Target::Kernel { func } if func.text == "ext4_file_open"));
    let [prog] = &p.checked.programs[..] else { panic!() };
    let [TStmt::Print { value, .. }, TStmt::Exit { .. }] = &prog.body[..] else { panic!("{:?}", prog.body) };
    assert_eq!(value.kind, TKind::Stack(StackSpec { kernel: true, mode: StackMode::Bpftrace, limit: None }));
}

#[test]
fn the_one_liner_printing_what_open_opens() {
    let p = compiled("-e", ONE_LINERS[1]);
    let [prog] = &p.checked.programs[..] else { panic!() };
    assert_eq!(prog.probe.to_string(), "tracepoint:syscalls:sys_enter_open");
    assert_eq!(prog.predicate, None);
    assert_eq!(
        printfs(&p, prog),
        [("did an open on %s".to_string(), vec!["str(args->filename@16)".to_string()])]
    );
    assert!(matches!(prog.body[1], TStmt::Exit { .. }));
}

#[test]
fn the_one_liner_filtering_on_the_command() {
    let p = compiled("-e", ONE_LINERS[2]);
    let pred = p.script.groups[0].predicate.as_ref().unwrap();
    let ExprKind::Binary { lhs, rhs, .. } = &pred.kind else { panic!("{pred:?}") };
    assert_eq!((&lhs.kind, &rhs.kind), (&ExprKind::Ident("comm".into()), &ExprKind::Str("echo".into())));
    let [prog] = &p.checked.programs[..] else { panic!() };
    let Some(TExpr { kind: TKind::StrCmp { eq: true, value, literal }, .. }) = &prog.predicate else {
        panic!("{:?}", prog.predicate)
    };
    assert_eq!((value.kind.clone(), literal.as_str()), (TKind::Builtin(Builtin::Comm), "echo"));
    assert_eq!(
        printfs(&p, prog),
        [(
            "%s did an openat on %s".to_string(),
            vec!["comm".to_string(), "str(args->filename@24)".to_string()]
        )]
    );
}

fn lab() -> Program {
    let text = std::fs::read_to_string(repo().join("tests/fixtures/lab.bt")).unwrap();
    compiled("lab.bt", &text)
}

#[test]
fn the_lab_solution_has_the_labs_fourteen_probes() {
    let p = lab();
    assert!(p.checked.warnings.is_empty(), "{}", p.warnings());
    let probes: Vec<String> = p.checked.programs.iter().map(|g| g.probe.to_string()).collect();
    assert_eq!(
        probes,
        [
            "uprobe:./file-io:native",
            "uretprobe:./file-io:native",
            "uprobe:./file-io:with_syscall",
            "uretprobe:./file-io:with_syscall",
            "uprobe:./file-io:with_asm",
            "uretprobe:./file-io:with_asm",
            "uprobe:libc:open",
            "uretprobe:libc:open",
            "tracepoint:syscalls:sys_enter_open",
            "tracepoint:syscalls:sys_exit_open",
            "kprobe:vfs_open",
            "kretprobe:vfs_open",
            "kprobe:ext4_file_open",
            "kretprobe:ext4_file_open",
        ]
    );
    // The program's own functions set and clear @inside[tid]; every other
    // probe reports only while it is set.
    assert_eq!(p.checked.maps.len(), 1);
    assert_eq!(p.checked.maps[0].name, "inside");
    let by_tid = |key: &Option<TExpr>| matches!(key, Some(k) if k.kind == TKind::Builtin(Builtin::Tid));
    for (i, prog) in p.checked.programs.iter().enumerate() {
        match (&prog.predicate, i < 6) {
            (None, true) => match &prog.body[0] {
                TStmt::MapUpdate { map, key, value } if i % 2 == 0 => {
                    assert_eq!((map.0, value.kind.clone()), (0, TKind::Int(1)));
                    assert!(by_tid(key), "{}", prog.probe);
                }
                TStmt::MapDelete { map, key } if i % 2 == 1 => assert!(map.0 == 0 && by_tid(key)),
                other => panic!("{}: {other:?}", prog.probe),
            },
            (Some(TExpr { kind: TKind::Map { map, key: Some(k) }, .. }), false) => {
                assert_eq!((map.0, k.kind.clone()), (0, TKind::Builtin(Builtin::Tid)), "{}", prog.probe);
            }
            (other, _) => panic!("{}: predicate {other:?}", prog.probe),
        }
    }
    let formats: Vec<(String, Vec<String>)> =
        p.checked.programs.iter().flat_map(|g| printfs(&p, g)).collect();
    let want: [(&str, &[&str]); 14] = [
        ("> native\n", &[]),
        ("< native\n", &[]),
        ("> with_syscall\n", &[]),
        ("< with_syscall\n", &[]),
        ("> with_asm\n", &[]),
        ("< with_asm\n", &[]),
        (".. enter open(%s)\n", &["str(arg0)"]),
        (".. exit open\n", &[]),
        (".... Enter open() systemcall, argument is %s\n", &["str(args->filename@16)"]),
        (".... Exit open() systemcall\n", &[]),
        (".... .... Called vfs_open\n", &[]),
        (".... .... Return from vfs_open\n", &[]),
        (".... .... .... Called ext4_file_open with command %s\n", &["comm"]),
        (".... .... .... Return from ext4_file_open\n", &[]),
    ];
    let want: Vec<(String, Vec<String>)> =
        want.iter().map(|(f, a)| (f.to_string(), a.iter().map(|s| s.to_string()).collect())).collect();
    assert_eq!(formats, want);
}

/// The strings a format's `%s` conversions take so that it prints `text`
/// exactly; None if no strings make it (other conversions are not used here).
fn captures(pieces: &[Piece], text: &str) -> Option<Vec<String>> {
    match pieces.split_first() {
        None => text.is_empty().then(Vec::new),
        Some((Piece::Text(t), rest)) => captures(rest, text.strip_prefix(t.as_str())?),
        Some((Piece::Spec(s), rest)) => {
            assert_eq!(s.conv, Conv::Str, "only %s in the lab");
            (0..=text.len()).filter(|&i| text.is_char_boundary(i)).find_map(|i| {
                let mut more = captures(rest, &text[i..])?;
                more.insert(0, text[..i].to_string());
                Some(more)
            })
        }
    }
}

#[test]
fn the_lab_solution_prints_every_line_of_the_labs_expected_output() {
    let p = lab();
    let expected = std::fs::read_to_string(repo().join("tests/fixtures/lab-expected-output.txt")).unwrap();
    let mut used = vec![false; p.checked.programs.len()];
    for line in expected.lines().skip(1) {
        let text = format!("{line}\n");
        let mut makers = Vec::new();
        for (i, prog) in p.checked.programs.iter().enumerate() {
            let Some(TStmt::Printf { site, args }) =
                prog.body.iter().find(|s| matches!(s, TStmt::Printf { .. }))
            else {
                panic!("{}: no printf", prog.probe)
            };
            let Site::Printf { format, .. } = p.checked.site(*site) else { panic!() };
            if let Some(strings) = captures(format, &text) {
                makers.push((i, strings, args.iter().map(kind).collect::<Vec<_>>()));
            }
        }
        let [(i, strings, kinds)] = &makers[..] else {
            panic!("{line:?} is printed by {} probes", makers.len())
        };
        used[*i] = true;
        // What fills each %s is what the kernel will send for it.
        for (s, k) in strings.iter().zip(kinds) {
            match k.as_str() {
                "comm" => assert_eq!(s, "file-io", "{line}"),
                _ => assert!(s == "output.txt" || s.is_empty(), "{line}: {k} = {s:?}"),
            }
        }
    }
    assert!(used.iter().all(|&u| u), "every probe prints some line: {used:?}");
}

/// Beginner mistakes and what trace says, exactly.
const MISTAKES: [(&str, &str, &str); 17] = [
    (
        "trace.bt",
        "uprobe:./file-io:native\n{\n    printf(\"> native\\n\")\n    printf(\"again\\n\");\n}\n",
        "trace.bt:3:25: error: expected `;` after this statement, found `printf`
    3 |     printf(\"> native\\n\")
      |                         ^
      = help: statements in a block are separated by `;`",
    ),
    (
        "trace.bt",
        "kprobe:vfs_open {\n    printf(\"Called vfs_open\\n\");\n",
        "trace.bt:2:33: error: expected `}` to close the block at the end of the program
    2 |     printf(\"Called vfs_open\\n\");
      |                                 ^
trace.bt:1:17: note: the block starts here
    1 | kprobe:vfs_open {
      |                 ^",
    ),
    (
        "trace.bt",
        "uprobe:./file-io:native {\n    printf(\"> native\\n\");\n\nuretprobe:./file-io:native {\n    printf(\"< native\\n\");\n}\n",
        "trace.bt:2:26: error: expected `}` to close the block before the next probe
    2 |     printf(\"> native\\n\");
      |                          ^
trace.bt:1:25: note: the block starts here
    1 | uprobe:./file-io:native {
      |                         ^
trace.bt:4:1: note: and the next probe starts here
    4 | uretprobe:./file-io:native {
      | ^~~~~~~~~",
    ),
    (
        "-e",
        "kprobe:vfs_open { printf(\"%d\\n\", pidd); }",
        "-e:1:34: error: unknown builtin `pidd`
    1 | kprobe:vfs_open { printf(\"%d\\n\", pidd); }
      |                                  ^~~~
      = help: did you mean `pid`?",
    ),
    (
        "-e",
        "kprobe:vfs_open { printf(\"%d\\n\", retval); }",
        "-e:1:34: error: `retval` is not set in kprobe:vfs_open: it is only set in return probes (kretprobe, uretprobe)
    1 | kprobe:vfs_open { printf(\"%d\\n\", retval); }
      |                                  ^~~~~~
      = help: to see what the function returns, add a probe: kretprobe:vfs_open { printf(\"%d\\n\", retval); }",
    ),
    (
        "-e",
        "tracepoint:syscalls:sys_enter_open { printf(\"%s opened %s\\n\", comm); }",
        "-e:1:56: error: `%s` has no value to print: the format has 2 conversions but printf has 1 value after it
    1 | tracepoint:syscalls:sys_enter_open { printf(\"%s opened %s\\n\", comm); }
      |                                                        ^~
      = help: add the value for `%s` after the format, separated by a comma",
    ),
    (
        "-e",
        "tracepoint:syscalls:sys_enter_open { printf(\"%s\\n\", comm, pid); }",
        "-e:1:59: error: printf has more values than its format has conversions: nothing prints `pid`
    1 | tracepoint:syscalls:sys_enter_open { printf(\"%s\\n\", comm, pid); }
      |                                                           ^~~
      = help: add a conversion for it to the format (%d for integers, %s for strings), or remove it",
    ),
    (
        "-e",
        "tracepoint:syscalls:sys_enter_open { printf(\"did an open on %s\\n\", args->filename); }",
        "-e:1:68: error: `%s` prints a string, but `args->filename` is a pointer (const char *)
    1 | tracepoint:syscalls:sys_enter_open { printf(\"did an open on %s\\n\", args->filename); }
      |                                                                    ^~~~~~~~~~~~~~
      = help: read the string it points to: str(args->filename)",
    ),
    (
        "-e",
        "BEGIN { printf(\"%d\\n\", comm); }",
        "-e:1:24: error: `%d` prints an integer, but `comm` is a string
    1 | BEGIN { printf(\"%d\\n\", comm); }
      |                        ^~~~
      = help: print strings and stack traces with %s",
    ),
    (
        "-e",
        "BEGIN { printf(\"hello\\n); }",
        "-e:1:16: error: unterminated string: this `\"` has no closing `\"` on its line
    1 | BEGIN { printf(\"hello\\n); }
      |                ^~~~~~~~~~~~
      = help: a string ends on the line it starts; write a newline as \\n",
    ),
    (
        "-e",
        "kprobe:do_sys_open { printf(\"%s\\n\", str(args->filename)); }",
        "-e:1:41: error: `args` is only available in tracepoint probes, not in kprobe:do_sys_open
    1 | kprobe:do_sys_open { printf(\"%s\\n\", str(args->filename)); }
      |                                         ^~~~
      = help: in kprobes and uprobes the function's arguments are arg0 to arg5; read a string argument with str(arg0)",
    ),
    (
        "-e",
        "kprobes:vfs_open { exit(); }",
        "-e:1:1: error: unknown probe type `kprobes`
    1 | kprobes:vfs_open { exit(); }
      | ^~~~~~~
      = help: did you mean `kprobe`?
      = help: the probe types are kprobe (k), kretprobe (kr), uprobe (u), uretprobe (ur), tracepoint (t), BEGIN and END",
    ),
    (
        "-e",
        "kprobe:vfs_open { prinft(\"x\\n\"); }",
        "-e:1:19: error: unknown function `prinft`
    1 | kprobe:vfs_open { prinft(\"x\\n\"); }
      |                   ^~~~~~
      = help: did you mean one of `printf`, `print`?",
    ),
    (
        "-e",
        "tracepoint:syscalls:sys_enter_openat /comm = \"echo\"/ { exit(); }",
        "-e:1:44: error: `=` assigns a value; to compare, write `==`
    1 | tracepoint:syscalls:sys_enter_openat /comm = \"echo\"/ { exit(); }
      |                                            ^",
    ),
    (
        "-e",
        "tracepoint:syscalls:sys_enter_open { printf(\"%s\\n\", str(args->filenam)); }",
        "-e:1:63: error: tracepoint syscalls:sys_enter_open has no field `filenam`
    1 | tracepoint:syscalls:sys_enter_open { printf(\"%s\\n\", str(args->filenam)); }
      |                                                               ^~~~~~~
      = help: did you mean `filename`?
      = help: the fields of syscalls:sys_enter_open are: __syscall_nr, filename, flags, mode",
    ),
    (
        "-e",
        "tracepoint:syscalls:sys_enter_open { printf(\"%d\\n\", arg0); }",
        "-e:1:53: error: `arg0` does not exist in tracepoint probes: their values are named fields
    1 | tracepoint:syscalls:sys_enter_open { printf(\"%d\\n\", arg0); }
      |                                                     ^~~~
      = help: the fields of syscalls:sys_enter_open are: __syscall_nr, filename, flags, mode",
    ),
    (
        "-e",
        "kprobe:vfs_open { if comm == \"x\" { exit(); } }",
        "-e:1:22: error: expected `(` after `if`, found `comm`
    1 | kprobe:vfs_open { if comm == \"x\" { exit(); } }
      |                      ^~~~
      = help: write the condition in parentheses: if (pid == 42) { ... }",
    ),
];

#[test]
fn beginner_mistakes_get_a_compilers_message() {
    for (name, text, want) in MISTAKES {
        match compile(name, text, &schema()) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => assert_eq!(e.to_string(), want, "\n--- for {text}\n--- got:\n{e}\n"),
        }
    }
}

#[test]
fn several_mistakes_are_reported_together_and_counted() {
    let e = compile("-e", "kprobe:f { print(retval); print(pidd); print(args->x); }", &schema()).unwrap_err();
    let lines: Vec<String> =
        e.to_string().lines().filter(|l| l.contains("error")).map(str::to_string).collect();
    assert_eq!(
        lines,
        [
            "-e:1:18: error: `retval` is not set in kprobe:f: it is only set in return probes (kretprobe, uretprobe)",
            "-e:1:33: error: unknown builtin `pidd`",
            "-e:1:46: error: `args` is only available in tracepoint probes, not in kprobe:f",
            "3 errors",
        ]
    );
}

/// Mounts tracefs if nobody has (bpftrace reads tracepoint formats from it).
fn tracefs_mounted() {
    if !Path::new("/sys/kernel/tracing/events").exists() {
        let ok =
            Command::new("mount").args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"]).status().unwrap();
        assert!(ok.success(), "cannot mount tracefs");
    }
}

/// Whether Debian's bpftrace accepts a program, in its dry run (no probe attached).
fn bpftrace_accepts(dir: &Path, file_or_program: &str, is_file: bool) -> (bool, String) {
    let flag = if is_file { None } else { Some("-e") };
    let out = Command::new("bpftrace")
        .arg("-d")
        .args(flag)
        .arg(file_or_program)
        .current_dir(dir)
        .output()
        .expect("bpftrace is installed by run-tests");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.contains("ERROR")).collect(),
    )
}

#[test]
fn bpftrace_agrees_on_what_is_a_program_and_what_is_a_mistake() {
    tracefs_mounted();
    let dir = build_file_io("lang");
    let lab = repo().join("tests/fixtures/lab.bt");
    let (ok, err) = bpftrace_accepts(&dir, lab.to_str().unwrap(), true);
    assert!(ok, "bpftrace refuses lab.bt: {err}");
    for p in ONE_LINERS {
        let (ok, err) = bpftrace_accepts(&dir, p, false);
        assert!(ok, "bpftrace refuses {p}: {err}");
    }
    for (_, text, _) in MISTAKES {
        let file = dir.join("mistake.bt");
        std::fs::write(&file, text).unwrap();
        let (ok, _) = bpftrace_accepts(&dir, file.to_str().unwrap(), true);
        assert!(!ok, "bpftrace accepts what trace calls a mistake: {text}");
    }
}
