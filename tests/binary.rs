//! The shipped binary: statically linked, stripped, small.

use std::process::Command;

fn file(path: &str) -> String {
    let out =
        Command::new("file").arg("-b").arg(path).output().expect("`file` is installed (apt install file)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn release_binary_is_static_stripped_and_small() {
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet"])
        .current_dir(root)
        .status()
        .unwrap();
    assert!(status.success());
    let bin = format!("{root}/target/x86_64-unknown-linux-gnu/release/trace");
    let what = file(&bin);
    println!("{bin}: {what}");
    assert!(what.contains("static-pie linked") || what.contains("statically linked"), "{what}");
    assert!(what.contains(", stripped"), "{what}");
    let size = std::fs::metadata(&bin).unwrap().len();
    println!("size: {size} bytes");
    assert!(size <= 3 * 1024 * 1024, "the static binary is {size} bytes, over 3 MiB");
}

#[test]
fn test_binary_is_static_too() {
    // What the integration tests run (and copy into the QEMU guests).
    let what = file(env!("CARGO_BIN_EXE_trace"));
    assert!(what.contains("static-pie linked") || what.contains("statically linked"), "{what}");
}
