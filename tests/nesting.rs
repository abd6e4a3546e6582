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
