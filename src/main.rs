//! `trace`: the command line. Definitions and wiring only; the work is in the library.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use trace::output::OutputOpts;
use trace::plan::Request;
use trace::session::{self, Config, Target};

/// Trace a program's functions, its library calls, its system calls and the kernel
/// functions they reach, with eBPF assembled by hand. With no probe options it
/// traces the lab's set: every function of the program, libc's open, the open
/// system call, and the kernel's vfs_open and ext4_file_open.
#[derive(Parser, Debug)]
#[command(name = "trace", version, after_help = EXAMPLES)]
#[command(
    override_usage = "trace [OPTIONS] [--] COMMAND [ARGS]...\n       trace [OPTIONS] -p PID\n       trace [OPTIONS] --watch PROGRAM\n       trace -l [PATTERN]"
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

    /// Data pages in each CPU's ring buffer (a power of two).
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

    /// The program to run and trace, with its arguments.
    #[arg(value_name = "COMMAND", trailing_var_arg = true)]
    command: Vec<String>,
}

const EXAMPLES: &str = "Examples:
  sudo trace ./file-io                  the lab's trace of file-io
  sudo trace -u native -s openat ./file-io
  sudo trace -r -T -s open,close ./file-io buggy
  sudo trace --watch ./file-io          then run ./file-io in another terminal
  sudo trace -x -s open ./file-io       the calls, programs and probes behind it
  sudo trace -l 'libc:op*'              what can be traced";

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
            eprintln!("trace: nothing matches `{pattern}`; `trace --help` shows the kinds of pattern");
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
            eprintln!("trace: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(pattern) = &cli.list {
        return list(pattern);
    }
    let target = match (cli.pid, cli.watch) {
        (Some(pid), _) => Target::Pid(pid),
        (None, Some(path)) => Target::Watch(path),
        (None, None) if !cli.command.is_empty() => Target::Command(cli.command),
        (None, None) => {
            eprintln!(
                "trace: nothing to trace: give a command (`sudo trace ./file-io`), a process \
                 (`-p PID`) or a program to watch (`--watch ./file-io`); see `trace --help`"
            );
            return ExitCode::from(2);
        }
    };
    if let Err(msg) = trace::privileges::check() {
        eprintln!("trace: {msg}");
        return ExitCode::from(77);
    }
    if cli.explain {
        trace::explain::enable_stderr();
    }
    let config = Config {
        target,
        request: Request {
            funcs: cli.funcs,
            libs: cli.libs,
            syscalls: cli.syscalls,
            kfuncs: cli.kfuncs,
            kfuncs_with_comm: Vec::new(),
            all_events: cli.all_events,
            floor: cli.floor,
            no_string_retry: cli.no_string_retry,
        },
        output: OutputOpts { ret: cli.ret, timing: cli.timing, show_tid: cli.follow },
        ring_pages: cli.ring_pages,
        as_root: cli.as_root,
        follow: cli.follow,
    };
    match session::run(&config) {
        Ok(status) => ExitCode::from(status.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("trace: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
