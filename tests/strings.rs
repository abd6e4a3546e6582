//! No empty file names: a name whose page is not faulted in at the entry of open
//! is read again at its return and printed on the entry line, in order.

mod common;
use common::*;

const WANT: [&str; 8] = [
    "> via_libc",
    ".. enter open(untouched-libc.txt)",
    ".. exit open",
    "< via_libc",
    "> via_syscall",
    ".... Enter open() systemcall, argument is untouched-syscall.txt",
    ".... Exit open() systemcall",
    "< via_syscall",
];

#[test]
fn names_in_untouched_pages_are_printed() {
    let bin = build_prog("untouched", &[]);
    let dir = bin.parent().unwrap();
    let out = trace(&["./untouched"], dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let want: Vec<String> = WANT.iter().map(|s| s.to_string()).collect();
    assert_lines(&stdout_lines(&out), &want, "trace ./untouched");
}

/// The control experiment: with the retry switched off, the same names are
/// unreadable at entry. This proves the test above really exercises the retry.
#[test]
fn without_the_retry_the_names_are_unreadable() {
    let bin = build_prog("untouched", &[]);
    let dir = bin.parent().unwrap();
    let out = trace(&["--no-string-retry", "./untouched"], dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = stdout_lines(&out);
    let unreadable: Vec<&String> = lines.iter().filter(|l| l.contains("(unreadable: EFAULT)")).collect();
    assert_eq!(unreadable.len(), 2, "both names unreadable at entry without the retry: {lines:?}");
    assert!(lines[1].starts_with(".. enter open(0x"), "{lines:?}");
    assert!(lines[5].starts_with(".... Enter open() systemcall, argument is 0x"), "{lines:?}");
}
