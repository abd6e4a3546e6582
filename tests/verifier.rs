//! A program the verifier rejects comes back with the verifier's log, and the
//! message says that this is a bug in trace.

use trace::bpf::{load_program, BpfError, ProgType};
use trace::bpf_asm::{Asm, Reg::*};
use trace::kernel::KernelVersion;

#[test]
fn a_rejected_program_carries_the_verifier_log() {
    // Returns without setting r0: every verifier refuses ("R0 !read_ok").
    let mut a = Asm::new();
    a.mov64(R1, 1).exit();
    let prog = a.link().unwrap();
    let err = load_program(ProgType::Kprobe, &prog.insns, "bad_read", KernelVersion::current()).unwrap_err();
    let BpfError::Verifier { log, .. } = &err else { panic!("expected a verifier error, got {err}") };
    assert!(log.contains("R0 !read_ok"), "{log}");
    let text = err.to_string();
    assert!(text.contains("verifier rejected the program for bad_read"), "{text}");
    assert!(text.contains("bug in trace"), "{text}");
    assert!(text.contains(log.as_str()), "the log is shown");
}

#[test]
fn a_good_program_loads() {
    let mut a = Asm::new();
    a.mov64(R0, 0).exit();
    let prog = a.link().unwrap();
    load_program(ProgType::Kprobe, &prog.insns, "ok", KernelVersion::current()).unwrap();
}
