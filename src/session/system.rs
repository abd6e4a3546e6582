//! What the kernel and the target offer: tracefs, kernel functions and why
//! they may be unavailable, the binary and process to trace.

use std::io;
use std::path::PathBuf;

use crate::elf::ElfFile;
use crate::kallsyms::{FilterFunctions, Kallsyms};
use crate::kernel::KernelVersion;
use crate::tracefs::Tracefs;

use super::*;
/// Why kernel functions cannot be probed here, or None if they can. trace
/// attaches kprobes only through the kprobe PMU (Linux 4.17+); tracefs
/// `kprobe_events` is looked at only to tell an old kernel from one without kprobes.
pub(super) fn kprobe_unavailable(kernel: KernelVersion, tracefs: Option<&Tracefs>) -> Option<String> {
    if crate::perf::pmu_type("kprobe").is_ok() {
        return None;
    }
    let root = tracefs.map_or(std::path::Path::new(crate::tracefs::DEFAULT_MOUNT), |t| t.root());
    let has_kprobe_events = root.join("kprobe_events").exists();
    Some(no_kprobes_reason(kernel, has_kprobe_events))
}

/// Why a kernel without a kprobe PMU cannot trace kernel functions.
pub(super) fn no_kprobes_reason(kernel: KernelVersion, has_kprobe_events: bool) -> String {
    const NO_PMU: &str = "no kprobe PMU in /sys/bus/event_source/devices";
    match (has_kprobe_events, !kernel.has_kprobe_pmu()) {
        (true, true) => format!(
            "kernel {kernel} is too old: trace attaches kprobes through the kprobe PMU, which came \
             with Linux {}, and does not use this kernel's tracefs kprobe_events",
            crate::kernel::KPROBE_PMU_SINCE
        ),
        (true, false) => {
            format!("this kernel has tracefs kprobe_events but {NO_PMU}, which trace needs to attach kprobes")
        }
        (false, _) => format!("this kernel has no kprobes ({NO_PMU}: built without CONFIG_KPROBES)"),
    }
}

/// The kernel functions asked for, to check their names: from the kernel's BTF
/// when it has them all (much cheaper to read), else from /proc/kallsyms (which
/// also knows functions BTF leaves out, and the close names a misspelling is
/// told about).
pub(super) fn kernel_functions(names: &[String]) -> Option<Kallsyms> {
    if crate::explain::enabled() {
        // --explain shows each function's address: from kallsyms, as it says.
        return Kallsyms::load().ok();
    }
    let wanted: Vec<&str> = names.iter().map(String::as_str).collect();
    match crate::btf::kernel_functions(&wanted) {
        Ok(found) if found.iter().all(|&f| f) => Some(Kallsyms::from_names(names)),
        _ => Kallsyms::load().ok(),
    }
}

/// The binary whose functions are probed, and the process, if known.
pub(super) fn resolve_target(target: &Target) -> Result<(PathBuf, Option<u32>), Error> {
    match target {
        Target::Command(argv) => {
            let cmd = argv.first().ok_or_else(|| Error::Process("no command given".into()))?;
            Ok((crate::process::find_program(cmd).map_err(Error::Spawn)?, None))
        }
        Target::Pid(pid) => {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).map_err(|e| no_program(*pid, e))?;
            // A thread's id names the process it belongs to: /proc has it too,
            // but a uprobe link and the `tgids` filter take the process id.
            let tgid = process_of(*pid).unwrap_or(*pid);
            if tgid != *pid {
                crate::tell!(
                    "trace: {pid} is a thread of process {tgid}: tracing the process (all its threads)"
                );
            }
            // The link's text is the path in the process's own mount namespace
            // (a container's), or the name of a file since deleted or replaced:
            // read in ours, it may name another file, whose functions would be
            // probed while the process runs its own, and nothing would show.
            // A path that resolves to the file the process runs (same device
            // and inode as the magic link /proc/PID/exe) is kept: in ours, else
            // through the process's root (/proc/PID/root/...), else the magic
            // link itself. The kernel resolves either for the uprobe (it
            // follows the links), and the ELF is read through it.
            use std::os::unix::fs::MetadataExt;
            // The file the process runs; an error when the process has gone
            // meanwhile (it may exit at any moment).
            let running = std::fs::metadata(format!("/proc/{tgid}/exe")).map_err(|e| no_program(tgid, e))?;
            let same_file = |p: &std::path::Path| {
                std::fs::metadata(p).is_ok_and(|a| (a.dev(), a.ino()) == (running.dev(), running.ino()))
            };
            if same_file(&exe) {
                return Ok((exe, Some(tgid)));
            }
            let magic = PathBuf::from(format!("/proc/{tgid}/exe"));
            if exe.to_string_lossy().ends_with(" (deleted)") {
                crate::tell!(
                    "trace: process {tgid} runs {}: the file was deleted or replaced since it started; \
                     tracing the one it runs, {}",
                    exe.display(),
                    magic.display()
                );
                return Ok((magic, Some(tgid)));
            }
            let inside =
                PathBuf::from(format!("/proc/{tgid}/root")).join(exe.strip_prefix("/").unwrap_or(&exe));
            let path = if same_file(&inside) { inside } else { magic };
            crate::tell!(
                "trace: process {tgid} runs {} of another mount namespace (a container's?), not the \
                 file of that name here: tracing {}",
                exe.display(),
                path.display()
            );
            Ok((path, Some(tgid)))
        }
        Target::Watch(path) => {
            if !path.is_file() {
                return Err(Error::Process(format!(
                    "{} is not a file: --watch takes the program to watch, e.g. --watch ./file-io",
                    path.display()
                )));
            }
            Ok((path.clone(), None))
        }
    }
}

/// Why process `pid` has no program to trace: /proc/PID/exe could not be read
/// (`err`). A zombie (it has exited; its parent has not collected it) and a
/// kernel thread both have no exe; /proc/PID/status tells them apart.
fn no_program(pid: u32, err: io::Error) -> Error {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok();
    let field = |name: &str| {
        status.as_deref().and_then(|s| s.lines().find_map(|l| l.strip_prefix(name)).map(str::trim))
    };
    match (err.kind(), field("State:"), field("Kthread:")) {
        (_, None, _) => {
            Error::Process(format!("no process with pid {pid} (it may have exited); `pgrep NAME` finds pids"))
        }
        (_, Some(state), _) if state.starts_with('Z') => Error::Process(format!(
            "process {pid} has exited (a zombie: its parent has not collected its status yet), so \
             nothing runs there to trace"
        )),
        (io::ErrorKind::NotFound, _, Some("1") | None) => Error::Process(format!(
            "process {pid} is a kernel thread: it runs no program in user space; trace a user process, \
             or kernel functions with -k"
        )),
        _ => Error::Process(format!(
            "cannot see which program process {pid} runs (/proc/{pid}/exe: {err}); is /proc mounted \
             with hidepid, or is trace in another PID namespace? Trace it by its program with --watch"
        )),
    }
}

/// The process (thread group) of thread `tid`: the `Tgid:` line of its /proc status.
pub(super) fn process_of(tid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("Tgid:"))?.trim().parse().ok()
}

/// What the kernel offers for probes, looked up once per session.
pub(super) struct System {
    pub(super) tracefs: Option<Tracefs>,
    pub(super) kallsyms: Option<Kallsyms>,
    pub(super) filter_functions: Option<FilterFunctions>,
    /// Why kernel functions cannot be probed, if so.
    pub(super) no_kprobes: Option<String>,
}

impl System {
    /// `kfuncs`: the kernel functions named (a glob needs all of kallsyms).
    pub(super) fn probe(
        kernel: KernelVersion,
        need_tracefs: bool,
        kfuncs: &[String],
    ) -> Result<System, Error> {
        let tracefs = match (need_tracefs, kfuncs.is_empty()) {
            (true, _) => Some(Tracefs::open().map_err(Error::Tracefs)?),
            // Kernel functions only read available_filter_functions from it, if they can.
            (false, false) => Tracefs::open().ok(),
            (false, true) => None,
        };
        let kallsyms = match kfuncs {
            [] => None,
            names if names.iter().any(|n| n.contains(['*', '?'])) => Kallsyms::load().ok(),
            names => kernel_functions(names),
        };
        let filter_functions = match (&tracefs, kfuncs.is_empty()) {
            (Some(t), false) => FilterFunctions::load(t.root()).ok(),
            _ => None,
        };
        let no_kprobes = if kfuncs.is_empty() { None } else { kprobe_unavailable(kernel, tracefs.as_ref()) };
        Ok(System { tracefs, kallsyms, filter_functions, no_kprobes })
    }
}

/// Checks a script against this system: its files, functions and events.
pub(super) fn lower_script(
    program: &crate::lang::Program,
    kernel: KernelVersion,
    elf: Option<&ElfFile>,
    retry_strings: bool,
) -> Result<(crate::lang::lower::Lowered, System), Error> {
    use crate::lang::ast::{ProbeKind, Target as PTarget};
    let probes = program.checked.programs.iter().map(|p| &p.probe);
    let kfuncs: Vec<String> = probes
        .clone()
        .filter_map(|p| match &p.target {
            PTarget::Kernel { func } => Some(func.text.clone()),
            _ => None,
        })
        .collect();
    let tracepoints = probes.clone().any(|p| p.kind == ProbeKind::Tracepoint);
    let sys = System::probe(kernel, tracepoints, &kfuncs)?;
    let env = crate::lang::lower::Env {
        tracefs: sys.tracefs.as_ref(),
        kallsyms: sys.kallsyms.as_ref(),
        filter_functions: sys.filter_functions.as_ref(),
        no_kprobes: sys.no_kprobes.clone(),
        cwd: std::env::current_dir().unwrap_or_default(),
        program: elf,
        retry_strings,
    };
    let lowered = crate::lang::lower::lower(&program.checked, &env)
        .map_err(|ds| Error::Compile(crate::lang::CompileError::new(&program.source, ds).to_string()))?;
    Ok((lowered, sys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn why_kernel_functions_are_unavailable() {
        assert_eq!(
            no_kprobes_reason(KernelVersion::new(4, 14, 320), true),
            "kernel 4.14.320 is too old: trace attaches kprobes through the kprobe PMU, which came with \
             Linux 4.17.0, and does not use this kernel's tracefs kprobe_events"
        );
        assert_eq!(
            no_kprobes_reason(KernelVersion::new(5, 10, 0), true),
            "this kernel has tracefs kprobe_events but no kprobe PMU in /sys/bus/event_source/devices, \
             which trace needs to attach kprobes"
        );
        for kernel in [KernelVersion::new(4, 9, 0), KernelVersion::new(6, 18, 44)] {
            assert_eq!(
                no_kprobes_reason(kernel, false),
                "this kernel has no kprobes (no kprobe PMU in /sys/bus/event_source/devices: built \
                 without CONFIG_KPROBES)"
            );
        }
    }
}
