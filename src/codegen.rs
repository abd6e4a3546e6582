//! Turns a probe's description into one small hand-assembled program.
//!
//! Every program has the same four blocks, marked in its listing:
//! filter (is this a process/thread we trace?), record (fill the record of
//! [`crate::record`] on the stack), string (read the string argument, or retry the
//! one the entry could not read), output (`bpf_ringbuf_output` into the BPF ring
//! buffer, or `bpf_perf_event_output` into the per-CPU perf rings; see [`Output`]).

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

/// The string a record carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StringOp {
    None,
    /// Read the string at this pointer; on failure stash the pointer under `pair`
    /// for the return probe (None: no retry, the failure is final).
    Read {
        ptr: Expr,
        pair: Option<u32>,
        space: Space,
    },
    /// Return probe: read again a string its entry (`pair`) could not read.
    Retry {
        pair: u32,
    },
    /// Like `Retry`, but the record is sent only when there was a string to
    /// read again (a script's entry printf gets its string this way).
    Refill {
        pair: u32,
    },
}

impl StringOp {
    /// A user string at a context value (the CLI's file name arguments).
    pub fn user(ptr: Value, pair: Option<u32>) -> StringOp {
        StringOp::Read { ptr: Expr::Ctx(ptr), pair, space: Space::User }
    }
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

/// A value a program computes: the expressions of the intermediate form that
/// the planner (CLI flags, the lab set) and the language lowering both produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    Const(u64),
    /// A register or a tracepoint field, zero-extended.
    Ctx(Value),
    /// The address of a tracepoint field inside the context (a `char[N]` to read).
    CtxAddr(i16),
    /// The low `bits` of the value, sign-extended to 64.
    SignExtend(Box<Expr>, u8),
    /// tgid (bpftrace's `pid`).
    Pid,
    /// Thread id.
    Tid,
    Uid,
    Cpu,
    /// bpf_ktime_get_ns().
    Nsecs,
    /// A scratch variable (its 8-byte stack slot).
    Var(u32),
    Neg(Box<Expr>),
    /// `!x`: 1 when x is 0, else 0.
    Not(Box<Expr>),
    /// `~x`.
    BitNot(Box<Expr>),
    /// Arithmetic, comparison (0/1) and short-circuit logic; `signed` picks
    /// signed comparisons, right shift and division.
    Binary {
        op: BinOp,
        signed: bool,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// The command name compared with a literal: 1 when equal (`eq`) or different.
    CommEq {
        eq: bool,
        literal: Vec<u8>,
    },
    /// The NUL-terminated string at `ptr` compared with a literal.
    StrEq {
        eq: bool,
        ptr: Box<Expr>,
        space: Space,
        literal: Vec<u8>,
    },
    /// bpf_get_stackid: an id in the `stacks` map (negative on failure).
    StackId {
        user: bool,
    },
    /// The value of a script's map (`MapFds::user[map]`) under `key` (0 for
    /// a map without keys); 0 when absent.
    MapRead {
        map: u32,
        key: Option<Box<Expr>>,
    },
}

/// The operators of [`Expr::Binary`] (the language's, minus none).
pub use crate::lang::ast::BinOp;

/// Whose memory a pointer points into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    User,
    /// Kernel memory (a tracepoint's `char[]` field, read from the context).
    Kernel,
}

/// A statement of the intermediate form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stmt {
    /// Stop here unless this is a traced process or thread.
    Filter(Filter),
    /// Add a process to the traced set, and stop.
    Register(Register),
    /// Stop here unless the value is non-zero (a predicate).
    Require(Expr),
    Assign {
        var: u32,
        value: Expr,
    },
    If {
        cond: Expr,
        then: Vec<Stmt>,
        otherwise: Vec<Stmt>,
    },
    /// Send one record.
    Emit(Emit),
    /// Stop the program here (after `exit()`).
    Return,
    /// `user[map][key] = value`.
    MapUpdate {
        map: u32,
        key: Option<Expr>,
        value: Expr,
    },
    /// Removes `user[map][key]`.
    MapDelete {
        map: u32,
        key: Option<Expr>,
    },
}

/// One record sent to user space: the header (`id` in its `probe` field), up
/// to six values, the command name, maybe a string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emit {
    /// What user space looks the record up by (a probe, or a printf site).
    pub id: u32,
    /// `id` is the probe's own (the probes of the command line). A program
    /// attached by a uprobe link reads it from the link's cookie instead (see
    /// [`Ids`]), so that probes alike but for their id share one program.
    pub probe_id: bool,
    /// Up to six values, in `vals`.
    pub values: Vec<Expr>,
    pub string: StringOp,
    pub depth: Depth,
    /// The record carries the time (bpf_ktime_get_ns): for `-T`, and always
    /// with per-CPU perf rings, whose records are merged by it. The ring buffer
    /// keeps one order for all CPUs, so otherwise the clock is not read.
    pub time: bool,
    /// The record carries the command name (bpf_get_current_comm).
    pub comm: bool,
}

/// Everything the generator needs to know about one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgSpec {
    pub ctx: Ctx,
    /// What the program does, in order.
    pub body: Vec<Stmt>,
    /// Scratch variables (8-byte stack slots).
    pub vars: u32,
    /// The kernel floor: a program that only returns 0 (for benchmarks).
    pub floor: bool,
}

impl ProgSpec {
    /// The shape of every probe of the CLI and the lab set: a filter, then one
    /// record with these values (and a string, and the depth bookkeeping).
    pub fn record(
        id: u32,
        ctx: Ctx,
        filter: Filter,
        values: Vec<Value>,
        string: StringOp,
        depth: Depth,
    ) -> Self {
        let mut body = Vec::new();
        if filter != Filter::None {
            body.push(Stmt::Filter(filter));
        }
        let values = values.into_iter().map(Expr::Ctx).collect();
        body.push(Stmt::Emit(Emit { id, probe_id: true, values, string, depth, time: true, comm: true }));
        ProgSpec { ctx, body, vars: 0, floor: false }
    }

    /// Sets what the records carry besides their values (see [`Emit::time`],
    /// [`Emit::comm`]): a record is made with both.
    pub fn carrying(mut self, time: bool, comm: bool) -> Self {
        for s in &mut self.body {
            if let Stmt::Emit(e) = s {
                (e.time, e.comm) = (time, comm);
            }
        }
        self
    }

    /// A hidden probe that only grows the traced set.
    pub fn register(ctx: Ctx, filter: Filter, register: Register) -> Self {
        let mut body = Vec::new();
        if filter != Filter::None {
            body.push(Stmt::Filter(filter));
        }
        body.push(Stmt::Register(register));
        ProgSpec { ctx, body, vars: 0, floor: false }
    }

    /// Whether a record carries the probe's own id ([`Emit::probe_id`]).
    pub fn has_probe_id(&self) -> bool {
        self.body.iter().any(|s| matches!(s, Stmt::Emit(e) if e.probe_id))
    }

    /// Whether `other` makes the same program as this one but for the probe's
    /// own id (read from a cookie, [`Ids::Cookie`]).
    pub fn alike(&self, other: &ProgSpec) -> bool {
        fn without_id(spec: &ProgSpec) -> ProgSpec {
            let mut spec = spec.clone();
            for s in &mut spec.body {
                if let Stmt::Emit(e) = s {
                    if e.probe_id {
                        e.id = 0;
                    }
                }
            }
            spec
        }
        without_id(self) == without_id(other)
    }

    /// The filter the program starts with.
    pub fn filter(&self) -> Filter {
        match self.body.first() {
            Some(Stmt::Filter(f)) => *f,
            _ => Filter::None,
        }
    }

    /// What a hidden probe registers (`Register::No` for every other probe).
    pub fn register_kind(&self) -> Register {
        self.body
            .iter()
            .find_map(|s| match s {
                Stmt::Register(r) => Some(*r),
                _ => None,
            })
            .unwrap_or(Register::No)
    }

    /// The context values the first record carries (for the explanation).
    pub fn record_values(&self) -> Vec<Value> {
        let emit = self.body.iter().find_map(|s| match s {
            Stmt::Emit(e) => Some(e),
            _ => None,
        });
        emit.map(|e| {
            e.values
                .iter()
                .filter_map(|v| match v {
                    Expr::Ctx(v) => Some(*v),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
    }

    /// Uses the stack-trace map.
    pub fn uses_stacks(&self) -> bool {
        fn expr(e: &Expr) -> bool {
            match e {
                Expr::StackId { .. } => true,
                Expr::SignExtend(e, _) | Expr::Neg(e) | Expr::Not(e) | Expr::BitNot(e) => expr(e),
                Expr::Binary { lhs, rhs, .. } => expr(lhs) || expr(rhs),
                Expr::StrEq { ptr, .. } => expr(ptr),
                Expr::MapRead { key, .. } => key.as_deref().is_some_and(expr),
                _ => false,
            }
        }
        fn stmts(ss: &[Stmt]) -> bool {
            ss.iter().any(|s| match s {
                Stmt::Require(e) | Stmt::Assign { value: e, .. } => expr(e),
                Stmt::If { cond, then, otherwise } => expr(cond) || stmts(then) || stmts(otherwise),
                Stmt::Emit(em) => em.values.iter().any(expr),
                Stmt::MapUpdate { key, value, .. } => key.as_ref().is_some_and(expr) || expr(value),
                Stmt::MapDelete { key, .. } => key.as_ref().is_some_and(expr),
                Stmt::Filter(_) | Stmt::Register(_) | Stmt::Return => false,
            })
        }
        stmts(&self.body)
    }
}

/// Where the programs send their records: the `events` map's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// `events` is a PERF_EVENT_ARRAY of per-CPU perf rings (any kernel).
    PerfRings,
    /// `events` is a RINGBUF (5.8+).
    Ringbuf,
}

/// The file descriptors of the maps programs refer to.
#[derive(Clone, Debug)]
pub struct MapFds {
    /// PERF_EVENT_ARRAY (one ring per CPU) or RINGBUF, as `output` says.
    pub events: i32,
    /// What `events` is.
    pub output: Output,
    /// HASH tgid (u32) -> 1 (u32): the traced processes.
    pub tgids: i32,
    /// LRU_HASH tid (u32) -> depth (u32): the traced program functions each
    /// thread is inside (0 once it has left them all).
    pub depth: i32,
    /// HASH {tid, pair} (u64) -> user pointer (u64): strings to read again at return.
    pub pending: i32,
    /// PERCPU_ARRAY [0] -> u64: records the ring had no room for.
    pub dropped: i32,
    /// STACK_TRACE: stack id -> frames (-1 when no program takes stacks).
    pub stacks: i32,
    /// A script's maps (`@name`): HASH u64 key -> i64 value each.
    pub user: Vec<i32>,
}

/// Which string helper this kernel has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Helpers {
    pub read_user_str: Helper,
    pub read_kernel_str: Helper,
}

impl Helpers {
    /// `bpf_probe_read_user_str` from 5.5, `bpf_probe_read_str` before it.
    pub fn for_kernel(k: crate::kernel::KernelVersion) -> Helpers {
        let read_user_str =
            if k.has_probe_read_user() { Helper::ProbeReadUserStr } else { Helper::ProbeReadStr };
        let read_kernel_str =
            if k.has_probe_read_user() { Helper::ProbeReadKernelStr } else { Helper::ProbeReadStr };
        Helpers { read_user_str, read_kernel_str }
    }
}

/// BPF_F_CURRENT_CPU (include/uapi/linux/bpf.h): the index meaning "this CPU's
/// ring". Loaded with ld_imm64: a 64-bit mov of -1 would sign-extend it.
const BPF_F_CURRENT_CPU: u64 = 0xffff_ffff;
/// bpf_ringbuf_output flags 0: neither BPF_RB_NO_WAKEUP (1) nor
/// BPF_RB_FORCE_WAKEUP (2) (include/uapi/linux/bpf.h), so the kernel decides
/// (kernel/bpf/ringbuf.c: it wakes the reader when the reader had caught up).
const BPF_RB_ADAPTIVE_WAKEUP: i32 = 0;
/// BPF_ANY for map updates (include/uapi/linux/bpf.h).
const BPF_ANY: i32 = 0;

/// BPF_F_USER_STACK for bpf_get_stackid (include/uapi/linux/bpf.h): the user stack.
const BPF_F_USER_STACK: i32 = 1 << 8;

// Stack frame (offsets from r10): the record, then key/value slots below it,
// a 16-byte command name to compare, then the variables and temporaries.
const REC: i16 = -(record::FULL_SIZE as i16);
const KEY8: i16 = REC - 8;
const VAL8: i16 = REC - 16;
const KEY4: i16 = REC - 24;
const VAL4: i16 = REC - 32;
const COMM_CMP: i16 = VAL4 - record::COMM_LEN as i16;
/// The 512-byte BPF stack (MAX_BPF_STACK, include/linux/filter.h).
const MAX_BPF_STACK: i16 = 512;
/// How many 8-byte slots are left for variables and temporaries.
pub const SLOTS: u32 = ((MAX_BPF_STACK + COMM_CMP) / 8) as u32;
/// The longest string literal a string comparison can take (read + 2 bytes must fit the record's string).
pub const MAX_STR_LITERAL: usize = record::STR_LEN - 2;

fn rec(off: i16) -> i16 {
    REC + off
}

/// Why a program could not be generated.
#[derive(Debug)]
pub enum GenError {
    Asm(AsmError),
    /// Variables and temporaries need more than the stack has.
    StackFull {
        needed: u32,
    },
}

impl std::fmt::Display for GenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GenError::Asm(e) => write!(f, "{e}"),
            GenError::StackFull { needed } => write!(
                f,
                "the program needs {needed} 8-byte stack slots for its variables and intermediate values, \
                 and BPF's 512-byte stack leaves {SLOTS}: use fewer variables or simpler expressions"
            ),
        }
    }
}

impl std::error::Error for GenError {}

impl From<AsmError> for GenError {
    fn from(e: AsmError) -> Self {
        GenError::Asm(e)
    }
}

/// Where a program finds the probe's own id it puts in its records
/// ([`Emit::probe_id`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ids {
    /// In the program: one program per probe.
    Immediate,
    /// In the attach cookie of each place it is attached at
    /// (`bpf_get_attach_cookie`, which uprobe links carry from Linux 6.6): one
    /// program for every probe alike ([`ProgSpec::alike`]) in one binary.
    Cookie,
}

/// The program for one probe (or, with [`Ids::Cookie`], for every probe alike).
pub fn generate(spec: &ProgSpec, maps: &MapFds, helpers: Helpers, ids: Ids) -> Result<Program, GenError> {
    let mut a = Asm::new();
    if spec.floor {
        a.comment("kernel floor: attached, but does nothing");
        a.mov64(R0, 0).exit();
        return Ok(a.link()?);
    }
    let needed = spec.vars + spec.body.iter().map(stmt_temps).max().unwrap_or(0);
    if needed > SLOTS {
        return Err(GenError::StackFull { needed });
    }
    let mut g = Gen { a, maps, helpers, ids, vars: spec.vars, labels: 0, emits: 0 };
    g.a.comment("who is running? r6 = context, r7 = tgid << 32 | tid");
    g.a.mov64(R6, R1).call(Helper::GetCurrentPidTgid).mov64(R7, R0);
    g.stmts(&spec.body, true);
    g.a.label("out").mov64(R0, 0).exit();
    Ok(g.a.link()?)
}

/// Sends the record (r9 = its size) to this CPU's perf ring; r0 = 0 when sent.
fn perf_output(a: &mut Asm, events: i32) {
    a.comment("output: send the record to this CPU's ring (r9 = its size)");
    a.mov64(R1, R6)
        .ld_map_fd(R2, events)
        .ld_imm64(R3, BPF_F_CURRENT_CPU)
        .mov64(R4, R10)
        .add64(R4, REC as i32)
        .mov64(R5, R9)
        .call(Helper::PerfEventOutput);
}

/// Sends the record (r9 = its size) to the BPF ring buffer; r0 = 0 when sent.
///
/// Flags 0: the kernel wakes the reader only with a record written when the
/// reader had read everything before it, the first after a quiet spell. trace
/// reads a busy ring in batches a few ms apart (see session/events.rs,
/// `gather_ms`), so that costs an interrupt (irq_work) per batch, not per
/// record. Waking it at a mark (bpf_ringbuf_query) would cost an interrupt per
/// record whenever the reader fell behind, and records from two CPUs can step
/// over a mark.
fn ringbuf_output(a: &mut Asm, events: i32) {
    a.comment("output: send the record to the ring buffer (r9 = its size)");
    a.ld_map_fd(R1, events)
        .mov64(R2, R10)
        .add64(R2, REC as i32)
        .mov64(R3, R9)
        .mov64(R4, BPF_RB_ADAPTIVE_WAKEUP)
        .call(Helper::RingbufOutput);
}

/// Temporaries an expression needs below the variables.
fn temps(e: &Expr) -> u32 {
    match e {
        Expr::Binary { op: BinOp::And | BinOp::Or, lhs, rhs, .. } => temps(lhs).max(temps(rhs)),
        Expr::Binary { lhs, rhs, .. } if is_leaf(rhs) => temps(lhs),
        Expr::Binary { lhs, rhs, .. } => temps(lhs).max(1 + temps(rhs)),
        Expr::SignExtend(e, _) | Expr::Neg(e) | Expr::Not(e) | Expr::BitNot(e) => temps(e),
        Expr::StrEq { ptr, .. } => temps(ptr),
        Expr::MapRead { key, .. } => key.as_deref().map_or(0, temps),
        _ => 0,
    }
}

fn stmt_temps(s: &Stmt) -> u32 {
    match s {
        Stmt::Require(e) | Stmt::Assign { value: e, .. } => temps(e),
        Stmt::If { cond, then, otherwise } => {
            temps(cond).max(then.iter().chain(otherwise).map(stmt_temps).max().unwrap_or(0))
        }
        Stmt::Emit(em) => {
            let s = match &em.string {
                StringOp::Read { ptr, .. } => temps(ptr),
                _ => 0,
            };
            em.values.iter().map(temps).max().unwrap_or(0).max(s)
        }
        Stmt::MapUpdate { key, value, .. } => key.as_ref().map_or(0, temps).max(temps(value)),
        Stmt::MapDelete { key, .. } => key.as_ref().map_or(0, temps),
        Stmt::Filter(_) | Stmt::Register(_) | Stmt::Return => 0,
    }
}

/// A value loaded with one or two instructions and no helper call.
fn is_leaf(e: &Expr) -> bool {
    matches!(e, Expr::Const(_) | Expr::Ctx(_) | Expr::CtxAddr(_) | Expr::Var(_) | Expr::Pid | Expr::Tid)
}

struct Gen<'a> {
    a: Asm,
    maps: &'a MapFds,
    helpers: Helpers,
    ids: Ids,
    vars: u32,
    labels: u32,
    /// Records emitted so far: the first one's labels keep their plain names.
    emits: u32,
}

impl Gen<'_> {
    fn label(&mut self, name: &str) -> String {
        self.labels += 1;
        format!("{name}_{}", self.labels)
    }

    fn slot(&self, i: u32) -> i16 {
        COMM_CMP - 8 * (i as i16 + 1)
    }

    /// `tail`: nothing runs after these statements but the program's end.
    /// Returns true when they always stop the program (what would follow is
    /// unreachable, and the verifier rejects unreachable instructions).
    fn stmts(&mut self, body: &[Stmt], tail: bool) -> bool {
        for (i, s) in body.iter().enumerate() {
            if self.stmt(s, tail && i + 1 == body.len()) {
                return true;
            }
        }
        false
    }

    /// Returns true when the statement always stops the program.
    fn stmt(&mut self, s: &Stmt, tail: bool) -> bool {
        let a = &mut self.a;
        match s {
            Stmt::Filter(f) => filter(a, *f, self.maps),
            Stmt::Register(r) => {
                register(a, *r, self.maps);
                return true;
            }
            Stmt::Require(cond) => {
                a.comment("predicate: go on only if it holds");
                self.expr(cond, 0);
                self.a.jmp(JmpOp::Jeq, R0, 0, "out");
            }
            Stmt::Assign { var, value } => {
                self.expr(value, 0);
                let at = self.slot(*var);
                self.a.stx(Size::DW, R10, at, R0);
            }
            Stmt::If { cond, then, otherwise } => {
                let (els, end) = (self.label("else"), self.label("endif"));
                self.expr(cond, 0);
                self.a.jmp(JmpOp::Jeq, R0, 0, &els);
                let then_stops = self.stmts(then, tail);
                if !then_stops {
                    self.a.ja(&end);
                }
                self.a.label(&els);
                let else_stops = self.stmts(otherwise, tail);
                self.a.label(&end);
                return then_stops && else_stops;
            }
            Stmt::Emit(e) => self.emit(e, tail),
            Stmt::Return => {
                a.ja("out");
                return true;
            }
            Stmt::MapUpdate { map, key, value } => {
                self.a.comment("map update: value at VAL8, key at KEY8");
                self.expr(value, 0);
                self.a.stx(Size::DW, R10, VAL8, R0);
                self.map_key(key.as_ref());
                map_update(&mut self.a, self.maps.user[*map as usize], KEY8, VAL8);
            }
            Stmt::MapDelete { map, key } => {
                self.a.comment("map delete: key at KEY8");
                self.map_key(key.as_ref());
                map_delete(&mut self.a, self.maps.user[*map as usize], KEY8);
            }
        }
        false
    }

    /// Loads a leaf value straight into `dst` (see [`is_leaf`]).
    fn leaf(&mut self, dst: Reg, e: &Expr) {
        let a = &mut self.a;
        match e {
            Expr::Const(c) => {
                match i32::try_from(*c as i64) {
                    Ok(imm) => a.mov64(dst, imm),
                    Err(_) => a.ld_imm64(dst, *c),
                };
            }
            Expr::Ctx(v) => load_value(a, dst, *v),
            Expr::CtxAddr(off) => {
                a.mov64(dst, R6).add64(dst, i32::from(*off));
            }
            Expr::Var(i) => {
                let at = self.slot(*i);
                self.a.ldx(Size::DW, dst, R10, at);
            }
            Expr::Pid => {
                a.mov64(dst, R7).rsh64(dst, 32);
            }
            Expr::Tid => {
                a.mov32(dst, R7);
            }
            _ => unreachable!("not a leaf: {e:?}"),
        }
    }

    /// Computes `e` into r0, using r1-r5 and temporaries from slot `vars + depth`.
    fn expr(&mut self, e: &Expr, depth: u32) {
        if is_leaf(e) {
            return self.leaf(R0, e);
        }
        match e {
            Expr::SignExtend(inner, bits) => {
                self.expr(inner, depth);
                let shift = 64 - i32::from(*bits);
                if shift > 0 {
                    self.a.lsh64(R0, shift).arsh64(R0, shift);
                }
            }
            Expr::Uid => {
                self.a.call(Helper::GetCurrentUidGid).mov32(R0, R0);
            }
            Expr::Cpu => {
                self.a.call(Helper::GetSmpProcessorId);
            }
            Expr::Nsecs => {
                self.a.call(Helper::KtimeGetNs);
            }
            Expr::Neg(inner) => {
                self.expr(inner, depth);
                self.a.neg64(R0);
            }
            Expr::BitNot(inner) => {
                self.expr(inner, depth);
                self.a.xor64(R0, -1);
            }
            Expr::Not(inner) => {
                self.expr(inner, depth);
                self.zero_test(JmpOp::Jeq);
            }
            Expr::Binary { op: op @ (BinOp::And | BinOp::Or), lhs, rhs, .. } => {
                let (short, end) = (self.label("short"), self.label("logic"));
                // &&: a false side decides (0); ||: a true side decides (1).
                let (decides, value) = if *op == BinOp::And { (JmpOp::Jeq, 0) } else { (JmpOp::Jne, 1) };
                self.expr(lhs, depth);
                self.a.jmp(decides, R0, 0, &short);
                self.expr(rhs, depth);
                self.a.jmp(decides, R0, 0, &short);
                self.a.mov64(R0, 1 - value).ja(&end);
                self.a.label(&short).mov64(R0, value);
                self.a.label(&end);
            }
            Expr::Binary { op, signed, lhs, rhs } => {
                self.expr(lhs, depth);
                if is_leaf(rhs) {
                    self.leaf(R1, rhs);
                } else {
                    let at = self.slot(self.vars + depth);
                    self.a.stx(Size::DW, R10, at, R0);
                    self.expr(rhs, depth + 1);
                    self.a.mov64(R1, R0).ldx(Size::DW, R0, R10, at);
                }
                self.binary(*op, *signed);
            }
            Expr::CommEq { eq, literal } => self.comm_eq(*eq, literal),
            Expr::StrEq { eq, ptr, space, literal } => {
                self.expr(ptr, depth);
                self.str_eq(*eq, *space, literal);
            }
            Expr::MapRead { map, key } => {
                let absent = self.label("absent");
                self.map_key(key.as_deref());
                map_lookup(&mut self.a, self.maps.user[*map as usize], KEY8);
                self.a.jmp(JmpOp::Jeq, R0, 0, &absent).ldx(Size::DW, R0, R0, 0).label(&absent);
            }
            Expr::StackId { user } => {
                self.a.comment(if *user { "the user stack's id" } else { "the kernel stack's id" });
                let flags = if *user { BPF_F_USER_STACK } else { 0 };
                self.a
                    .mov64(R1, R6)
                    .ld_map_fd(R2, self.maps.stacks)
                    .mov64(R3, flags)
                    .call(Helper::GetStackid);
            }
            _ => unreachable!("leaves are handled above"),
        }
    }

    /// Computes a map key into KEY8 (0 for a map without keys).
    fn map_key(&mut self, key: Option<&Expr>) {
        match key {
            Some(k) => {
                self.expr(k, 0);
                self.a.stx(Size::DW, R10, KEY8, R0);
            }
            None => {
                self.a.st(Size::DW, R10, KEY8, 0);
            }
        }
    }

    /// r0 = (r0 `op` 0) ? 1 : 0.
    fn zero_test(&mut self, op: JmpOp) {
        let yes = self.label("true");
        self.a.mov64(R1, R0).mov64(R0, 1).jmp(op, R1, 0, &yes).mov64(R0, 0).label(&yes);
    }

    /// r0 = r0 `op` r1.
    fn binary(&mut self, op: BinOp, signed: bool) {
        let cmp = |unsigned, signed_op| if signed { signed_op } else { unsigned };
        let jump = match op {
            BinOp::Eq => Some(JmpOp::Jeq),
            BinOp::Ne => Some(JmpOp::Jne),
            BinOp::Lt => Some(cmp(JmpOp::Jlt, JmpOp::Jslt)),
            BinOp::Le => Some(cmp(JmpOp::Jle, JmpOp::Jsle)),
            BinOp::Gt => Some(cmp(JmpOp::Jgt, JmpOp::Jsgt)),
            BinOp::Ge => Some(cmp(JmpOp::Jge, JmpOp::Jsge)),
            _ => None,
        };
        if let Some(j) = jump {
            let yes = self.label("true");
            self.a.mov64(R2, R0).mov64(R0, 1).jmp(j, R2, R1, &yes).mov64(R0, 0).label(&yes);
            return;
        }
        if signed && matches!(op, BinOp::Div | BinOp::Rem) {
            return self.signed_division(op);
        }
        let a = &mut self.a;
        match op {
            BinOp::Add => a.add64(R0, R1),
            BinOp::Sub => a.sub64(R0, R1),
            BinOp::Mul => a.mul64(R0, R1),
            BinOp::BitAnd => a.and64(R0, R1),
            BinOp::BitOr => a.or64(R0, R1),
            BinOp::BitXor => a.xor64(R0, R1),
            BinOp::Shl => a.lsh64(R0, R1),
            BinOp::Shr if signed => a.arsh64(R0, R1),
            BinOp::Shr => a.rsh64(R0, R1),
            BinOp::Div => a.div64(R0, R1),
            BinOp::Rem => a.mod64(R0, R1),
            _ => unreachable!("comparisons and logic are handled above"),
        };
    }

    /// Signed `/` and `%` on the magnitudes (BPF's signed division needs cpu v4,
    /// Linux 6.6): C's rules, the quotient truncated toward zero, the remainder
    /// taking the dividend's sign. Division by zero gives 0, as BPF's does.
    fn signed_division(&mut self, op: BinOp) {
        let (pos_a, pos_b, done) = (self.label("dividend"), self.label("divisor"), self.label("sign"));
        // r3: the sign that decides the result's (dividend ^ divisor, or the dividend).
        self.a.mov64(R3, R0);
        if op == BinOp::Div {
            self.a.xor64(R3, R1);
        }
        self.a.jmp(JmpOp::Jsge, R0, 0, &pos_a).neg64(R0).label(&pos_a);
        self.a.jmp(JmpOp::Jsge, R1, 0, &pos_b).neg64(R1).label(&pos_b);
        if op == BinOp::Div {
            self.a.div64(R0, R1);
        } else {
            self.a.mod64(R0, R1);
        }
        self.a.jmp(JmpOp::Jsge, R3, 0, &done).neg64(R0).label(&done);
    }

    /// r0 = (comm == literal) for `eq`, else its negation.
    fn comm_eq(&mut self, eq: bool, literal: &[u8]) {
        if literal.len() >= record::COMM_LEN {
            // A command name is at most 15 bytes: never equal (the checker warns).
            self.a.mov64(R0, i32::from(!eq));
            return;
        }
        let mut padded = [0u8; record::COMM_LEN];
        padded[..literal.len()].copy_from_slice(literal);
        let word = |i: usize| u64::from_le_bytes(padded[8 * i..8 * i + 8].try_into().expect("8 bytes"));
        let differ = self.label("differ");
        let end = self.label("compared");
        self.a.comment(&format!(
            "is the command name {:?}? (two 8-byte words)",
            String::from_utf8_lossy(literal)
        ));
        self.a
            .mov64(R1, R10)
            .add64(R1, COMM_CMP as i32)
            .mov64(R2, record::COMM_LEN as i32)
            .call(Helper::GetCurrentComm);
        for i in 0..2 {
            self.a.ldx(Size::DW, R1, R10, COMM_CMP + 8 * i as i16).ld_imm64(R2, word(i)).jmp(
                JmpOp::Jne,
                R1,
                R2,
                &differ,
            );
        }
        self.a.mov64(R0, i32::from(eq)).ja(&end);
        self.a.label(&differ).mov64(R0, i32::from(!eq));
        self.a.label(&end);
    }

    /// r0 = (the string at r0 == literal), read into the record's string area.
    fn str_eq(&mut self, eq: bool, space: Space, literal: &[u8]) {
        let literal = &literal[..literal.len().min(MAX_STR_LITERAL)];
        let differ = self.label("differ");
        let end = self.label("compared");
        self.a.comment(&format!(
            "is the string {:?}? (read it, then byte by byte)",
            String::from_utf8_lossy(literal)
        ));
        // Two bytes more than the literal: its NUL, and one to see a longer string.
        let helper = match space {
            Space::User => self.helpers.read_user_str,
            Space::Kernel => self.helpers.read_kernel_str,
        };
        self.a
            .mov64(R3, R0)
            .mov64(R1, R10)
            .add64(R1, rec(record::OFF_STR) as i32)
            .mov64(R2, literal.len() as i32 + 2)
            .call(helper)
            .jmp(JmpOp::Jslt, R0, 0, &differ);
        for (i, &b) in literal.iter().chain(std::iter::once(&0)).enumerate() {
            self.a.ldx(Size::B, R1, R10, rec(record::OFF_STR) + i as i16).jmp(
                JmpOp::Jne,
                R1,
                i32::from(b),
                &differ,
            );
        }
        self.a.mov64(R0, i32::from(eq)).ja(&end);
        self.a.label(&differ).mov64(R0, i32::from(!eq));
        self.a.label(&end);
    }

    /// `tail`: the program ends after this record, so sending it can jump to `out`.
    fn emit(&mut self, e: &Emit, tail: bool) {
        let suffix = if self.emits == 0 { String::new() } else { format!("_{}", self.emits) };
        self.emits += 1;
        let sent = if tail { "out".to_string() } else { self.label("sent") };
        self.fill_record(e);
        if e.depth == Depth::Enter {
            depth_enter(&mut self.a, self.maps, &suffix);
        }
        match &e.string {
            StringOp::None => {}
            StringOp::Read { ptr, pair, space } => {
                self.a.comment("string: read it now (r8 = the pointer)");
                if is_leaf(ptr) {
                    self.leaf(R8, ptr);
                } else {
                    self.expr(ptr, 0);
                    self.a.mov64(R8, R0);
                }
                read_string(&mut self.a, *space, *pair, self.maps, self.helpers, &suffix)
            }
            StringOp::Retry { pair } => {
                let done = format!("retry_done{suffix}");
                retry_string(&mut self.a, *pair, self.maps, self.helpers, &done);
                self.a.label(&done);
            }
            StringOp::Refill { pair } => retry_string(&mut self.a, *pair, self.maps, self.helpers, &sent),
        }
        if e.depth == Depth::Exit {
            depth_exit(&mut self.a, self.maps, &suffix);
        }
        match self.maps.output {
            Output::PerfRings => perf_output(&mut self.a, self.maps.events),
            Output::Ringbuf => ringbuf_output(&mut self.a, self.maps.events),
        }
        let a = &mut self.a;
        a.jmp(JmpOp::Jeq, R0, 0, &sent);
        a.comment("dropped: the ring was full; count it (dropped[0] += 1 on this CPU)");
        a.st(Size::W, R10, KEY4, 0);
        map_lookup(a, self.maps.dropped, KEY4);
        a.jmp(JmpOp::Jeq, R0, 0, &sent);
        a.ldx(Size::DW, R1, R0, 0).add64(R1, 1).stx(Size::DW, R0, 0, R1);
        if !tail {
            a.label(&sent);
        }
    }

    fn fill_record(&mut self, e: &Emit) {
        let time = e.time || self.maps.output == Output::PerfRings;
        let cookie = e.probe_id && self.ids == Ids::Cookie;
        let a = &mut self.a;
        let id = if cookie { "probe id (the cookie of the place it runs at)" } else { "probe id" };
        a.comment(&if time {
            format!("record: {id}, flags, tgid, tid, time")
        } else {
            format!("record: {id}, flags, tgid, tid (time 0: the ring buffer keeps the order, and nothing shows it)")
        });
        if cookie {
            a.mov64(R1, R6).call(Helper::GetAttachCookie).stx(Size::W, R10, rec(record::OFF_PROBE), R0);
        } else {
            a.st(Size::W, R10, rec(record::OFF_PROBE), e.id as i32);
        }
        a.st(Size::W, R10, rec(record::OFF_FLAGS), 0)
            .mov64(R1, R7)
            .rsh64(R1, 32)
            .stx(Size::W, R10, rec(record::OFF_TGID), R1)
            .stx(Size::W, R10, rec(record::OFF_TID), R7);
        if time {
            a.call(Helper::KtimeGetNs).stx(Size::DW, R10, rec(record::OFF_KTIME), R0);
        } else {
            a.st(Size::DW, R10, rec(record::OFF_KTIME), 0);
        }
        a.comment("record: arguments / fields / return value");
        for i in 0..record::NVALS {
            let off = rec(record::OFF_VALS + 8 * i as i16);
            match e.values.get(i) {
                Some(v) if is_leaf(v) => {
                    self.leaf(R1, v);
                    self.a.stx(Size::DW, R10, off, R1);
                }
                Some(v) => {
                    self.expr(v, 0);
                    self.a.stx(Size::DW, R10, off, R0);
                }
                None => {
                    self.a.st(Size::DW, R10, off, 0);
                }
            }
        }
        let a = &mut self.a;
        a.st(Size::DW, R10, rec(record::OFF_STR_PTR), 0).st(Size::DW, R10, rec(record::OFF_STR_RET), 0);
        if e.comm {
            a.comment("record: command name");
            a.mov64(R1, R10)
                .add64(R1, rec(record::OFF_COMM) as i32)
                .mov64(R2, record::COMM_LEN as i32)
                .call(Helper::GetCurrentComm);
        } else {
            a.st(Size::DW, R10, rec(record::OFF_COMM), 0).st(Size::DW, R10, rec(record::OFF_COMM) + 8, 0);
        }
        a.mov64(R9, record::FIXED_SIZE as i32);
    }
}

fn register(a: &mut Asm, register: Register, maps: &MapFds) {
    match register {
        Register::No => return,
        Register::Current => {
            a.comment("register this process in the traced set (tgids[tgid] = 1); nothing to record");
            a.mov64(R1, R7).rsh64(R1, 32);
        }
        Register::Field(off) => {
            a.comment("a traced process forked: add the child (tgids[child_pid] = 1); nothing to record");
            a.ldx(Size::W, R1, R6, off);
        }
    }
    a.stx(Size::W, R10, KEY4, R1).st(Size::W, R10, VAL4, 1);
    // Nothing follows: the program ends here (see `Gen::stmt`).
    map_update(a, maps.tgids, KEY4, VAL4);
}

fn filter(a: &mut Asm, filter: Filter, maps: &MapFds) {
    match filter {
        Filter::None => {}
        Filter::Tgid => {
            a.comment("filter: only the traced processes (tgids map)");
            a.mov64(R1, R7).rsh64(R1, 32).stx(Size::W, R10, KEY4, R1);
            map_lookup(a, maps.tgids, KEY4);
            a.jmp(JmpOp::Jeq, R0, 0, "out");
        }
        Filter::Inside => {
            a.comment("filter: only while this thread is inside a traced function (depth[tid] > 0)");
            a.stx(Size::W, R10, KEY4, R7);
            map_lookup(a, maps.depth, KEY4);
            a.jmp(JmpOp::Jeq, R0, 0, "out");
            a.ldx(Size::W, R1, R0, 0).jmp(JmpOp::Jeq, R1, 0, "out");
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

/// Stores {tid, pair} at KEY8.
fn pending_key(a: &mut Asm, pair: u32) {
    a.stx(Size::W, R10, KEY8, R7).st(Size::W, R10, KEY8 + 4, pair as i32);
}

/// Reads the string at r8 into the record; r0 = what the helper returned. The
/// record then ends with the string's NUL (r9 = its size): the ring carries the
/// bytes read, not the whole 256-byte buffer.
fn read_into_record(a: &mut Asm, helper: Helper, sfx: &str) {
    let sized = format!("str_sized{sfx}");
    a.stx(Size::DW, R10, rec(record::OFF_STR_PTR), R8)
        .mov64(R1, R10)
        .add64(R1, rec(record::OFF_STR) as i32)
        .mov64(R2, record::STR_LEN as i32)
        .mov64(R3, R8)
        .call(helper)
        .stx(Size::W, R10, rec(record::OFF_STR_RET), R0);
    a.comment("string: the record ends after its NUL (r9 += the length read, at most 256)");
    // The helper never returns more than it was given; the second test tells
    // the verifier so, on every kernel.
    a.jmp(JmpOp::Jsle, R0, 0, &sized)
        .jmp(JmpOp::Jsgt, R0, record::STR_LEN as i32, &sized)
        .add64(R9, R0)
        .label(&sized);
}

fn read_string(a: &mut Asm, space: Space, pair: Option<u32>, maps: &MapFds, helpers: Helpers, sfx: &str) {
    let helper = match space {
        Space::User => helpers.read_user_str,
        Space::Kernel => helpers.read_kernel_str,
    };
    let (ok, done) = (format!("str_ok{sfx}"), format!("str_done{sfx}"));
    read_into_record(a, helper, sfx);
    a.jmp(JmpOp::Jsgt, R0, 0, &ok);
    let Some(pair) = pair else {
        a.ja(&done);
        a.label(&ok).st(Size::W, R10, rec(record::OFF_FLAGS), Flags::STR_PRESENT.bits() as i32);
        a.label(&done);
        return;
    };
    a.comment("string: unreadable now (page not faulted in?): keep the pointer for the return probe");
    a.st(Size::W, R10, rec(record::OFF_FLAGS), Flags::STR_FAULT.bits() as i32);
    pending_key(a, pair);
    a.stx(Size::DW, R10, VAL8, R8);
    map_update(a, maps.pending, KEY8, VAL8);
    a.ja(&done);
    a.label(&ok).st(Size::W, R10, rec(record::OFF_FLAGS), Flags::STR_PRESENT.bits() as i32);
    a.label(&done);
}

/// Jumps to `none` when the entry left no pointer.
fn retry_string(a: &mut Asm, pair: u32, maps: &MapFds, helpers: Helpers, none: &str) {
    a.comment("string: did the entry leave a pointer it could not read? read it again now");
    pending_key(a, pair);
    map_lookup(a, maps.pending, KEY8);
    a.jmp(JmpOp::Jeq, R0, 0, none);
    a.ldx(Size::DW, R8, R0, 0);
    map_delete(a, maps.pending, KEY8);
    read_into_record(a, helpers.read_user_str, &format!("_{none}"));
    a.st(Size::W, R10, rec(record::OFF_FLAGS), Flags::STR_RETRY.bits() as i32);
}

fn depth_enter(a: &mut Asm, maps: &MapFds, sfx: &str) {
    let (inc, done) = (format!("depth_inc{sfx}"), format!("depth_done{sfx}"));
    a.comment("depth: record the calls in progress, then count this one (depth[tid] += 1)");
    a.stx(Size::W, R10, KEY4, R7);
    map_lookup(a, maps.depth, KEY4);
    a.jmp(JmpOp::Jne, R0, 0, &inc);
    a.st(Size::W, R10, VAL4, 1);
    map_update(a, maps.depth, KEY4, VAL4);
    a.ja(&done);
    // Only this thread touches its own entry, so a plain read-modify-write is safe.
    a.label(&inc).ldx(Size::W, R1, R0, 0).stx(Size::W, R10, rec(record::OFF_DEPTH), R1).add64(R1, 1).stx(
        Size::W,
        R0,
        0,
        R1,
    );
    a.label(&done);
}

/// The entry stays at 0 when the last call returns (`depth` is an LRU hash, see
/// `depth_entries` in session/maps.rs): deleting it and inserting it again at the
/// next call would cost each event of a program function a map update.
fn depth_exit(a: &mut Asm, maps: &MapFds, sfx: &str) {
    let out = format!("depth_out{sfx}");
    a.comment("depth: this call is over (depth[tid] -= 1, kept at 0); record what remains");
    a.stx(Size::W, R10, KEY4, R7);
    map_lookup(a, maps.depth, KEY4);
    a.jmp(JmpOp::Jeq, R0, 0, &out);
    a.comment("no call in progress (it began before trace attached): nothing to count down");
    a.ldx(Size::W, R1, R0, 0).jmp(JmpOp::Jeq, R1, 0, &out);
    a.add64(R1, -1).stx(Size::W, R0, 0, R1).stx(Size::W, R10, rec(record::OFF_DEPTH), R1);
    a.label(&out);
}
