//! trace: a Linux tracer that hand-assembles eBPF, loads it with bpf(2), attaches
//! it with perf_event_open(2) and reads perf rings. The data flows down this list:
//!
//! - [`plan`]: what to trace -> probes with attach points ([`elf`], [`tracefs`], [`kallsyms`], [`btf`])
//! - [`codegen`]: each probe -> a program written with [`bpf_asm`], sending [`record`]s
//! - [`bpf`]: maps and program loading; [`perf`]: attaching and the per-CPU rings
//! - [`session`]: runs it all for a command, a pid or a watched binary
//! - [`output`]: records -> lines; [`escape`]: bytes of the traced world -> text safe to print
//! - [`explain`]: `--explain`, the account of every call trace makes; [`list`]: `trace -l`
pub mod bpf;
pub mod bpf_asm;
pub mod btf;
pub mod codegen;
pub mod creds;
pub mod elf;
pub mod errno;
pub mod escape;
pub mod explain;
pub mod kallsyms;
pub mod kernel;
pub mod knobs;
pub mod lang;
pub mod list;
pub mod output;
pub mod perf;
pub mod plan;
pub mod privileges;
pub mod process;
pub mod record;
pub mod session;
pub mod signals;
pub mod stacks;
pub mod stdout;
pub mod tracefs;
pub mod util;
