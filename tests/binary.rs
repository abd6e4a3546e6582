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
    let bin = format!("{root}/target/x86_64-unknown-linux-musl/release/trace");
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

/// The binary holds no NSS module loader: a static glibc one dlopens the
/// system's libnss_systemd to look up sudo's user and crashes in it (glibc's
/// loader names its modules `libnss_%s.so%s`). musl reads /etc/passwd and
/// /etc/group itself.
#[test]
fn no_nss_module_loader_is_linked_in() {
    let bytes = std::fs::read(env!("CARGO_BIN_EXE_trace")).unwrap();
    let found = bytes.windows(7).position(|w| w == b"libnss_");
    assert_eq!(found, None, "the binary can load NSS modules (is it linked with glibc?)");
}

/// Under sudo the tracer looks the user up in /etc/passwd and /etc/group and
/// opens no shared object while doing so (strace as the oracle).
#[test]
fn the_sudo_user_is_looked_up_without_loading_anything() {
    let dir = std::env::temp_dir().join(format!("trace-nss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("strace.txt");
    let out = Command::new("strace")
        .args(["-f", "-e", "trace=open,openat,execve", "-o"])
        .arg(&log)
        .args([env!("CARGO_BIN_EXE_trace"), "-s", "exit_group", "--", "/bin/true"])
        .env("SUDO_UID", "65534")
        .env("SUDO_GID", "65534")
        .env("SUDO_USER", "nobody")
        .output()
        .expect("strace is installed (apt install strace)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&log).unwrap();
    // Before the command's execve: the tracer's own opens (and the held child's).
    let tracer: Vec<&str> = text.lines().take_while(|l| !l.contains("execve(\"/bin/true\"")).collect();
    assert!(tracer.iter().any(|l| l.contains("\"/etc/passwd\"")), "{text}");
    assert!(tracer.iter().any(|l| l.contains("\"/etc/group\"")), "{text}");
    let loaded: Vec<&&str> = tracer.iter().filter(|l| l.contains(".so")).collect();
    assert!(loaded.is_empty(), "the tracer opened shared objects: {loaded:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
