//! Smoke test of the kernel-matrix harness (`tests/matrix/run-guest.sh`).
//!
//! For each Debian suite it boots the stock cloud kernel under QEMU (TCG) with
//! a payload that prints the kernel release and the kprobe PMU type, checks
//! for the `sys_enter_open` tracepoint, runs a dynamically linked C program
//! built here with gcc that reads a file on the guest's loop-mounted ext4
//! `/work`, writes a line to stderr and exits 3; then checks every byte that
//! came back. Needs qemu-system-x86, busybox-static, e2fsprogs, cpio, gcc and
//! network access on the first run (see tests/matrix/README.md).
//!
//! Run with `cargo test --test matrix_smoke -- --nocapture` to see the kernel
//! releases and timings.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Contents of the file the C program reads from the guest's `/work`.
const DATA: &str = "matrix payload data";

/// The C program: reads `/work/data.txt` with open(2)/read(2) and prints it.
const C_PROGRAM: &str = r#"#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    const char *path = "/work/data.txt";
    char buf[256];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        perror("open-file: open /work/data.txt");
        return 1;
    }
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
        perror("open-file: read");
        return 1;
    }
    close(fd);
    printf("open-file: read %zd bytes from %s: %.*s\n", n, path, (int)n, buf);
    return 0;
}
"#;

/// The payload's entry point, run by the guest as `sh ./run.sh` in `/work`.
const RUN_SH: &str = r#"uname -r
cat /sys/bus/event_source/devices/kprobe/type
if [ -e /sys/kernel/tracing/events/syscalls/sys_enter_open/id ]; then
    echo "sys_enter_open id: present"
else
    echo "sys_enter_open id: missing"
fi
./open-file
echo "run.sh: a line on stderr" >&2
exit 3
"#;

/// Exact stderr the payload produces.
const EXPECTED_STDERR: &str = "run.sh: a line on stderr\n";

/// Dynamic PMUs (kprobe, uprobe, ...) get type numbers from PERF_TYPE_MAX up;
/// `PERF_TYPE_MAX` is 6 in include/uapi/linux/perf_event.h.
const PERF_TYPE_MAX: u32 = 6;

/// ELF program header type of the interpreter entry; include/uapi/linux/elf.h.
const PT_INTERP: u32 = 3;

/// What run-guest.sh wrote to its output directory.
struct GuestRun {
    stdout: String,
    stderr: String,
    status: String,
    uname: String,
}

/// The harness directory inside the repository.
fn matrix_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("matrix")
}

/// A fresh scratch directory for one suite's run.
fn scratch_dir(suite: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trace-matrix-smoke-{suite}-{}", std::process::id()));
    if dir.exists() {
        fs::remove_dir_all(&dir).expect("remove an old scratch dir");
    }
    fs::create_dir_all(&dir).expect("create the scratch dir");
    dir
}

/// Whether the 64-bit little-endian ELF image `elf` has a PT_INTERP program
/// header, i.e. is dynamically linked.
fn has_interpreter(elf: &[u8]) -> bool {
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap());
    assert_eq!(&elf[..5], b"\x7fELF\x02", "not a 64-bit ELF file");
    let phoff = usize::try_from(u64_at(0x20)).unwrap();
    let phentsize = usize::from(u16_at(0x36));
    let phnum = usize::from(u16_at(0x38));
    (0..phnum).any(|i| u32_at(phoff + i * phentsize) == PT_INTERP)
}

/// Compile the C program into `payload/open-file` with the host's gcc.
fn compile_program(scratch: &Path, payload: &Path) {
    let source = scratch.join("open-file.c");
    fs::write(&source, C_PROGRAM).expect("write the C source");
    let binary = payload.join("open-file");
    let output = Command::new("gcc")
        .arg("-O2")
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .output()
        .expect("run gcc (install the gcc package)");
    assert!(output.status.success(), "gcc failed: {}", String::from_utf8_lossy(&output.stderr));
    let image = fs::read(&binary).expect("read the compiled program");
    assert!(has_interpreter(&image), "gcc built a static program; the test needs a dynamically linked one");
}

/// Build the payload directory: run.sh, data.txt and the C program.
fn build_payload(scratch: &Path) -> PathBuf {
    let payload = scratch.join("payload");
    fs::create_dir_all(&payload).expect("create the payload dir");
    fs::write(payload.join("run.sh"), RUN_SH).expect("write run.sh");
    fs::write(payload.join("data.txt"), DATA).expect("write data.txt");
    compile_program(scratch, &payload);
    payload
}

/// Read one output file of run-guest.sh.
fn read_output(out: &Path, name: &str) -> String {
    let path = out.join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Run the payload in a `suite` guest.
fn run_guest(suite: &str, payload: &Path, out: &Path) -> GuestRun {
    let output = Command::new("bash")
        .arg(matrix_dir().join("run-guest.sh"))
        .arg(suite)
        .arg(payload)
        .arg(out)
        .output()
        .expect("run bash tests/matrix/run-guest.sh");
    assert!(
        output.status.success(),
        "run-guest.sh {suite} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    GuestRun {
        stdout: read_output(out, "stdout"),
        stderr: read_output(out, "stderr"),
        status: read_output(out, "status"),
        uname: read_output(out, "uname"),
    }
}

/// Boot `suite`'s kernel, run the payload and check everything it sent back;
/// the kernel release must start with `release_prefix`.
fn check_suite(suite: &str, release_prefix: &str) {
    let started = Instant::now();
    let scratch = scratch_dir(suite);
    let payload = build_payload(&scratch);
    let out = scratch.join("out");
    let run = run_guest(suite, &payload, &out);
    let release = run.uname.trim_end_matches('\n');

    assert!(
        release.starts_with(release_prefix),
        "{suite}: kernel release {release:?} does not start with {release_prefix:?}"
    );
    assert_eq!(run.uname, format!("{release}\n"), "{suite}: uname file");

    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{suite}: stdout should have 4 lines, got {:?}", run.stdout);
    assert_eq!(lines[0], release, "{suite}: uname -r inside the payload");
    let kprobe_type: u32 = lines[1]
        .parse()
        .unwrap_or_else(|_| panic!("{suite}: kprobe PMU type {:?} is not a number", lines[1]));
    assert!(kprobe_type >= PERF_TYPE_MAX, "{suite}: kprobe PMU type {kprobe_type} is below PERF_TYPE_MAX");
    assert_eq!(lines[2], "sys_enter_open id: present", "{suite}: tracepoint");
    let expected_read = format!("open-file: read {} bytes from /work/data.txt: {DATA}", DATA.len());
    assert_eq!(lines[3], expected_read, "{suite}: the C program's output");
    assert!(run.stdout.ends_with('\n'), "{suite}: stdout ends with a newline");

    assert_eq!(run.stderr, EXPECTED_STDERR, "{suite}: stderr");
    assert_eq!(run.status, "3\n", "{suite}: exit status");

    println!(
        "{suite}: kernel {release}, kprobe PMU type {kprobe_type}, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    fs::remove_dir_all(&scratch).expect("remove the scratch dir");
}

#[test]
fn bullseye_kernel_5_10() {
    check_suite("bullseye", "5.10.");
}

#[test]
fn bookworm_kernel_6_1() {
    check_suite("bookworm", "6.1.");
}

#[test]
fn trixie_kernel_6_12() {
    check_suite("trixie", "6.12.");
}
