//! `trace`: the command line. Definitions and wiring only; the work is in the library.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use trace::escape;
use trace::output::OutputOpts;
use trace::plan::Request;
use trace::session::{self, Config, Job, Target};
use trace::tell;

/// Trace a program's functions, its library calls, its system calls and the kernel
/// functions they reach, with eBPF assembled by hand. With no probe options it
/// traces the lab's set: every function of the program, libc's open, the open
/// system call, and the kernel's vfs_open and ext4_file_open.
#[derive(Parser, Debug)]
#[command(name = "trace", version, after_help = EXAMPLES)]
#[command(
    override_usage = "trace [OPTIONS] [--] COMMAND [ARGS]...\n       trace [OPTIONS] -p PID\n       trace [OPTIONS] --watch PROGRAM\n       trace -e 'PROGRAM' [-c 'COMMAND' | -p PID]\n       trace FILE.bt [-c 'COMMAND' | -p PID]\n       trace -l [PATTERN]"
)]
struct Cli {
    /// Trace a running process instead of starting COMMAND.
    #[arg(short, long, value_name = "PID", conflicts_with_all = ["watch", "command"])]
    pid: Option<u32>,

    /// Trace every process that runs PROGRAM (start it yourself, e.g. in another
    /// terminal) until Ctrl-C: the lab's two-terminal way of working.
    #[arg(short, long, value_name = "PROGRAM", conflicts_with = "command")]
    watch: Option<PathBuf>,

    /// Functions of the program itself (globs allowed: 'with_*'). Repeat or separate with commas.
    #[arg(short = 'u', long = "func", value_name = "NAME", value_delimiter = ',')]
    funcs: Vec<String>,

    /// Library functions, as NAME or LIB:NAME (e.g. open, libc:malloc).
    #[arg(short = 'L', long = "lib", value_name = "[LIB:]NAME", value_delimiter = ',')]
    libs: Vec<String>,

    /// System calls (any that tracefs knows: open, openat, read, ...).
    #[arg(short = 's', long = "syscall", value_name = "NAME", value_delimiter = ',')]
    syscalls: Vec<String>,

    /// Kernel functions (kprobes), e.g. vfs_open.
    #[arg(short = 'k', long = "kfunc", value_name = "NAME", value_delimiter = ',')]
    kfuncs: Vec<String>,

    /// Follow the children and threads the traced process creates; each line
    /// then starts with its thread id.
    #[arg(short = 'f', long)]
    follow: bool,

    /// Show every event of the traced process, not only those inside its traced
    /// functions (e.g. the dynamic loader's opens before main).
    #[arg(short = 'a', long = "all")]
    all_events: bool,

    /// Show return values on return lines (system call errors by name: -14 EFAULT).
    #[arg(short = 'r', long = "ret")]
    ret: bool,

    /// Show the time spent in each call on return lines, in seconds.
    #[arg(short = 'T', long = "time")]
    timing: bool,

    /// Data pages per CPU (a power of two): the BPF ring buffer gets this many times the CPUs
    /// (rounded up to a power of two), each perf ring this many.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = power_of_two)]
    ring_pages: usize,

    /// Before the trace, show on stderr every call trace makes to the kernel to set it up
    /// (bpf, perf_event_open, ioctl, mmap, the tracefs and sysfs files read), with
    /// decoded arguments and results, where each probe goes and why, and each program.
    #[arg(short = 'x', long)]
    explain: bool,

    /// List what can be traced, as SOURCE:NAME lines: a program's functions (-l ./file-io,
    /// -l './file-io:with_*'), a library's (-l 'libc:op*'), system calls (-l 'syscalls:*open*'),
    /// kernel functions (-l 'kernel:vfs_*'); a bare glob searches system calls and kernel
    /// functions.
    #[arg(
        short = 'l',
        long = "list",
        value_name = "PATTERN",
        num_args = 0..=1,
        default_missing_value = "*",
        conflicts_with_all = ["pid", "watch", "command"]
    )]
    list: Option<String>,

    /// Run COMMAND as root even under sudo (by default it runs as the user who ran sudo).
    #[arg(long)]
    as_root: bool,

    /// Benchmarks only: attach programs that do nothing (the kernel's own cost).
    #[arg(long, hide = true)]
    floor: bool,

    /// Tests only: do not read a string again at return when its entry could not.
    #[arg(long, hide = true)]
    no_string_retry: bool,

    /// Run this program, written in bpftrace's language (`trace.bt` files work
    /// the same way: `trace trace.bt`, or `#!/usr/local/bin/trace` as their first line).
    #[arg(short = 'e', value_name = "PROGRAM", conflicts_with_all = ["watch", "funcs", "libs", "syscalls", "kfuncs", "follow", "all_events", "ret", "timing"])]
    program: Option<String>,

    /// With -e or FILE.bt: the command to start and trace (split at spaces, as bpftrace does);
    /// `uprobe:FUNC` then means a function of it.
    #[arg(short = 'c', value_name = "COMMAND", conflicts_with_all = ["pid", "watch"], value_parser = clap::value_parser!(OsString))]
    run: Option<OsString>,

    /// The program to run and trace, with its arguments (bytes: a file name
    /// need not be UTF-8).
    #[arg(value_name = "COMMAND", trailing_var_arg = true, value_parser = clap::value_parser!(OsString))]
    command: Vec<OsString>,
}

const EXAMPLES: &str = "Examples:
  sudo trace ./file-io                  the lab's trace of file-io
  sudo trace -u native -s openat ./file-io
  sudo trace -r -T -s open,close ./file-io buggy
  sudo trace --watch ./file-io          then run ./file-io in another terminal
  sudo trace -x -s open ./file-io       the calls, programs and probes behind it
  sudo trace -l 'libc:op*'              what can be traced
  sudo trace -e 'tracepoint:syscalls:sys_enter_openat /comm == \"cat\"/ { printf(\"%s\\n\", str(args->filename)); }'
  sudo trace trace.bt -c ./file-io      a bpftrace script";

fn power_of_two(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n.is_power_of_two() => Ok(n),
        _ => Err(format!("`{s}` is not a power of two (try 64, 256 or 1024)")),
    }
}

/// `trace -l PATTERN`: 0 when something matched, 1 when nothing did, 2 on errors.
fn list(pattern: &str) -> ExitCode {
    match trace::list::list(pattern) {
        Ok(lines) if lines.is_empty() => {
            tell!(
                "trace: nothing matches `{}`; `trace --help` shows the kinds of pattern",
                escape::text(pattern)
            );
            ExitCode::from(1)
        }
        Ok(lines) => {
            let mut out = std::io::stdout().lock();
            for line in lines {
                if writeln!(out, "{line}").is_err() {
                    break; // `trace -l | head`
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            tell!("trace: {e}");
            ExitCode::from(2)
        }
    }
}

/// Whether `path` is a script rather than a program to run: a `.bt` file, or
/// a file whose `#!` line names trace or bpftrace (how the kernel runs
/// `./trace.bt`: `trace ./trace.bt`). A shell script is a command.
fn is_script(path: &OsStr) -> bool {
    let p = Path::new(path);
    if !p.is_file() {
        return false;
    }
    if p.extension().is_some_and(|e| e == "bt") {
        return true;
    }
    let mut head = [0u8; 256];
    let n = std::fs::File::open(p).and_then(|mut f| std::io::Read::read(&mut f, &mut head)).unwrap_or(0);
    let first = head[..n].split(|&b| b == b'\n').next().unwrap_or_default();
    interpreter_is_trace(&String::from_utf8_lossy(first))
}

/// `#!/usr/local/bin/trace`, `#!/usr/bin/env trace`, `#!/usr/local/bin/bpftrace`.
fn interpreter_is_trace(first_line: &str) -> bool {
    let Some(rest) = first_line.strip_prefix("#!") else { return false };
    let mut words = rest.split_whitespace();
    let base = |w: &str| w.rsplit('/').next().unwrap_or(w).to_string();
    match words.next().map(base).as_deref() {
        Some("env") => {
            words.find(|w| !w.starts_with('-')).map(base).is_some_and(|b| b == "trace" || b == "bpftrace")
        }
        Some(b) => b == "trace" || b == "bpftrace",
        None => false,
    }
}

/// Parses and checks a script against this kernel's tracepoints (tracefs,
/// when trace can mount it), printing warnings; errors are printed and exit 2.
fn compile(name: &str, text: &str) -> Result<trace::lang::Program, ExitCode> {
    let tracefs = trace::tracefs::Tracefs::open().ok();
    let schema: &dyn trace::lang::Schema = match &tracefs {
        Some(t) => t,
        None => &trace::lang::NoSchema,
    };
    match trace::lang::compile(name, text, schema) {
        Ok(program) => {
            trace::stdout::say(&program.warnings());
            Ok(program)
        }
        Err(e) => {
            tell!("{e}");
            Err(ExitCode::from(2))
        }
    }
}

/// A script to run, and the command it traces, if any.
struct Script {
    program: trace::lang::Program,
    command: Option<Vec<OsString>>,
}

/// The script of `-e` or FILE.bt, if there is one.
fn script(cli: &Cli) -> Result<Option<Script>, ExitCode> {
    let (name, text, rest) = match (&cli.program, cli.command.first()) {
        (Some(text), _) => ("-e".to_string(), text.clone(), cli.command.clone()),
        (None, Some(file)) if is_script(file) => {
            let name = escape::path(Path::new(file)).to_string();
            let text = std::fs::read_to_string(file).map_err(|e| {
                tell!("trace: cannot read the script {name}: {e}");
                ExitCode::from(2)
            })?;
            (name, text, cli.command[1..].to_vec())
        }
        _ => return Ok(None),
    };
    let flags_given =
        !(cli.funcs.is_empty() && cli.libs.is_empty() && cli.syscalls.is_empty() && cli.kfuncs.is_empty());
    if flags_given || cli.watch.is_some() || cli.follow || cli.all_events || cli.ret || cli.timing {
        tell!(
            "trace: {name}: a script says itself what to trace and print; -u -L -s -k -f -a -r -T and \
             --watch go with a COMMAND, not with a script"
        );
        return Err(ExitCode::from(2));
    }
    let command = match (&cli.run, rest.is_empty()) {
        (Some(run), true) => Some(split_command(run)),
        (None, false) if cli.program.is_some() => Some(rest),
        (None, true) => None,
        (_, false) => {
            tell!(
                "trace: {name}: unexpected arguments after the script: `{}`; give the command to trace \
                 with -c 'COMMAND' (positional parameters like $1 are not supported yet)",
                rest.iter().map(|a| escape::path(Path::new(a)).to_string()).collect::<Vec<_>>().join(" ")
            );
            return Err(ExitCode::from(2));
        }
    };
    let program = compile(&name, &text)?;
    Ok(Some(Script { program, command }))
}

/// `-c 'CMD ARGS'` split at spaces and tabs, as bpftrace splits it; the words
/// are bytes, as a command line's are.
fn split_command(run: &OsStr) -> Vec<OsString> {
    use std::os::unix::ffi::OsStrExt;
    run.as_bytes()
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .map(|w| OsStr::from_bytes(w).to_os_string())
        .collect()
}

/// `trace FILE.bt -c CMD`: options after a script file are the script's
/// (clap takes everything after the first positional argument as a command).
fn options_after_script(mut cli: Cli) -> Cli {
    let Some(file) = cli.command.first() else { return cli };
    if cli.program.is_some() || cli.command.len() == 1 || !is_script(file) {
        return cli;
    }
    let rest = cli.command.split_off(1);
    let more = Cli::parse_from(std::iter::once(OsString::from("trace")).chain(rest));
    cli.command.extend(more.command);
    cli.run = cli.run.or(more.run);
    cli.pid = cli.pid.or(more.pid);
    cli.explain |= more.explain;
    cli.as_root |= more.as_root;
    if more.ring_pages != 256 {
        cli.ring_pages = more.ring_pages;
    }
    cli
}

fn main() -> ExitCode {
    let cli = options_after_script(Cli::parse());
    if let Some(pattern) = &cli.list {
        return list(pattern);
    }
    let script = match script(&cli) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if script.is_none() && cli.run.is_some() {
        tell!("trace: -c goes with a script (-e 'PROGRAM' or FILE.bt); to trace a command, give it as is: `sudo trace ./file-io`");
        return ExitCode::from(2);
    }
    let (target, job) = match script {
        Some(Script { program, command }) => {
            let target = match (cli.pid, command) {
                (Some(pid), _) => Some(Target::Pid(pid)),
                (None, Some(argv)) if !argv.is_empty() => Some(Target::Command(argv)),
                _ => None,
            };
            (target, Job::Script { program: Box::new(program), no_string_retry: cli.no_string_retry })
        }
        None => {
            let target = match (cli.pid, cli.watch.clone()) {
                (Some(pid), _) => Target::Pid(pid),
                (None, Some(path)) => Target::Watch(path),
                (None, None) if !cli.command.is_empty() => Target::Command(cli.command.clone()),
                (None, None) => {
                    tell!(
                        "trace: nothing to trace: give a command (`sudo trace ./file-io`), a process \
                         (`-p PID`), a program to watch (`--watch ./file-io`) or a script \
                         (`-e 'PROGRAM'`, `trace.bt`); see `trace --help`"
                    );
                    return ExitCode::from(2);
                }
            };
            let request = Request {
                funcs: cli.funcs,
                libs: cli.libs,
                syscalls: cli.syscalls,
                kfuncs: cli.kfuncs,
                kfuncs_with_comm: Vec::new(),
                all_events: cli.all_events,
                floor: cli.floor,
                no_string_retry: cli.no_string_retry,
                timing: cli.timing,
            };
            let output = OutputOpts { ret: cli.ret, timing: cli.timing, show_tid: cli.follow };
            (Some(target), Job::Flags { request, output })
        }
    };
    let scope = match &target {
        Some(Target::Command(_)) => trace::privileges::Scope::Command,
        Some(Target::Pid(pid)) => trace::privileges::Scope::Pid(*pid),
        Some(Target::Watch(_)) | None => trace::privileges::Scope::Others,
    };
    if let Err(msg) = trace::privileges::check().and_then(|()| trace::privileges::check_scope(scope)) {
        tell!("trace: {msg}");
        return ExitCode::from(77);
    }
    if cli.explain {
        trace::explain::enable_stderr();
    }
    let config = Config { target, job, ring_pages: cli.ring_pages, as_root: cli.as_root, follow: cli.follow };
    match session::run(&config) {
        Ok(status) => ExitCode::from(status.clamp(0, 255) as u8),
        Err(e @ session::Error::Compile(_)) => {
            // Rendered like the checker's messages: they name the file and line.
            tell!("{e}");
            ExitCode::from(e.exit_code() as u8)
        }
        Err(e) => {
            tell!("trace: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_given_with_c_is_split_into_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let words = split_command(OsStr::from_bytes(b" ./prog  a\xff\tb "));
        assert_eq!(words, [OsStr::new("./prog"), OsStr::from_bytes(b"a\xff"), OsStr::new("b")]);
    }

    #[test]
    fn scripts_are_known_by_their_interpreter_line() {
        for yes in [
            "#!/usr/local/bin/trace",
            "#!/usr/local/bin/bpftrace",
            "#! /usr/bin/env trace",
            "#!/usr/bin/env -S trace",
        ] {
            assert!(interpreter_is_trace(yes), "{yes}");
        }
        for no in ["#!/bin/sh", "#!/usr/bin/env python3", "#!/usr/bin/tracer", "kprobe:f {}", "#!"] {
            assert!(!interpreter_is_trace(no), "{no}");
        }
    }
}
