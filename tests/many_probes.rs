//! Many probes: enough that their programs are loaded by several threads (see
//! `loaders_for` in src/session/attach.rs); they must still be attached in order and
//! every call traced.

mod common;
use common::*;
use std::process::Command;

/// 60 functions (120 probes), each called once in order by main.
fn build_many(n: usize) -> std::path::PathBuf {
    let dir = temp_dir("many-probes");
    let mut src = String::from("#include <stdio.h>\n");
    for i in 0..n {
        src += &format!(
            "__attribute__((noinline)) int work_{i:02}(int x) {{ __asm__ volatile(\"\" ::: \"memory\"); return x + {i}; }}\n"
        );
    }
    src += "int main(void) {\n\tint s = 0;\n";
    for i in 0..n {
        src += &format!("\ts = work_{i:02}(s);\n");
    }
    src += "\treturn s == 0;\n}\n";
    let c = dir.join("many.c");
    std::fs::write(&c, src).unwrap();
    let bin = dir.join("many");
    let out = Command::new("cc").args(["-O2", "-g", "-o"]).arg(&bin).arg(&c).output().expect("cc runs");
    assert!(out.status.success(), "building many.c failed:\n{}", String::from_utf8_lossy(&out.stderr));
    bin
}

/// Traces the 120 probes, uprobes attached as `links` says (TRACE_UPROBE_LINKS).
fn trace_many(links: bool) {
    let n = 60;
    let bin = build_many(n);
    let out = trace_command()
        .env("TRACE_UPROBE_LINKS", if links { "1" } else { "0" })
        .args(["-u", "work_*", "./many"])
        .current_dir(bin.parent().unwrap())
        .output()
        .expect("trace runs");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("Attaching {} probes...", 2 * n)), "{err}");
    let want: Vec<String> =
        (0..n).flat_map(|i| [format!("> work_{i:02}"), format!("< work_{i:02}")]).collect();
    assert_lines(&stdout_lines(&out), &want, "trace -u 'work_*' ./many");
}

/// As perf events: one program per probe, 120 loaded by several threads and
/// attached in order.
#[test]
fn a_hundred_and_twenty_probes_trace_every_call_in_order() {
    trace_many(false);
}

/// With uprobe links (where the kernel has them): the 60 entries share one
/// program and one link, and so do the returns; each record's probe id is its
/// offset's cookie, so every line still names its own function.
#[test]
fn a_hundred_and_twenty_probes_on_two_links_name_every_function() {
    trace_many(true);
}
