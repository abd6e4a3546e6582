//! Turns a probe's description into one small hand-assembled program.
//!
//! Every program has the same four blocks, marked in its listing:
//! filter (is this a process/thread we trace?), record (fill the record of
//! [`crate::record`] on the stack), string (read the string argument, or retry the
//! one the entry could not read), output (`bpf_perf_event_output`).

use crate::bpf_asm::{Asm, AsmError, Helper, JmpOp, Program, Reg, Size};
use crate::record::{self, Flags};

use Reg::*;

/// What the program's context (r1) points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ctx {
    /// struct pt_regs: kprobes and uprobes.
    PtRegs,
    /// The raw tracepoint record described by its tracefs format file.
    Tracepoint,
}

/// x86-64 `struct pt_regs` offsets (arch/x86/include/uapi/asm/ptrace.h).
pub mod pt_regs {
    pub const R9: i16 = 64;
    pub const R8: i16 = 72;
    pub const AX: i16 = 80;
    pub const CX: i16 = 88;
    pub const DX: i16 = 96;
    pub const SI: i16 = 104;
    pub const DI: i16 = 112;
    /// The System V x86-64 argument registers, in order.
    pub const ARGS: [i16; 6] = [DI, SI, DX, CX, R8, R9];
}

/// Where a value comes from in the context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// A u64 in pt_regs at this offset.
    Reg(i16),
    /// A tracepoint field: offset and size (1, 2, 4 or 8) from its format file.
    Field { offset: i16, size: u8 },
}

/// Which events the program lets through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Everything (the kernel already filters, e.g. a uprobe attached to one pid).
    None,
    /// Only processes in the `tgids` map.
    Tgid,
    /// Only threads inside a traced program function (the `depth` map).
    Inside,
}

/// The string argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StringOp {
    None,
    /// Read the string at this pointer; on failure stash the pointer under `pair`
    /// for the return probe (None: no retry, the failure is final).
    Read {
        ptr: Value,
        pair: Option<u32>,
    },
    /// Return probe: read again a string its entry (`pair`) could not read.
    Retry {
        pair: u32,
    },
}

/// Program functions count how deep each thread is inside them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    None,
    Enter,
    Exit,
}

/// Hidden probes that grow the set of traced processes (`tgids`) and send nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Register {
    /// An ordinary probe: it records.
    No,
    /// The current process (the entry-point uprobe of `--watch`).
    Current,
    /// The pid in this u32 tracepoint field (`child_pid` of sched_process_fork, `-f`).
    Field(i16),
}

/// Everything the generator needs to know about one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgSpec {
    pub probe_id: u32,
    pub ctx: Ctx,
    pub filter: Filter,
    /// Up to six values recorded in `vals`.
    pub values: Vec<Value>,
    pub string: StringOp,
    pub depth: Depth,
    /// Add a process to the traced set instead of recording anything.
    pub register: Register,
    /// The kernel floor: a program that only returns 0 (for benchmarks).
    pub floor: bool,
}

/// The file descriptors of the maps programs refer to.
#[derive(Clone, Copy, Debug)]
pub struct MapFds {
    /// PERF_EVENT_ARRAY, one ring per CPU.
    pub events: i32,
    /// HASH tgid (u32) -> 1 (u32): the traced processes.
    pub tgids: i32,
    /// HASH tid (u32) -> depth (u32): threads inside traced program functions.
    pub depth: i32,
    /// HASH {tid, pair} (u64) -> user pointer (u64): strings to read again at return.
    pub pending: i32,
    /// PERCPU_ARRAY [0] -> u64: records the ring had no room for.
    pub dropped: i32,
}

/// Which string helper this kernel has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Helpers {
    pub read_user_str: Helper,
}

impl Helpers {
    /// `bpf_probe_read_user_str` from 5.5, `bpf_probe_read_str` before it.
    pub fn for_kernel(k: crate::kernel::KernelVersion) -> Helpers {
        let read_user_str =
            if k.has_probe_read_user() { Helper::ProbeReadUserStr } else { Helper::ProbeReadStr };
        Helpers { read_user_str }
    }
}

/// BPF_F_CURRENT_CPU (include/uapi/linux/bpf.h): the index meaning "this CPU's
/// ring". Loaded with ld_imm64: a 64-bit mov of -1 would sign-extend it.
const BPF_F_CURRENT_CPU: u64 = 0xffff_ffff;
/// BPF_ANY for map updates (include/uapi/linux/bpf.h).
const BPF_ANY: i32 = 0;

// Stack frame (offsets from r10): the record, then key/value slots below it.
const REC: i16 = -(record::FULL_SIZE as i16);
const KEY8: i16 = REC - 8;
const VAL8: i16 = REC - 16;
const KEY4: i16 = REC - 24;
const VAL4: i16 = REC - 32;

fn rec(off: i16) -> i16 {
    REC + off
}

/// The program for one probe.
pub fn generate(spec: &ProgSpec, maps: &MapFds, helpers: Helpers) -> Result<Program, AsmError> {
    let mut a = Asm::new();
    if spec.floor {
        a.comment("kernel floor: attached, but does nothing");
        a.mov64(R0, 0).exit();
        return a.link();
    }
    a.comment("who is running? r6 = context, r7 = tgid << 32 | tid");
    a.mov64(R6, R1).call(Helper::GetCurrentPidTgid).mov64(R7, R0);
    filter(&mut a, spec, maps);
    match spec.register {
        Register::No => {}
        Register::Current => {
            a.comment("register this process in the traced set (tgids[tgid] = 1); nothing to record");
            a.mov64(R1, R7).rsh64(R1, 32);
        }
        Register::Field(off) => {
            a.comment("a traced process forked: add the child (tgids[child_pid] = 1); nothing to record");
            a.ldx(Size::W, R1, R6, off);
        }
    }
    if spec.register != Register::No {
        a.stx(Size::W, R10, KEY4, R1).st(Size::W, R10, VAL4, 1);
        map_update(&mut a, maps.tgids, KEY4, VAL4);
        a.label("out").mov64(R0, 0).exit();
        return a.link();
    }
    fill_record(&mut a, spec);
    if spec.depth == Depth::Enter {
        depth_enter(&mut a, maps);
    }
    match spec.string {
        StringOp::None => {}
        StringOp::Read { ptr, pair } => read_string(&mut a, ptr, pair, maps, helpers),
        StringOp::Retry { pair } => retry_string(&mut a, pair, maps, helpers),
    }
    if spec.depth == Depth::Exit {
        depth_exit(&mut a, maps);
    }
    a.comment("output: send the record to this CPU's ring (r9 = its size)");
    a.mov64(R1, R6)
        .ld_map_fd(R2, maps.events)
        .ld_imm64(R3, BPF_F_CURRENT_CPU)
        .mov64(R4, R10)
        .add64(R4, REC as i32)
        .mov64(R5, R9)
        .call(Helper::PerfEventOutput);
    a.jmp(JmpOp::Jeq, R0, 0, "out");
    a.comment("dropped: the ring was full; count it (dropped[0] += 1 on this CPU)");
    a.st(Size::W, R10, KEY4, 0);
    map_lookup(&mut a, maps.dropped, KEY4);
    a.jmp(JmpOp::Jeq, R0, 0, "out");
    a.ldx(Size::DW, R1, R0, 0).add64(R1, 1).stx(Size::DW, R0, 0, R1);
    a.label("out").mov64(R0, 0).exit();
    a.link()
}

fn filter(a: &mut Asm, spec: &ProgSpec, maps: &MapFds) {
    match spec.filter {
        Filter::None => {}
        Filter::Tgid => {
            a.comment("filter: only the traced processes (tgids map)");
            a.mov64(R1, R7).rsh64(R1, 32).stx(Size::W, R10, KEY4, R1);
            map_lookup(a, maps.tgids, KEY4);
            a.jmp(JmpOp::Jeq, R0, 0, "out");
        }
        Filter::Inside => {
            a.comment("filter: only while this thread is inside a traced function (depth map)");
            a.stx(Size::W, R10, KEY4, R7);
            map_lookup(a, maps.depth, KEY4);
            a.jmp(JmpOp::Jeq, R0, 0, "out");
        }
    }
}

fn map_lookup(a: &mut Asm, map: i32, key: i16) {
    a.ld_map_fd(R1, map).mov64(R2, R10).add64(R2, key as i32).call(Helper::MapLookupElem);
}

fn map_update(a: &mut Asm, map: i32, key: i16, value: i16) {
    a.ld_map_fd(R1, map)
        .mov64(R2, R10)
        .add64(R2, key as i32)
        .mov64(R3, R10)
        .add64(R3, value as i32)
        .mov64(R4, BPF_ANY)
        .call(Helper::MapUpdateElem);
}

fn map_delete(a: &mut Asm, map: i32, key: i16) {
    a.ld_map_fd(R1, map).mov64(R2, R10).add64(R2, key as i32).call(Helper::MapDeleteElem);
}

fn load_value(a: &mut Asm, dst: Reg, v: Value) {
    match v {
        Value::Reg(off) => a.ldx(Size::DW, dst, R6, off),
        Value::Field { offset, size } => {
            let size = match size {
                1 => Size::B,
                2 => Size::H,
                4 => Size::W,
                _ => Size::DW,
            };
            a.ldx(size, dst, R6, offset)
        }
    };
}

fn fill_record(a: &mut Asm, spec: &ProgSpec) {
    a.comment("record: probe id, flags, tgid, tid, time");
    a.st(Size::W, R10, rec(record::OFF_PROBE), spec.probe_id as i32)
        .st(Size::W, R10, rec(record::OFF_FLAGS), 0)
        .mov64(R1, R7)
        .rsh64(R1, 32)
        .stx(Size::W, R10, rec(record::OFF_TGID), R1)
        .stx(Size::W, R10, rec(record::OFF_TID), R7)
        .call(Helper::KtimeGetNs)
        .stx(Size::DW, R10, rec(record::OFF_KTIME), R0);
    a.comment("record: arguments / fields / return value");
    for i in 0..record::NVALS {
        let off = rec(record::OFF_VALS + 8 * i as i16);
        match spec.values.get(i) {
            Some(v) => {
                load_value(a, R1, *v);
                a.stx(Size::DW, R10, off, R1);
            }
            None => {
                a.st(Size::DW, R10, off, 0);
            }
        }
    }
    a.st(Size::DW, R10, rec(record::OFF_STR_PTR), 0).st(Size::DW, R10, rec(record::OFF_STR_RET), 0);
    a.comment("record: command name");
    a.mov64(R1, R10)
        .add64(R1, rec(record::OFF_COMM) as i32)
        .mov64(R2, record::COMM_LEN as i32)
        .call(Helper::GetCurrentComm)
        .mov64(R9, record::FIXED_SIZE as i32);
}

/// Stores {tid, pair} at KEY8.
fn pending_key(a: &mut Asm, pair: u32) {
    a.stx(Size::W, R10, KEY8, R7).st(Size::W, R10, KEY8 + 4, pair as i32);
}

fn read_into_record(a: &mut Asm, helpers: Helpers) {
    a.stx(Size::DW, R10, rec(record::OFF_STR_PTR), R8)
        .mov64(R1, R10)
        .add64(R1, rec(record::OFF_STR) as i32)
        .mov64(R2, record::STR_LEN as i32)
        .mov64(R3, R8)
        .call(helpers.read_user_str)
        .stx(Size::W, R10, rec(record::OFF_STR_RET), R0)
        .mov64(R9, record::FULL_SIZE as i32);
}

fn read_string(a: &mut Asm, ptr: Value, pair: Option<u32>, maps: &MapFds, helpers: Helpers) {
    a.comment("string: read it now (r8 = the pointer)");
    load_value(a, R8, ptr);
    read_into_record(a, helpers);
    a.jmp(JmpOp::Jsgt, R0, 0, "str_ok");
    let Some(pair) = pair else {
        a.ja("str_done");
        a.label("str_ok").st(Size::W, R10, rec(record::OFF_FLAGS), Flags::STR_PRESENT.bits() as i32);
        a.label("str_done");
        return;
    };
    a.comment("string: unreadable now (page not faulted in?): keep the pointer for the return probe");
    a.st(Size::W, R10, rec(record::OFF_FLAGS), Flags::STR_FAULT.bits() as i32);
    pending_key(a, pair);
    a.stx(Size::DW, R10, VAL8, R8);
    map_update(a, maps.pending, KEY8, VAL8);
    a.ja("str_done");
    a.label("str_ok").st(Size::W, R10, rec(record::OFF_FLAGS), Flags::STR_PRESENT.bits() as i32);
    a.label("str_done");
}

fn retry_string(a: &mut Asm, pair: u32, maps: &MapFds, helpers: Helpers) {
    a.comment("string: did the entry leave a pointer it could not read? read it again now");
    pending_key(a, pair);
    map_lookup(a, maps.pending, KEY8);
    a.jmp(JmpOp::Jeq, R0, 0, "retry_done");
    a.ldx(Size::DW, R8, R0, 0);
    map_delete(a, maps.pending, KEY8);
    read_into_record(a, helpers);
    a.st(Size::W, R10, rec(record::OFF_FLAGS), Flags::STR_RETRY.bits() as i32);
    a.label("retry_done");
}

fn depth_enter(a: &mut Asm, maps: &MapFds) {
    a.comment("depth: record the calls in progress, then count this one (depth[tid] += 1)");
    a.stx(Size::W, R10, KEY4, R7);
    map_lookup(a, maps.depth, KEY4);
    a.jmp(JmpOp::Jne, R0, 0, "depth_inc");
    a.st(Size::W, R10, VAL4, 1);
    map_update(a, maps.depth, KEY4, VAL4);
    a.ja("depth_done");
    // Only this thread touches its own entry, so a plain read-modify-write is safe.
    a.label("depth_inc")
        .ldx(Size::W, R1, R0, 0)
        .stx(Size::W, R10, rec(record::OFF_DEPTH), R1)
        .add64(R1, 1)
        .stx(Size::W, R0, 0, R1);
    a.label("depth_done");
}

fn depth_exit(a: &mut Asm, maps: &MapFds) {
    a.comment("depth: this call is over (depth[tid] -= 1, removed at 0); record what remains");
    a.stx(Size::W, R10, KEY4, R7);
    map_lookup(a, maps.depth, KEY4);
    a.jmp(JmpOp::Jeq, R0, 0, "depth_out");
    a.ldx(Size::W, R1, R0, 0).jmp(JmpOp::Jgt, R1, 1, "depth_dec");
    map_delete(a, maps.depth, KEY4);
    a.ja("depth_out");
    a.label("depth_dec").add64(R1, -1).stx(Size::W, R0, 0, R1).stx(Size::W, R10, rec(record::OFF_DEPTH), R1);
    a.label("depth_out");
}
