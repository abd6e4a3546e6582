//! Tests of the checker through [`compile`]: types, folding, scopes, sites,
//! tracepoint fields and expansion, the limits of a record.

use super::ast::{BinOp, ProbeKind, Target};
use super::format::Conv;
use super::ir::*;
use super::*;
use crate::tracefs::parse_format;

/// The syscalls fixtures of tests/fixtures/tracefs, as a schema.
fn schema() -> Formats {
    let mut f = Formats::new();
    for text in [
        include_str!("../../tests/fixtures/tracefs/events/syscalls/sys_enter_open/format"),
        include_str!("../../tests/fixtures/tracefs/events/syscalls/sys_enter_openat/format"),
        include_str!("../../tests/fixtures/tracefs/events/syscalls/sys_exit_open/format"),
        include_str!("../../tests/fixtures/tracefs/events/syscalls/sys_enter_execve/format"),
    ] {
        f.insert("syscalls", parse_format(text).unwrap());
    }
    f.insert(
        "sched",
        parse_format(include_str!("../../tests/fixtures/tracefs/events/sched/sched_switch/format")).unwrap(),
    );
    f
}

fn ok(text: &str) -> Checked {
    match compile("t.bt", text, &schema()) {
        Ok(p) => p.checked,
        Err(e) => panic!("{text}\n{e}"),
    }
}

/// The messages of the errors, in source order.
fn errors(text: &str) -> Vec<String> {
    match compile("t.bt", text, &schema()) {
        Ok(_) => panic!("no error in {text}"),
        Err(e) => e.errors().map(|d| d.message.clone()).collect(),
    }
}

fn first_printf(c: &Checked) -> (&[super::format::Piece], &[TExpr]) {
    let TStmt::Printf { site, args } = &c.programs[0].body[0] else { panic!("{:?}", c.programs[0].body) };
    let Site::Printf { format, .. } = c.site(*site) else { panic!() };
    (format, args)
}

#[test]
fn builtins_fields_and_str_are_typed() {
    let c = ok(
        r#"t:syscalls:sys_enter_openat { printf("%d %s %s %d %lu\n", pid, comm, str(args->filename), args->dfd, nsecs); }"#,
    );
    let (format, args) = first_printf(&c);
    assert_eq!(
        super::format::specs(format).map(|s| s.conv).collect::<Vec<_>>(),
        [Conv::Signed, Conv::Str, Conv::Str, Conv::Signed, Conv::Unsigned]
    );
    assert_eq!(args[0].kind, TKind::Builtin(Builtin::Pid));
    assert_eq!(args[0].ty, Ty::Int(IntTy::U32));
    assert_eq!((args[1].kind.clone(), args[1].ty), (TKind::Builtin(Builtin::Comm), Ty::Str));
    let TKind::ReadStr { ptr, len: None } = &args[2].kind else { panic!("{:?}", args[2]) };
    assert_eq!(args[2].ty, Ty::Str);
    let TKind::Field(FieldRef { name, field: Some(f) }) = &ptr.kind else { panic!("{ptr:?}") };
    assert_eq!((name.as_str(), f.offset, f.size, ptr.ty), ("filename", 24, 8, Ty::Ptr));
    // `int dfd` is stored in 8 unsigned bytes by the syscall tracepoints.
    assert_eq!(args[3].ty, Ty::Int(IntTy { bits: 64, signed: false }));
    assert_eq!(args[4].ty, Ty::Int(IntTy::U64));
}

#[test]
fn char_array_fields_are_strings_and_signed_fields_stay_signed() {
    let c = ok(r#"t:sched:sched_switch { printf("%s %d\n", args->prev_comm, args->prev_pid); }"#);
    let (_, args) = first_printf(&c);
    assert_eq!(args[0].ty, Ty::Str);
    assert_eq!(args[1].ty, Ty::Int(IntTy { bits: 32, signed: true }));
}

#[test]
fn constants_are_folded() {
    let c = ok("BEGIN { $x = -1 + 2 * 3; $y = (7 - 10) / 2; $z = !0 && 4 > 3; $w = ~0; }");
    let values: Vec<(u64, Ty)> = c.programs[0]
        .body
        .iter()
        .map(|s| match s {
            TStmt::Assign { value: TExpr { kind: TKind::Int(n), ty, .. }, .. } => (*n, *ty),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        values,
        [
            (5, Ty::Int(IntTy::I64)),
            ((-1i64) as u64, Ty::Int(IntTy::I64)),
            (1, Ty::Int(IntTy::U64)),
            (u64::MAX, Ty::Int(IntTy::I64))
        ]
    );
    assert_eq!(errors("BEGIN { $x = pid / 0; }"), ["division by zero"]);
}

#[test]
fn signedness_follows_the_operands_and_literals_adapt() {
    let c = ok("kretprobe:f /retval < 0/ {} kprobe:f /pid < 100 && arg0 % 3 == 1/ {}");
    let pred = |i: usize| c.programs[i].predicate.clone().unwrap();
    let TKind::Binary(BinOp::Lt, l, r) = pred(0).kind else { panic!() };
    assert!(check::signed_operation(&l, &r), "retval < 0 compares signed");
    let TKind::Binary(BinOp::And, l, r) = pred(1).kind else { panic!() };
    let TKind::Binary(BinOp::Lt, a, b) = l.kind else { panic!() };
    assert!(!check::signed_operation(&a, &b), "pid is unsigned");
    let TKind::Binary(BinOp::Eq, rem, _) = r.kind else { panic!() };
    assert_eq!(rem.ty, Ty::Int(IntTy::I64), "arg0 is signed, so arg0 % 3 is");
}

#[test]
fn variables_are_block_scoped_and_keep_one_slot() {
    let c = ok("BEGIN { $x = 1; $x += 2; $x++; if ($x > 2) { $y = $x; $x = 0; } }");
    let p = &c.programs[0];
    assert_eq!(p.vars.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["x", "y"]);
    let ids: Vec<VarId> = p.body[..3]
        .iter()
        .map(|s| match s {
            TStmt::Assign { var, .. } => *var,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, [VarId(0); 3]);
    let TStmt::If { then, .. } = &p.body[3] else { panic!() };
    assert!(
        matches!(then[1], TStmt::Assign { var: VarId(0), .. }),
        "assigning $x inside the if updates the outer $x"
    );
    assert_eq!(
        errors("BEGIN { if (1) { $a = 1; } printf(\"%d\\n\", $a); }"),
        ["`$a` is used outside the block where it is given a value"]
    );
    assert_eq!(
        errors("BEGIN { $count = 1; print($cuont); }"),
        ["`$cuont` is used before it is given a value"]
    );
    assert_eq!(
        errors("BEGIN { $s = comm; $k = $1; }"),
        ["strings cannot be kept in variables yet", "positional parameters (`$1`) are not supported yet"]
    );
}

#[test]
fn a_shared_block_is_checked_once_per_probe_with_shared_sites() {
    let c = ok(r#"kprobe:vfs_open, kretprobe:vfs_open { printf("%s\n", probe); exit(); }"#);
    assert_eq!(c.programs.len(), 2);
    assert_eq!(c.sites.len(), 2);
    assert!(matches!(c.sites[0], Site::Printf { .. }));
    assert!(matches!(c.sites[1], Site::Exit { .. }));
    for p in &c.programs {
        assert!(matches!(
            p.body[..],
            [TStmt::Printf { site: SiteId(0), .. }, TStmt::Exit { site: SiteId(1) }]
        ));
    }
    assert_eq!(c.programs[1].probe.kind, ProbeKind::Kretprobe);
}

#[test]
fn one_mistake_in_a_shared_block_is_one_error() {
    assert_eq!(
        errors("kprobe:a, kprobe:b { print(retval); }"),
        ["`retval` is not set in kprobe:a: it is only set in return probes (kretprobe, uretprobe)"]
    );
}

#[test]
fn tracepoint_wildcards_expand_over_the_known_events() {
    let c = ok(r#"t:syscalls:sys_enter_open* { printf("%s\n", str(args->filename)); }"#);
    let names: Vec<String> = c.programs.iter().map(|p| p.probe.to_string()).collect();
    assert_eq!(names, ["tracepoint:syscalls:sys_enter_open", "tracepoint:syscalls:sys_enter_openat"]);
    // The same field sits at a different offset in each event.
    let offsets: Vec<u32> = c
        .programs
        .iter()
        .map(|p| {
            let TStmt::Printf { args, .. } = &p.body[0] else { panic!() };
            let TKind::ReadStr { ptr, .. } = &args[0].kind else { panic!() };
            let TKind::Field(FieldRef { field: Some(f), .. }) = &ptr.kind else { panic!() };
            f.offset
        })
        .collect();
    assert_eq!(offsets, [16, 24]);
    assert_eq!(
        errors("t:syscalls:sys_enter_nothing* {}"),
        ["no tracepoint of category `syscalls` matches `sys_enter_nothing*`"]
    );
}

#[test]
fn unknown_tracepoints_are_named_with_close_matches() {
    let e =
        compile("t.bt", "t:syscall:sys_enter_open {} t:syscalls:sys_enter_opn {}", &schema()).unwrap_err();
    let d: Vec<(&str, &[String])> = e.errors().map(|d| (d.message.as_str(), &d.help[..])).collect();
    assert_eq!(
        d[0],
        ("unknown tracepoint category `syscall`", &["did you mean `syscalls`?".to_string()][..])
    );
    assert_eq!(d[1].0, "there is no tracepoint `sys_enter_opn` in category `syscalls`");
    assert_eq!(d[1].1[0], "did you mean `sys_enter_open`?");
}

#[test]
fn without_a_schema_fields_are_left_for_later() {
    let p = compile("-e", "t:x:y { print(args->anything); }", &NoSchema).unwrap();
    let TStmt::Print { value, .. } = &p.checked.programs[0].body[0] else { panic!() };
    assert_eq!(value.kind, TKind::Field(FieldRef { name: "anything".into(), field: None }));
}

#[test]
fn strings_compare_only_with_literals() {
    let c = ok(r#"kprobe:f /comm == "echo" && "x" != comm/ {}"#);
    let TKind::Binary(BinOp::And, l, r) = c.programs[0].predicate.clone().unwrap().kind else { panic!() };
    assert_eq!(
        l.kind,
        TKind::StrCmp {
            eq: true,
            value: Box::new(TExpr {
                kind: TKind::Builtin(Builtin::Comm),
                ty: Ty::Str,
                span: Span::new(10, 14)
            }),
            literal: "echo".into()
        }
    );
    assert!(matches!(r.kind, TKind::StrCmp { eq: false, .. }));
    assert_eq!(
        ok(r#"BEGIN { $a = "a" == "a"; }"#).programs[0].body[0],
        TStmt::Assign {
            var: VarId(0),
            value: TExpr { kind: TKind::Int(1), ty: Ty::Int(IntTy::U64), span: Span::new(13, 23) }
        }
    );
    assert_eq!(
        errors(r#"kprobe:f /comm == str(arg0) || comm < "b" || comm == 1 || comm/ {}"#),
        [
            "comparing two strings read at run time is not supported yet",
            "strings can only be compared with == and !=, not `<`",
            "cannot compare `comm` (a string) with `1` (an integer)",
            "`comm` is a string, not a condition",
        ]
    );
}

#[test]
fn a_command_name_longer_than_the_kernel_keeps_is_a_warning() {
    let p = compile("t.bt", r#"kprobe:f /comm == "a-very-long-program"/ {}"#, &schema()).unwrap();
    assert_eq!(
        p.warnings(),
        "t.bt:1:11: warning: comm is at most 15 characters long, so it is never \"a-very-long-program\"\n    \
         1 | kprobe:f /comm == \"a-very-long-program\"/ {}\n      \
           |           ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n      \
           = help: the kernel cuts command names to 15 characters: compare with \"a-very-long-pro\"\n"
    );
}

#[test]
fn a_record_carries_six_values_and_one_string() {
    assert_eq!(
        errors(r#"kprobe:f { printf("%d %d %d %d %d %d %d\n", arg0, arg1, arg2, arg3, arg4, arg5, pid); }"#),
        ["printf can send at most 6 values read at run time for now, and this one sends 7"]
    );
    // Constants and comm cost nothing.
    ok(
        r#"kprobe:f { printf("%d %d %d %d %d %d %d %s %s %s\n", arg0, arg1, arg2, arg3, arg4, arg5, 7, comm, probe, str(arg0)); }"#,
    );
    assert_eq!(
        errors(r#"kprobe:f { printf("%s %s\n", str(arg0), str(arg1)); }"#),
        ["printf can send only one string read at run time for now (comm does not count)"]
    );
}

#[test]
fn stacks() {
    let c = ok("kprobe:f { print(kstack); print(ustack(perf, 5)); printf(\"%s\\n\", kstack(3)); }");
    let specs: Vec<StackSpec> = c.programs[0]
        .body
        .iter()
        .map(|s| match s {
            TStmt::Print { value: TExpr { kind: TKind::Stack(s), .. }, .. } => *s,
            TStmt::Printf { args, .. } => match &args[0].kind {
                TKind::Stack(s) => *s,
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        specs,
        [
            StackSpec { kernel: true, mode: StackMode::Bpftrace, limit: None },
            StackSpec { kernel: false, mode: StackMode::Perf, limit: Some(5) },
            StackSpec { kernel: true, mode: StackMode::Bpftrace, limit: Some(3) },
        ]
    );
    assert_eq!(
        errors("kprobe:f { print(kstack(pref)); print(kstack(0)); } BEGIN { print(kstack); }"),
        [
            "unknown stack mode `pref`",
            "the number of frames must be from 1 to 127",
            "`kstack` has no meaning in BEGIN"
        ]
    );
}

#[test]
fn integer_maps_with_one_key() {
    let c = ok("kprobe:f { @x = count(); @y[pid] = 1; @y[pid]++; @z += 2; @s = sum(arg0); print(@x + @y[pid]); delete(@y[pid]); }");
    let names: Vec<&str> = c.maps.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["x", "y", "z", "s"]);
    assert_eq!(c.maps[0].key, None);
    assert_eq!(c.maps[1].key, Some(IntTy::U32), "pid's type");
    let body = &c.programs[0].body;
    // count() and ++ add to what is there.
    let TStmt::MapUpdate { map, key: None, value } = &body[0] else { panic!("{body:?}") };
    assert_eq!(map.0, 0);
    let TKind::Binary(BinOp::Add, cur, one) = &value.kind else { panic!("{value:?}") };
    assert!(matches!(cur.kind, TKind::Map { map: MapId(0), key: None }));
    assert_eq!(one.kind, TKind::Int(1));
    assert!(matches!(&body[6], TStmt::MapDelete { map: MapId(1), key: Some(_) }));
}

#[test]
fn map_mistakes() {
    assert_eq!(
        errors("kprobe:f { @m[pid, tid] = 1; }"),
        ["maps with several keys (`@m[a, b]`) are not supported yet"]
    );
    assert_eq!(
        errors("kprobe:f { @m = 1; @m[1] = 2; }"),
        ["`@m` is used with a key here, and without one before"]
    );
    assert_eq!(errors("kprobe:f { @m = comm; }"), ["map values are integers for now, not a string"]);
    assert_eq!(errors("kprobe:f { @m[comm] = 1; }"), ["map keys are integers for now, not a string"]);
    assert_eq!(errors("kprobe:f { @h = hist(arg0); }"), ["`hist()` is not supported yet"]);
    assert_eq!(errors("BEGIN { @x = 1; }"), ["maps in BEGIN are not supported yet"]);
    assert_eq!(errors("kprobe:f { delete(pid); }"), ["delete takes a map element: delete(@m[key])"]);
    assert_eq!(
        errors("kprobe:f { print(count()); }"),
        ["`count()` gives no value of its own: it adds into a map, as in `@calls = count(...);`"]
    );
}

#[test]
fn statements_that_do_nothing_are_warned_about() {
    let p = compile("t.bt", "kprobe:f { pid + 1; exit; time(); time(\"%H\"); }", &schema()).unwrap();
    assert_eq!(p.checked.warnings.len(), 1);
    assert_eq!(p.checked.warnings[0].message, "this value is computed, then thrown away");
    let sites: Vec<&Site> = p.checked.sites.iter().collect();
    assert!(matches!(sites[..], [Site::Exit { .. }, Site::Time { .. }, Site::Time { .. }]));
    let Site::Time { format, .. } = sites[1] else { panic!() };
    assert_eq!(format, "%H:%M:%S\n");
}

#[test]
fn probe_kinds_limit_the_builtins() {
    assert_eq!(
        errors("kretprobe:f { print(arg0); } t:syscalls:sys_enter_open { print(arg1); print(func); print(retval); } BEGIN { print(args->x); }"),
        [
            "`arg0` is not available in kretprobe:f: a function's arguments are gone when it returns",
            "`arg1` does not exist in tracepoint probes: their values are named fields",
            "`func` is only set in kprobe, kretprobe, uprobe and uretprobe probes",
            "`retval` is not set in tracepoint probes",
            "`args` has no meaning in BEGIN",
        ]
    );
    ok("uretprobe:./file-io:native { printf(\"%s %d %s\\n\", func, retval, probe); } uprobe:libc:open { print(str(arg0, 64)); }");
}

#[test]
fn the_parsed_probe_keeps_its_target() {
    let p = compile("t.bt", "u:./file-io:native {}", &NoSchema).unwrap();
    let Target::User { path: Some(path), func } = &p.script.groups[0].probes[0].target else { panic!() };
    assert_eq!((path.text.as_str(), func.text.as_str()), ("./file-io", "native"));
}

#[test]
fn no_input_makes_it_panic() {
    // Every one-character deletion and a set of insertions at every place of
    // the lab script and a dense one-liner: compile must answer, not panic.
    let texts = [
        include_str!("../../tests/fixtures/lab.bt"),
        "t:syscalls:sys_enter_open* /comm == \"é\" && (pid / 2) % 3 != -1/ { $x = str(args->filename, 8); \
         if ($x) { printf(\"%-5s %lu\\n\", kstack(perf, 3), ~arg0 << 1); } else { print(@m[1]); exit(); } }",
    ];
    let inserts =
        ['"', '{', '}', '/', '%', 'é', '\n', '(', ')', ';', ':', '$', '@', '\\', '*', ',', '-', '>'];
    let schema = schema();
    let mut compiled = 0;
    for text in texts {
        for (at, c) in text.char_indices() {
            let mut deleted = text.to_string();
            deleted.replace_range(at..at + c.len_utf8(), "");
            let _ = compile("t.bt", &deleted, &schema).map_err(|e| e.to_string());
            for ins in inserts {
                let mut t = text.to_string();
                t.insert(at, ins);
                let _ = compile("t.bt", &t, &schema).map_err(|e| e.to_string());
                compiled += 1;
            }
        }
    }
    assert!(compiled > 30_000, "{compiled}");
}

/// Nesting past the parser's limit is a compile error with its place, not a
/// stack overflow in a later pass (a 5000-term sum, 10,000 nested ifs and
/// 100,000 parentheses killed trace with SIGSEGV); just under it compiles.
#[test]
fn nesting_too_deep_is_an_error_not_a_crash() {
    let deep = "the program nests deeper than 200 levels of blocks and operators here";
    let sum = |n: usize| format!("BEGIN {{ printf(\"%d\\n\", {}); }}", vec!["pid"; n].join(" + "));
    let ifs =
        |n: usize| format!("BEGIN {{ {}printf(\"x\\n\"); {}}}", "if (pid) { ".repeat(n), "} ".repeat(n));
    let parens = |n: usize| format!("BEGIN {{ printf(\"%d\\n\", {}pid{}); }}", "(".repeat(n), ")".repeat(n));
    for text in
        [sum(5000), ifs(10_000), parens(100_000), format!("BEGIN {{ $a = {}pid; }}", "- ".repeat(1000))]
    {
        assert_eq!(errors(&text), [deep], "{}", &text[..60]);
    }
    ok(&sum(190));
    ok(&ifs(190));
    ok(&parens(190));
}
