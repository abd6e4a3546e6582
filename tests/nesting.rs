//! Program functions called from traced program functions are indented by the
//! nesting the kernel counts per thread.

mod common;
use common::*;

#[test]
fn nested_program_functions_are_indented() {
    let bin = build_prog("nested", &[]);
    let out = trace(&["./nested"], bin.parent().unwrap());
    assert!(out.status.success(), "{}", stderr(&out));
    let want = ["> outer", "  > inner", "  < inner", "  > inner", "  < inner", "< outer"].map(String::from);
    assert_lines(&stdout_lines(&out), &want, "trace ./nested");
}

/// A thread's entry in `depth` stays at 0 after its last return (an LRU hash, not
/// deleted and inserted again): between the calls nothing is inside, so main's own
/// opens are not shown, and each outermost call starts again from no indent.
#[test]
fn nesting_starts_again_after_each_outermost_return() {
    let bin = build_prog("reenter", &[]);
    let out = trace(&["-u", "outer,inner", "-s", "openat", "./reenter"], bin.parent().unwrap());
    assert!(out.status.success(), "{}", stderr(&out));
    let inside = |n: u32| {
        [
            format!(".... Enter openat() systemcall, argument is inside-{n}"),
            ".... Exit openat() systemcall".to_string(),
        ]
    };
    let mut want = Vec::new();
    for n in [1, 2] {
        want.extend(["> outer".to_string(), "  > inner".to_string()]);
        want.extend(inside(n));
        want.extend(["  < inner".to_string(), "< outer".to_string()]);
    }
    want.push("> inner".to_string());
    want.extend(inside(3));
    want.push("< inner".to_string());
    assert_lines(&stdout_lines(&out), &want, "trace -u outer,inner -s openat ./reenter");
}
