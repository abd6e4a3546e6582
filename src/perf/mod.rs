//! perf_event_open(2) for the probe PMUs and tracepoints, and the per-CPU rings the
//! BPF programs write to.
//!
//! [`sys`] is the kernel boundary (the attr struct, the syscall, sysfs PMU files,
//! ioctls), [`ring`] reads mmapped perf rings, [`ringbuf`] the BPF ring buffer,
//! [`cpus`] parses sysfs CPU lists. The
//! common functions are re-exported here.

pub mod cpus;
mod error;
pub mod ring;
pub mod ringbuf;
pub mod sys;

pub use cpus::{online_cpus, parse_cpu_list, possible_cpus};
pub use error::{PerfError, PerfTarget};
pub use sys::{
    disable, enable, open_bpf_output, open_kprobe, open_tracepoint, open_uprobe, perf_event_open,
    pmu_retprobe_bit, pmu_type, set_bpf_and_enable, AttrFlags, PerfEventAttr,
};
