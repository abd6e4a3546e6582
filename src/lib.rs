//! trace: a Linux tracer that hand-assembles eBPF.
pub mod bpf_asm;
pub mod perf;
pub mod tracefs;
