//! BPF links for uprobes: `BPF_LINK_CREATE` with `BPF_TRACE_UPROBE_MULTI` (Linux 6.6+).
//!
//! A link attaches a program to a uprobe without a perf event. What it changes is
//! the detach: closing a uprobe's perf event waits for RCU grace periods under
//! the kernel's global `event_mutex` (perf_uprobe_destroy), so N probes take N
//! waits one after the other (80-100 ms each on a 2-CPU VM: 0.8 s for the lab,
//! 18 s for 200 probes). Closing a link waits too (bpf_uprobe_unregister's sync),
//! but under no global lock: links closed from threads wait together.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::{owned_fd, sys_bpf, LoadedProgram, BPF_LINK_CREATE};
use crate::bpf_asm::{Asm, Reg};
use crate::explain;
use crate::kernel::KernelVersion;

/// BPF_TRACE_UPROBE_MULTI in enum bpf_attach_type (include/uapi/linux/bpf.h): the
/// program's expected_attach_type at load, and the link's attach_type.
pub const BPF_TRACE_UPROBE_MULTI: u32 = 48;
/// BPF_F_UPROBE_MULTI_RETURN (include/uapi/linux/bpf.h): the link is a uretprobe.
pub const BPF_F_UPROBE_MULTI_RETURN: u32 = 1;

/// The `BPF_LINK_CREATE` part of union bpf_attr with its `uprobe_multi` member
/// (include/uapi/linux/bpf.h): prog_fd, target_fd, attach_type, flags, then the
/// member at offset 16. 64 bytes, the last 4 padding.
#[repr(C)]
#[derive(Default)]
struct UprobeMultiAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    path: u64,
    offsets: u64,
    ref_ctr_offsets: u64,
    cookies: u64,
    cnt: u32,
    uprobe_flags: u32,
    pid: u32,
    _pad: u32,
}

impl UprobeMultiAttr {
    /// `{link_create={prog_fd=9, target_fd=0, attach_type=BPF_TRACE_UPROBE_MULTI(48),
    /// flags=0, uprobe_multi={path="/bin/x", offsets=[0x11e0], cnt=1, flags=0, pid=42}}}`
    /// (strace 6.1 shows the first four fields and `...`).
    fn describe(&self, path: &CStr, offsets: &[u64], cookies: &[u64]) -> String {
        let flags = match self.uprobe_flags {
            0 => "0".to_string(),
            BPF_F_UPROBE_MULTI_RETURN => "BPF_F_UPROBE_MULTI_RETURN".to_string(),
            f => format!("{f:#x}"),
        };
        let list = |v: &[u64], hex: bool| {
            v.iter()
                .map(|o| if hex { format!("{o:#x}") } else { o.to_string() })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let cookies =
            if cookies.is_empty() { String::new() } else { format!(", cookies=[{}]", list(cookies, false)) };
        format!(
            "{{link_create={{prog_fd={}, target_fd={}, attach_type=BPF_TRACE_UPROBE_MULTI({}), flags={}, \
             uprobe_multi={{path={}, offsets=[{}]{cookies}, cnt={}, flags={flags}, pid={}}}}}}}",
            self.prog_fd,
            self.target_fd,
            self.attach_type,
            self.flags,
            explain::quote(path.to_bytes()),
            list(offsets, true),
            self.cnt,
            self.pid as i32,
        )
    }
}

/// Attaches `prog` (loaded with expected_attach_type BPF_TRACE_UPROBE_MULTI) at
/// each file offset of `path`: its entries, or its returns when `ret`. `cookies`
/// is empty, or has one value per offset: what `bpf_get_attach_cookie` returns
/// to the program when it runs at that offset. With a `pid` (not 0) the
/// breakpoints go into that process only. Closing the returned link detaches it.
pub fn attach_uprobes(
    prog: BorrowedFd<'_>,
    path: &CStr,
    offsets: &[u64],
    cookies: &[u64],
    ret: bool,
    pid: u32,
) -> io::Result<OwnedFd> {
    if !cookies.is_empty() && cookies.len() != offsets.len() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "one cookie per offset, or none"));
    }
    let mut attr = UprobeMultiAttr {
        prog_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_TRACE_UPROBE_MULTI,
        path: path.as_ptr() as u64,
        offsets: offsets.as_ptr() as u64,
        cookies: if cookies.is_empty() { 0 } else { cookies.as_ptr() as u64 },
        cnt: offsets.len() as u32,
        uprobe_flags: if ret { BPF_F_UPROBE_MULTI_RETURN } else { 0 },
        pid,
        ..Default::default()
    };
    // `path`, `offsets` and `cookies` outlive the call; ref_ctr_offsets is NULL.
    sys_bpf(BPF_LINK_CREATE, &mut attr, |a| a.describe(path, offsets, cookies)).map(owned_fd)
}

/// Whether this kernel attaches uprobes with links the way trace needs: the link
/// type (Linux 6.6), and its pid filter for a whole process rather than one thread
/// (fixed in 6.10 and in the stable kernels since). `Ok` holds the program that
/// asked, for [`first_registration`]; `Err` says why not.
///
/// Asked of the kernel, not of its version: a trivial program is loaded for the
/// link type, then linked to `/` (a directory, so nothing is attached):
/// - pid 0: a kernel with the link type gets as far as the path and fails with
///   EBADF; an older one refuses the attach type with EINVAL;
/// - pid -1: the fixed kernels check the pid first (EINVAL); the first ones
///   did not and fail at the path again (EBADF).
pub fn uprobe_links(kernel: KernelVersion) -> Result<LoadedProgram, String> {
    let mut a = Asm::new();
    a.mov64(Reg::R0, 0).exit();
    let insns = a.link().map_err(|e| format!("assembling the probe program: {e}"))?.insns;
    let prog = super::load_program_for(
        super::ProgType::Kprobe,
        Some(BPF_TRACE_UPROBE_MULTI),
        &insns,
        "uprobe_link_ask",
        kernel,
    )
    .map_err(|e| format!("the kernel refused a program for uprobe links ({e})"))?;
    let root = c"/";
    let errno = |pid: u32| {
        attach_uprobes(prog.as_fd(), root, &[0], &[], false, pid).map_or_else(|e| e.raw_os_error(), |_| None)
    };
    if errno(0) != Some(libc::EBADF) {
        return Err("this kernel has no uprobe links (BPF_TRACE_UPROBE_MULTI, Linux 6.6+)".into());
    }
    if errno(u32::MAX) != Some(libc::EINVAL) {
        return Err(
            "this kernel's uprobe links filter by thread, not by process (fixed in Linux 6.10)".into()
        );
    }
    Ok(prog)
}

/// Makes a first uprobe registration, of `prog` (from [`uprobe_links`]) at offset
/// 0 of an empty memfd, then closes it; returns once the link is made and closed.
///
/// Why: the first uprobe registered after a quiet while waits for an RCU grace
/// period (register_for_each_vma takes dup_mmap_sem for writing, whose rcu_sync
/// waits one when idle); the ones made within a grace period or so of the last
/// one do not. Measured here: 7-23 ms for that first link, then 30-60 us for a
/// link made 0-10 ms after it. Made on a thread at start, the wait overlaps
/// reading the ELF files and loading the programs, and the probes' own links come
/// while it still counts.
///
/// Nothing is ever attached: nobody maps the memfd, and the pid filter is ours.
/// Closing the link waits again (for the uprobe's users to be gone), on this
/// thread; the kernel takes the path through `/proc/self/fd`.
pub fn first_registration(prog: BorrowedFd<'_>) -> io::Result<()> {
    let file =
        nix::sys::memfd::memfd_create(c"trace-first-uprobe", nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)?;
    let path =
        std::ffi::CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).expect("a number has no NUL");
    let link = attach_uprobes(prog, &path, &[0], &[], false, std::process::id())?;
    drop(link);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn the_attr_has_the_uapi_layout() {
        // union bpf_attr's link_create, include/uapi/linux/bpf.h: four u32, then
        // the uprobe_multi member at 16 (path, offsets, ref_ctr_offsets, cookies:
        // __aligned_u64; cnt, flags, pid: __u32).
        assert_eq!(size_of::<UprobeMultiAttr>(), 64);
        assert_eq!(offset_of!(UprobeMultiAttr, attach_type), 8);
        assert_eq!(offset_of!(UprobeMultiAttr, path), 16);
        assert_eq!(offset_of!(UprobeMultiAttr, offsets), 24);
        assert_eq!(offset_of!(UprobeMultiAttr, cookies), 40);
        assert_eq!(offset_of!(UprobeMultiAttr, cnt), 48);
        assert_eq!(offset_of!(UprobeMultiAttr, uprobe_flags), 52);
        assert_eq!(offset_of!(UprobeMultiAttr, pid), 56);
    }

    #[test]
    fn the_kernel_answers_as_its_version_says() {
        // Links with the process-wide pid filter: 6.10 (stable kernels got the fix
        // later; the machines this runs on are 6.18, and the matrix guests say
        // their answer in tests/kernel_matrix.rs).
        let kernel = KernelVersion::current();
        let answer = uprobe_links(kernel).map(|_| ());
        if (kernel.major, kernel.minor) >= (6, 10) {
            assert_eq!(answer, Ok(()));
        } else if (kernel.major, kernel.minor) < (6, 6) {
            assert!(answer.unwrap_err().contains("no uprobe links"));
        }
    }
}
