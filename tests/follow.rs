//! Processes and threads: threads of the traced process are always traced (they
//! are the process); -f also follows the children it forks, and then every line
//! says which thread it comes from. Without -f the lines of any thread but the
//! main one say it, from the first.

mod common;
use common::*;

/// Runs trace on family; returns (stdout lines, [pid, child, thread]).
fn run(extra: &[&str]) -> (Vec<String>, Vec<String>) {
    let bin = build_prog("family", &["-pthread"]);
    let mut args = extra.to_vec();
    args.extend(["-u", "work", "./family"]);
    let out = trace(&args, bin.parent().unwrap());
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    // The program's own stderr line comes last: "PID CHILD THREAD".
    let ids: Vec<String> = err.lines().last().unwrap().split_whitespace().map(str::to_string).collect();
    assert_eq!(ids.len(), 3, "{err}");
    (stdout_lines(&out), ids)
}

#[test]
fn follow_children_and_threads() {
    let (lines, ids) = run(&["-f"]);
    let (p, c, t) = (&ids[0], &ids[1], &ids[2]);
    let want: Vec<String> = [
        format!("[{p}] > work"),
        format!("[{p}] < work"),
        format!("[{c}] > work"),
        format!("[{c}] < work"),
        format!("[{t}] > work"),
        format!("[{t}] < work"),
    ]
    .into();
    assert_lines(&lines, &want, "trace -f -u work ./family");
}

#[test]
fn without_follow_children_are_not_traced() {
    let (lines, ids) = run(&[]);
    // The parent's call and its thread's, not the child's; the thread, not the
    // main one, says its id.
    let t = &ids[2];
    let want = ["> work".to_string(), "< work".into(), format!("[{t}] > work"), format!("[{t}] < work")];
    assert_lines(&lines, &want, "trace -u work ./family");
}
