//! Why a session failed, and the exit status each kind of failure gives.

use std::fmt;
use std::io;

use crate::bpf::{self};
use crate::codegen::{self};
use crate::plan::{self};

/// Why a session failed before or while tracing.
#[derive(Debug)]
pub enum Error {
    Spawn(crate::process::SpawnError),
    /// Whom to run the command as cannot be told (sudo's user is unknown here).
    Creds(crate::creds::CredsError),
    Elf(crate::elf::ElfError),
    Plan(plan::PlanError),
    Tracefs(crate::tracefs::TracefsError),
    Bpf(bpf::BpfError),
    Perf {
        probe: String,
        err: crate::perf::PerfError,
    },
    Gen(codegen::GenError),
    /// The verifier refused a program trace generated: a bug in trace. The
    /// listing goes with the verifier's log.
    Rejected {
        listing: String,
        err: bpf::BpfError,
    },
    /// A script names what does not exist here (rendered diagnostics).
    Compile(String),
    Process(String),
    Io(String, io::Error),
    NothingToTrace(Vec<plan::Skipped>),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Spawn(e) => write!(f, "{e}"),
            Error::Creds(e) => write!(f, "{e}"),
            Error::Elf(e) => write!(f, "{e}"),
            Error::Plan(e) => write!(f, "{e}"),
            Error::Tracefs(e) => write!(f, "{e}"),
            Error::Bpf(e) => write!(f, "{e}"),
            Error::Perf { probe, err } => write!(f, "attaching {probe}: {err}"),
            Error::Gen(codegen::GenError::Asm(e)) => write!(f, "generating a program (a bug in trace): {e}"),
            Error::Gen(e) => write!(f, "{e}"),
            Error::Compile(text) => write!(f, "{}", text.trim_end()),
            Error::Rejected { listing, err } => {
                write!(f, "{err}\nThe program, as trace generated it:\n{}", listing.trim_end())
            }
            Error::Process(s) => write!(f, "{s}"),
            Error::Io(what, e) => write!(f, "{what}: {e}"),
            Error::NothingToTrace(skipped) => {
                write!(f, "nothing left to trace: every probe asked for was skipped (")?;
                let names: Vec<_> = skipped.iter().map(|s| s.what.as_str()).collect();
                write!(f, "{}: {})", names.join(", "), skipped.first().map(|s| s.why.as_str()).unwrap_or(""))
            }
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// A distinct exit status per kind of failure (documented in the README).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Spawn(crate::process::SpawnError::NotFound(_)) => 127,
            Error::Spawn(crate::process::SpawnError::NotExecutable(_)) => 126,
            Error::Spawn(_) => 126,
            // sysexits.h's EX_NOUSER: the user named is unknown.
            Error::Creds(_) => 67,
            Error::Plan(_) | Error::Elf(_) | Error::Compile(_) => 2,
            Error::Gen(codegen::GenError::StackFull { .. }) => 2,
            Error::NothingToTrace(_) => 3,
            Error::Tracefs(_) => 4,
            Error::Bpf(bpf::BpfError::Verifier { .. }) | Error::Gen(_) | Error::Rejected { .. } => 70,
            // The process went away while its probes were attached (`-p`): a
            // fact about the process, as when it is missing from the start.
            Error::Perf { err: crate::perf::PerfError::NoProcess { .. }, .. } => 6,
            Error::Bpf(_) | Error::Perf { .. } => 5,
            Error::Process(_) => 6,
            Error::Io(..) => 74,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_program_is_shown_with_the_log() {
        let err = bpf::BpfError::Verifier {
            program: "uprobe:native".into(),
            err: io::Error::from_raw_os_error(libc::EACCES),
            log: "0: R1=ctx() R10=fp0\n0: (95) exit\nR0 !read_ok".into(),
        };
        let e = Error::Rejected { listing: "     0: (95) exit\n".into(), err };
        let text = e.to_string();
        assert!(text.contains("bug in trace"), "{text}");
        assert!(
            text.ends_with("R0 !read_ok\nThe program, as trace generated it:\n     0: (95) exit"),
            "{text}"
        );
        assert_eq!(e.exit_code(), 70);
    }

    #[test]
    fn a_process_gone_while_attaching_is_a_process_error() {
        let gone =
            Error::Perf { probe: "uprobe:f".into(), err: crate::perf::PerfError::NoProcess { pid: 42 } };
        assert_eq!(gone.exit_code(), 6, "as `-p` of a process that is not there");
        let other = Error::Perf {
            probe: "uprobe:f".into(),
            err: crate::perf::PerfError::InvalidArgument("x".into()),
        };
        assert_eq!(other.exit_code(), 5);
    }
}
