//! Kernel helper functions a program may call.
//!
//! The ids are the positions in `__BPF_FUNC_MAPPER` of include/uapi/linux/bpf.h
//! (`enum bpf_func_id`); they are ABI and never change. The names are the ones
//! kernel/bpf/disasm.c prints (`bpf_` + the mapper name).

macro_rules! helpers {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal => $name:literal, )*) => {
        /// A BPF helper function, identified by its `enum bpf_func_id` value
        /// (include/uapi/linux/bpf.h).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Helper {
            $( $(#[$doc])* $variant = $id, )*
        }

        impl Helper {
            /// Every helper this module knows, in id order.
            pub const ALL: &'static [Helper] = &[ $( Helper::$variant, )* ];

            /// The helper's name as the verifier prints it, e.g. `bpf_probe_read_user_str`.
            pub fn name(self) -> &'static str {
                match self {
                    $( Helper::$variant => $name, )*
                }
            }
        }
    };
}

helpers! {
    /// `void *bpf_map_lookup_elem(map, key)`
    MapLookupElem = 1 => "bpf_map_lookup_elem",
    /// `long bpf_map_update_elem(map, key, value, flags)`
    MapUpdateElem = 2 => "bpf_map_update_elem",
    /// `long bpf_map_delete_elem(map, key)`
    MapDeleteElem = 3 => "bpf_map_delete_elem",
    /// `long bpf_probe_read(dst, size, unsafe_ptr)` (any address space; pre-5.5)
    ProbeRead = 4 => "bpf_probe_read",
    /// `u64 bpf_ktime_get_ns(void)`
    KtimeGetNs = 5 => "bpf_ktime_get_ns",
    /// `long bpf_trace_printk(fmt, fmt_size, ...)`
    TracePrintk = 6 => "bpf_trace_printk",
    /// `u32 bpf_get_prandom_u32(void)`
    GetPrandomU32 = 7 => "bpf_get_prandom_u32",
    /// `u32 bpf_get_smp_processor_id(void)`
    GetSmpProcessorId = 8 => "bpf_get_smp_processor_id",
    /// `long bpf_tail_call(ctx, prog_array_map, index)`
    TailCall = 12 => "bpf_tail_call",
    /// `u64 bpf_get_current_pid_tgid(void)`: `tgid << 32 | tid`
    GetCurrentPidTgid = 14 => "bpf_get_current_pid_tgid",
    /// `u64 bpf_get_current_uid_gid(void)`: `gid << 32 | uid`
    GetCurrentUidGid = 15 => "bpf_get_current_uid_gid",
    /// `long bpf_get_current_comm(buf, size_of_buf)`
    GetCurrentComm = 16 => "bpf_get_current_comm",
    /// `u64 bpf_perf_event_read(map, flags)`
    PerfEventRead = 22 => "bpf_perf_event_read",
    /// `long bpf_perf_event_output(ctx, map, flags, data, size)`
    PerfEventOutput = 25 => "bpf_perf_event_output",
    /// `long bpf_get_stackid(ctx, map, flags)`
    GetStackid = 27 => "bpf_get_stackid",
    /// `u64 bpf_get_current_task(void)`
    GetCurrentTask = 35 => "bpf_get_current_task",
    /// `long bpf_probe_write_user(dst, src, len)`
    ProbeWriteUser = 36 => "bpf_probe_write_user",
    /// `long bpf_probe_read_str(dst, size, unsafe_ptr)` (any address space; pre-5.5)
    ProbeReadStr = 45 => "bpf_probe_read_str",
    /// `long bpf_override_return(regs, rc)`
    OverrideReturn = 58 => "bpf_override_return",
    /// `long bpf_get_stack(ctx, buf, size, flags)`
    GetStack = 67 => "bpf_get_stack",
    /// `u64 bpf_get_current_cgroup_id(void)`
    GetCurrentCgroupId = 80 => "bpf_get_current_cgroup_id",
    /// `long bpf_send_signal(sig)`
    SendSignal = 109 => "bpf_send_signal",
    /// `long bpf_probe_read_user(dst, size, unsafe_ptr)` (5.5+)
    ProbeReadUser = 112 => "bpf_probe_read_user",
    /// `long bpf_probe_read_kernel(dst, size, unsafe_ptr)` (5.5+)
    ProbeReadKernel = 113 => "bpf_probe_read_kernel",
    /// `long bpf_probe_read_user_str(dst, size, unsafe_ptr)` (5.5+)
    ProbeReadUserStr = 114 => "bpf_probe_read_user_str",
    /// `long bpf_probe_read_kernel_str(dst, size, unsafe_ptr)` (5.5+)
    ProbeReadKernelStr = 115 => "bpf_probe_read_kernel_str",
    /// `long bpf_send_signal_thread(sig)`
    SendSignalThread = 117 => "bpf_send_signal_thread",
    /// `u64 bpf_jiffies64(void)`
    Jiffies64 = 118 => "bpf_jiffies64",
    /// `long bpf_get_ns_current_pid_tgid(dev, ino, nsdata, size)`
    GetNsCurrentPidTgid = 120 => "bpf_get_ns_current_pid_tgid",
    /// `u64 bpf_ktime_get_boot_ns(void)`
    KtimeGetBootNs = 125 => "bpf_ktime_get_boot_ns",
    /// `long bpf_ringbuf_output(ringbuf, data, size, flags)`
    RingbufOutput = 130 => "bpf_ringbuf_output",
    /// `void *bpf_ringbuf_reserve(ringbuf, size, flags)`
    RingbufReserve = 131 => "bpf_ringbuf_reserve",
    /// `void bpf_ringbuf_submit(data, flags)`
    RingbufSubmit = 132 => "bpf_ringbuf_submit",
    /// `void bpf_ringbuf_discard(data, flags)`
    RingbufDiscard = 133 => "bpf_ringbuf_discard",
    /// `u64 bpf_ringbuf_query(ringbuf, flags)`
    RingbufQuery = 134 => "bpf_ringbuf_query",
    /// `long bpf_get_task_stack(task, buf, size, flags)`
    GetTaskStack = 141 => "bpf_get_task_stack",
    /// `long bpf_copy_from_user(dst, size, user_ptr)` (sleepable programs)
    CopyFromUser = 148 => "bpf_copy_from_user",
    /// `struct task_struct *bpf_get_current_task_btf(void)`
    GetCurrentTaskBtf = 158 => "bpf_get_current_task_btf",
    /// `u64 bpf_ktime_get_coarse_ns(void)`
    KtimeGetCoarseNs = 160 => "bpf_ktime_get_coarse_ns",
    /// `long bpf_snprintf(str, str_size, fmt, data, data_len)`
    Snprintf = 165 => "bpf_snprintf",
    /// `u64 bpf_get_func_ip(ctx)`
    GetFuncIp = 173 => "bpf_get_func_ip",
    /// `u64 bpf_get_attach_cookie(ctx)`
    GetAttachCookie = 174 => "bpf_get_attach_cookie",
    /// `long bpf_get_branch_snapshot(entries, size, flags)`
    GetBranchSnapshot = 176 => "bpf_get_branch_snapshot",
    /// `long bpf_trace_vprintk(fmt, fmt_size, data, data_len)`
    TraceVprintk = 177 => "bpf_trace_vprintk",
    /// `long bpf_get_func_arg(ctx, n, value)`
    GetFuncArg = 183 => "bpf_get_func_arg",
    /// `long bpf_get_func_ret(ctx, value)`
    GetFuncRet = 184 => "bpf_get_func_ret",
    /// `long bpf_get_func_arg_cnt(ctx)`
    GetFuncArgCnt = 185 => "bpf_get_func_arg_cnt",
    /// `u64 bpf_ktime_get_tai_ns(void)`
    KtimeGetTaiNs = 208 => "bpf_ktime_get_tai_ns",
}

impl Helper {
    /// The helper's `enum bpf_func_id` value, the `imm` of its call instruction.
    pub fn id(self) -> i32 {
        self as i32
    }

    /// The helper with this id, if this module knows it.
    pub fn from_id(id: i32) -> Option<Helper> {
        Helper::ALL.iter().copied().find(|h| h.id() == id)
    }
}

impl std::fmt::Display for Helper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.name(), self.id())
    }
}
