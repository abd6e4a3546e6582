//! `sudo ./trace ./file-io` as a student really runs it: from a normal account,
//! logged in with the real `su -`, through the real `sudo`.
//!
//! tests/privileges.rs fakes sudo by setting SUDO_UID/SUDO_GID/SUDO_USER for an
//! existing system user while staying root. That never looked up a user with
//! supplementary groups through the system's NSS (`group: files systemd` here),
//! which is where the static tracer crashed (glibc dlopens libnss_systemd for
//! getgrouplist). These tests create real accounts (`trace-student`, in three
//! supplementary groups, and `trace-loner`, in none) with a NOPASSWD sudoers
//! drop-in, copy the tracer and the lab into their homes, build the lab as them,
//! and run `sudo ./trace ...` as they would, plus the variants students and
//! other setups produce: `sudo -E`, `sudo -i`, redirected output, a doas-like
//! environment without SUDO_* variables, and SUDO_* naming a deleted user.
//!
//! They need root, `su` and `sudo` (run-tests installs sudo); without them they
//! say why and pass. The accounts are created once (idempotently) and left on
//! the machine.
//!
//! Nothing here looks users up through libc (getpwnam, getgrouplist): the test
//! binary is linked like the tracer, and would load the same NSS modules. The
//! system's own `id` and `getent` are the oracle instead.

mod common;
use common::*;

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::sync::OnceLock;

const STUDENT: &str = "trace-student";
const LONER: &str = "trace-loner";
const STUDENT_GROUPS: [&str; 3] = ["trace-g1", "trace-g2", "trace-g3"];
const SUDOERS: &str = "/etc/sudoers.d/trace-tests";
/// A user created then deleted, so that nothing on the machine has its name or ids.
const GONE: &str = "trace-gone";
const GONE_ID: u32 = 54321;

/// A real account, as the system reports it (`id`, `getent passwd`), root's view.
#[derive(Debug)]
struct Account {
    name: &'static str,
    uid: u32,
    gid: u32,
    /// Every group of the account, its primary group included (`id -G NAME`).
    groups: BTreeSet<u32>,
    home: PathBuf,
    /// `id NAME` as root prints it.
    id_line: String,
}

struct Accounts {
    student: Account,
    loner: Account,
}

// ---------------------------------------------------------------- set-up

/// The accounts, created on first use by whichever test comes first (tests run
/// in parallel threads); None, after saying why, when these tests cannot run here.
fn accounts() -> Option<&'static Accounts> {
    if let Some(why) = cannot_run() {
        eprintln!("real_accounts: skipped: {why}");
        return None;
    }
    static ACCOUNTS: OnceLock<Result<Accounts, String>> = OnceLock::new();
    match ACCOUNTS.get_or_init(set_up) {
        Ok(a) => Some(a),
        Err(e) => panic!("setting up the test accounts failed: {e}"),
    }
}

/// Why these tests cannot run (the only reasons they skip): not root, or no su/sudo.
fn cannot_run() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root (they create users and a sudoers file)".into());
    }
    for tool in ["su", "sudo"] {
        if find_in_path(tool).is_none() {
            return Some(format!("`{tool}` is not installed (apt-get install -y {tool})"));
        }
    }
    None
}

fn find_in_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs =
        std::env::split_paths(&path).chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from));
    dirs.map(|d| d.join(tool)).find(|p| p.is_file())
}

fn set_up() -> Result<Accounts, String> {
    // Another test process (a second checkout's run) may be setting up too:
    // useradd and groupadd fail on each other's locks.
    let lock = std::fs::File::create("/run/lock/trace-tests-accounts.lock")
        .or_else(|_| std::fs::File::create(std::env::temp_dir().join("trace-tests-accounts.lock")))
        .map_err(|e| format!("lock file: {e}"))?;
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("locking: {e}"))?;

    for g in STUDENT_GROUPS {
        if !exists("group", g) {
            root(Command::new("groupadd").arg(g))?;
        }
    }
    let shell = if Path::new("/bin/bash").exists() { "/bin/bash" } else { "/bin/sh" };
    let supplementary = STUDENT_GROUPS.join(",");
    for (user, groups) in [(STUDENT, supplementary.as_str()), (LONER, "")] {
        if !exists("passwd", user) {
            let mut add = Command::new("useradd");
            add.args(["--create-home", "--shell", shell]);
            if !groups.is_empty() {
                add.args(["--groups", groups]);
            }
            root(add.arg(user))?;
        } else {
            // Left by an earlier run: make its groups what the tests expect.
            root(Command::new("usermod").args(["--groups", groups, user]))?;
        }
    }

    // sudo ignores drop-ins whose name has a dot, so the candidate can sit next to it.
    let rules = format!(
        "# Made by trace's tests/real_accounts.rs: its test users run sudo without a password.\n\
         {STUDENT} ALL=(ALL:ALL) NOPASSWD: ALL\n{LONER} ALL=(ALL:ALL) NOPASSWD: ALL\n"
    );
    if std::fs::read_to_string(SUDOERS).ok().as_deref() != Some(rules.as_str()) {
        let candidate = format!("{SUDOERS}.new");
        std::fs::write(&candidate, &rules).map_err(|e| format!("writing {candidate}: {e}"))?;
        std::fs::set_permissions(&candidate, std::fs::Permissions::from_mode(0o440))
            .map_err(|e| format!("chmod {candidate}: {e}"))?;
        root(Command::new("visudo").args(["-cf", &candidate]))?;
        std::fs::rename(&candidate, SUDOERS).map_err(|e| format!("installing {SUDOERS}: {e}"))?;
    }

    let accounts = Accounts { student: account(STUDENT)?, loner: account(LONER)? };
    for a in [&accounts.student, &accounts.loner] {
        let out = su(a.name, "sudo -n true");
        if !out.status.success() {
            return Err(format!(
                "{} cannot run sudo without a password ({}): does /etc/sudoers read /etc/sudoers.d?",
                a.name,
                stderr(&out).trim()
            ));
        }
    }
    Ok(accounts)
}

/// Runs an administration command as root; its stderr on failure.
fn root(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?}: {}: {}", out.status, stderr(&out).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn exists(database: &str, key: &str) -> bool {
    Command::new("getent").args([database, key]).output().is_ok_and(|o| o.status.success())
}

fn account(name: &'static str) -> Result<Account, String> {
    let num = |flag: &str| -> Result<u32, String> {
        root(Command::new("id").args([flag, name]))?.parse().map_err(|e| format!("id {flag} {name}: {e}"))
    };
    let groups = root(Command::new("id").args(["-G", name]))?
        .split_whitespace()
        .map(|g| g.parse().map_err(|e| format!("id -G {name}: {e}")))
        .collect::<Result<_, _>>()?;
    let passwd = root(Command::new("getent").args(["passwd", name]))?;
    let home = passwd.split(':').nth(5).ok_or(format!("getent passwd {name}: {passwd}"))?;
    let home = PathBuf::from(home);
    if !home.is_dir() {
        return Err(format!("{name} has no home directory {}", home.display()));
    }
    let id_line = root(Command::new("id").arg(name))?;
    Ok(Account { name, uid: num("-u")?, gid: num("-g")?, groups, home, id_line })
}

// ---------------------------------------------------------------- running as a user

/// Runs `script` as `user` through the real `su -`: a login shell in the
/// user's home, with the user's own environment (no SUDO_* from this test).
/// In a new session, without a terminal, as in CI: sudo can then never stop
/// to ask for a password, and behaves the same when the tests run from a
/// terminal.
fn su(user: &str, script: &str) -> Output {
    let mut cmd = Command::new("su");
    cmd.args(["-", user, "-c", script]);
    in_new_session(&mut cmd);
    cmd.output().expect("su runs")
}

fn in_new_session(cmd: &mut Command) {
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(drop).map_err(std::io::Error::from));
    }
}

/// A fresh ~/lab-TAG of the user's, as the student's would be: the tracer
/// (`trace`, copied from this build), file-io.c and its Makefile, all theirs,
/// and file-io built by them with `make`.
fn lab(a: &Account, tag: &str) -> PathBuf {
    let dir = a.home.join(format!("lab-{tag}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(TRACE, dir.join("trace")).expect("copying the tracer");
    for f in ["file-io.c", "Makefile"] {
        std::fs::copy(repo().join("file-io").join(f), dir.join(f)).unwrap();
    }
    for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap).map(|e| e.path()).chain([dir.clone()]) {
        std::os::unix::fs::chown(&entry, Some(a.uid), Some(a.gid)).unwrap();
    }
    let out = su(a.name, &format!("cd ~/lab-{tag} && make -s"));
    assert!(out.status.success(), "make as {} failed: {}{}", a.name, stderr(&out), stdout_text(&out));
    dir
}

fn stdout_text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

// ---------------------------------------------------------------- checks

/// A status as a shell gives it: 128 + N when a process died of signal N (su,
/// sudo and the shell in between turn the tracer's death into that).
fn describe(status: ExitStatus) -> String {
    let name = |n: i32| nix::sys::signal::Signal::try_from(n).map(|s| s.as_str()).unwrap_or("?");
    match (status.code(), status.signal()) {
        (_, Some(n)) => format!("killed by signal {n} ({})", name(n)),
        (Some(c), _) if c > 128 => {
            format!("exit status {c} = 128 + {} ({}): something died of a signal", c - 128, name(c - 128))
        }
        (Some(c), _) => format!("exit status {c}"),
        _ => format!("{status}"),
    }
}

/// Nothing died: no signal, no 128+N, no crash or panic message on stderr.
fn assert_no_crash(status: ExitStatus, err: &str, what: &str) {
    let died = status.signal().is_some() || status.code().is_some_and(|c| c > 128);
    let said = ["Segmentation fault", "core dumped", "panicked", "Aborted"].iter().any(|m| err.contains(m));
    assert!(!died && !said, "{what}: crashed: {}\nstderr:\n{err}", describe(status));
}

/// The announcement this kernel gets for the lab's probes.
fn attaching() -> &'static str {
    if has_kprobes() {
        "Attaching 14 probes..."
    } else {
        "Attaching 10 probes..."
    }
}

/// A lab run succeeded as it does for root: exit 0, the lab's lines on stdout
/// (`out` is the stdout text), the announcement on stderr, and file-io ran in
/// `dir` as uid:gid (its output.txt is theirs).
fn check_lab(status: ExitStatus, out: &str, err: &str, dir: &Path, owner: (u32, u32), what: &str) {
    assert_no_crash(status, err, what);
    assert!(status.success(), "{what}: {}\nstderr:\n{err}", describe(status));
    let lines: Vec<String> = out.lines().map(str::to_string).collect();
    assert_lines(&lines, &lab_expected(has_kprobes()), what);
    assert!(err.lines().any(|l| l == attaching()), "{what}: no `{}` on stderr:\n{err}", attaching());
    let output = dir.join("output.txt");
    let written =
        std::fs::read_to_string(&output).unwrap_or_else(|e| panic!("{what}: {}: {e}", output.display()));
    assert_eq!(written, "hello from file-io\n", "{what}: output.txt");
    let meta = std::fs::metadata(&output).unwrap();
    assert_eq!((meta.uid(), meta.gid()), owner, "{what}: output.txt belongs to uid:gid {owner:?}");
}

/// `sudo ./trace ./file-io`, as the student types it, from the lab directory.
fn sudo_lab(a: &Account, tag: &str, sudo: &str) {
    let dir = lab(a, tag);
    let out = su(a.name, &format!("cd ~/lab-{tag} && {sudo} ./trace ./file-io"));
    let what = format!("`{sudo} ./trace ./file-io` as {}", a.name);
    check_lab(out.status, &stdout_text(&out), &stderr(&out), &dir, (a.uid, a.gid), &what);
}

/// uid, gid and the set of groups of an `id` line: `uid=1(a) gid=2(b) groups=2(b),3(c)`.
fn parse_id(line: &str) -> (u32, u32, BTreeSet<u32>) {
    let field = |key: &str| -> &str {
        let f = line.split_whitespace().find_map(|w| w.strip_prefix(key));
        f.unwrap_or_else(|| panic!("no {key} in `{line}`"))
    };
    let number = |s: &str| -> u32 {
        s.split('(').next().unwrap().parse().unwrap_or_else(|e| panic!("`{s}` in `{line}`: {e}"))
    };
    let groups = field("groups=").split(',').map(number).collect();
    (number(field("uid=")), number(field("gid=")), groups)
}

/// The value of `KEY:` in a copy of /proc/PID/status (Name, Uid, Gid, Groups, CapEff).
fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    let line = status.lines().find_map(|l| l.strip_prefix(&format!("{key}:")));
    line.unwrap_or_else(|| panic!("no {key}: in\n{status}")).trim()
}

// ---------------------------------------------------------------- tests

/// The student of the bug report: an account with supplementary groups.
#[test]
fn student_sudo_trace_runs_the_lab_as_the_student() {
    let Some(acc) = accounts() else { return };
    sudo_lab(&acc.student, "sudo", "sudo");
}

/// An account with no supplementary groups: only its primary group.
#[test]
fn loner_sudo_trace_runs_the_lab_as_the_loner() {
    let Some(acc) = accounts() else { return };
    sudo_lab(&acc.loner, "sudo", "sudo");
}

/// `sudo -E` keeps the student's environment; the command still runs as the
/// student, and sees the variables the student set.
#[test]
fn sudo_e_keeps_the_environment_and_runs_as_the_student() {
    let Some(acc) = accounts() else { return };
    let a = &acc.student;
    sudo_lab(a, "sudo-e", "sudo -E");
    let dir = a.home.join("lab-sudo-e");
    let out = su(
        a.name,
        "cd ~/lab-sudo-e && export TRACE_TEST_MARK=kept && \
         sudo -E ./trace -s openat -- /bin/sh -c 'echo \"$TRACE_TEST_MARK\" > env.txt'",
    );
    assert_no_crash(out.status, &stderr(&out), "sudo -E ./trace -- sh");
    assert!(out.status.success(), "sudo -E ./trace -- sh: {}\n{}", describe(out.status), stderr(&out));
    let env = std::fs::read_to_string(dir.join("env.txt")).unwrap();
    // (Only a variable of the student's own: which of HOME, PATH and the like
    // sudo -E keeps is sudo's policy, not trace's.)
    assert_eq!(env, "kept\n", "the student's variables reach the command through sudo -E and trace");
}

/// `sudo -i`: root's login shell, in root's home, runs trace; SUDO_USER and the
/// others are still set, so the command runs as the student.
#[test]
fn sudo_i_runs_the_command_as_the_student() {
    let Some(acc) = accounts() else { return };
    let a = &acc.student;
    let dir = lab(a, "sudo-i");
    let script = format!("sudo -i sh -c 'cd {} && ./trace ./file-io'", dir.display());
    let out = su(a.name, &script);
    let what = format!("`{script}` as {}", a.name);
    check_lab(out.status, &stdout_text(&out), &stderr(&out), &dir, (a.uid, a.gid), &what);
}

/// Students redirect: `sudo ./trace ./file-io > trace.txt 2> err.txt`. The
/// files are the student's (their shell makes them), with the lab's lines in
/// one and the announcement in the other.
#[test]
fn redirected_to_files() {
    let Some(acc) = accounts() else { return };
    let a = &acc.student;
    let dir = lab(a, "redirect");
    let out = su(a.name, "cd ~/lab-redirect && sudo ./trace ./file-io > trace.txt 2> err.txt");
    let (stdout, err) =
        (std::fs::read_to_string(dir.join("trace.txt")), std::fs::read_to_string(dir.join("err.txt")));
    let (stdout, err) = (stdout.expect("trace.txt"), err.expect("err.txt"));
    // What su's shell itself said (e.g. `Segmentation fault`) comes before err.txt's.
    let err = format!("{}{err}", stderr(&out));
    assert_eq!(stdout_text(&out), "", "everything went to the files");
    check_lab(
        out.status,
        &stdout,
        &err,
        &dir,
        (a.uid, a.gid),
        "sudo ./trace ./file-io > trace.txt 2> err.txt",
    );
    for f in ["trace.txt", "err.txt"] {
        let meta = std::fs::metadata(dir.join(f)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (a.uid, a.gid), "{f} is the student's");
    }
}

/// The traced command has exactly the user's uid, gid and groups, as `id USER`
/// computes them: trace /usr/bin/id itself and compare what it prints.
fn command_has_the_users_ids(a: &Account, tag: &str) {
    lab(a, tag);
    let out = su(a.name, &format!("cd ~/lab-{tag} && sudo ./trace -s openat -- id"));
    let what = format!("`sudo ./trace -s openat -- id` as {}", a.name);
    let err = stderr(&out);
    assert_no_crash(out.status, &err, &what);
    assert!(out.status.success(), "{what}: {}\n{err}", describe(out.status));
    let text = stdout_text(&out);
    // trace prints whole lines, one write per batch, and id one line: it stands alone.
    let printed: Vec<&str> = text.lines().filter(|l| l.starts_with("uid=")).collect();
    assert_eq!(printed.len(), 1, "{what}: one line of id's in:\n{text}");
    assert!(text.contains("argument is /etc/group"), "{what}: id's opens were traced:\n{text}");
    assert_eq!(
        parse_id(printed[0]),
        parse_id(&a.id_line),
        "{what}: the command's ids (left: `{}`) are the account's (right: `{}`)",
        printed[0],
        a.id_line
    );
    let (uid, gid, groups) = parse_id(printed[0]);
    assert_eq!((uid, gid, &groups), (a.uid, a.gid, &a.groups));
}

#[test]
fn student_command_has_the_students_uid_gid_and_groups() {
    let Some(acc) = accounts() else { return };
    let a = &acc.student;
    assert_eq!(
        a.groups.len(),
        1 + STUDENT_GROUPS.len(),
        "{STUDENT} is in its own group and three more: {a:?}"
    );
    command_has_the_users_ids(a, "id");
}

#[test]
fn loner_command_has_only_its_primary_group() {
    let Some(acc) = accounts() else { return };
    let a = &acc.loner;
    assert_eq!(a.groups, BTreeSet::from([a.gid]), "{LONER} has no supplementary group: {a:?}");
    command_has_the_users_ids(a, "id");
}

/// While the command runs as the student, its parent, the tracer, is still
/// root with every capability: the command copies both /proc/PID/status files.
#[test]
fn the_tracer_keeps_root_while_the_command_runs_as_the_student() {
    let Some(acc) = accounts() else { return };
    let a = &acc.student;
    let dir = lab(a, "creds");
    let out = su(
        a.name,
        "cd ~/lab-creds && sudo ./trace -s openat -- \
         /bin/sh -c 'cat /proc/$PPID/status > tracer.txt && cat /proc/$$/status > command.txt'",
    );
    let err = stderr(&out);
    assert_no_crash(out.status, &err, "sudo ./trace -- sh");
    assert!(out.status.success(), "sudo ./trace -- sh: {}\n{err}", describe(out.status));
    let tracer = std::fs::read_to_string(dir.join("tracer.txt")).unwrap();
    let command = std::fs::read_to_string(dir.join("command.txt")).unwrap();

    assert_eq!(status_field(&tracer, "Name"), "trace", "the command's parent is the tracer:\n{tracer}");
    assert_eq!(status_field(&tracer, "Uid"), "0\t0\t0\t0", "the tracer is root:\n{tracer}");
    assert_eq!(status_field(&tracer, "Gid"), "0\t0\t0\t0", "the tracer is root:\n{tracer}");
    let caps = u64::from_str_radix(status_field(&tracer, "CapEff"), 16).unwrap();
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    for cap in [CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF] {
        assert!(caps & (1 << cap) != 0, "the tracer kept capability {cap}:\n{tracer}");
    }

    let (uid, gid) = (a.uid.to_string(), a.gid.to_string());
    assert_eq!(status_field(&command, "Name"), "sh", "{command}");
    assert_eq!(
        status_field(&command, "Uid"),
        [&*uid; 4].join("\t"),
        "the command is the student:\n{command}"
    );
    assert_eq!(
        status_field(&command, "Gid"),
        [&*gid; 4].join("\t"),
        "the command is the student:\n{command}"
    );
    let groups: BTreeSet<u32> =
        status_field(&command, "Groups").split_whitespace().map(|g| g.parse().unwrap()).collect();
    assert_eq!(groups, a.groups, "the command has the student's groups:\n{command}");
    assert_eq!(status_field(&command, "CapEff"), "0000000000000000", "and no capability:\n{command}");
}

/// Root without SUDO_* variables (doas, a root shell, `sudo su -`): nobody to
/// hand the command to, so it runs as root.
#[test]
fn without_sudo_variables_the_command_runs_as_root() {
    let Some(_) = accounts() else { return };
    let dir = build_file_io("no-sudo-vars");
    std::fs::copy(TRACE, dir.join("trace")).unwrap();
    let out = Command::new("env")
        // DOAS_USER too, should the tests run under doas: trace may honour it.
        .args(["-u", "SUDO_UID", "-u", "SUDO_GID", "-u", "SUDO_USER", "-u", "DOAS_USER"])
        .args(["./trace", "./file-io"])
        .current_dir(&dir)
        .output()
        .expect("env runs");
    let what = "`env -u SUDO_UID -u SUDO_GID -u SUDO_USER ./trace ./file-io` as root";
    check_lab(out.status, &stdout_text(&out), &stderr(&out), &dir, (0, 0), what);
}

/// SUDO_* naming a user that no longer exists (sudo's user deleted, or the
/// variables copied by hand): no crash, a clear error.
#[test]
fn sudo_variables_of_a_deleted_user_are_a_clear_error() {
    let Some(_) = accounts() else { return };
    gone_user();
    let dir = build_file_io("gone-user");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let id = GONE_ID.to_string();
    let out = trace_command()
        .arg("./file-io")
        .current_dir(&dir)
        .env("SUDO_UID", &id)
        .env("SUDO_GID", &id)
        .env("SUDO_USER", GONE)
        .output()
        .expect("trace runs");
    let err = stderr(&out);
    let what = format!("SUDO_USER={GONE} SUDO_UID={id} SUDO_GID={id} trace ./file-io");
    assert!(out.status.signal().is_none(), "{what}: {}\nstderr:\n{err}", describe(out.status));
    assert!(!err.contains("panicked"), "{what}: {err}");

    // A clear error before anything runs: EX_NOUSER, naming the user and the
    // way out, and file-io never ran as a uid nobody owns.
    assert_eq!(out.status.code(), Some(67), "{what}: {err}");
    assert!(
        err.contains(&format!("SUDO_UID {id} (SUDO_USER {GONE}) is no user of this machine")),
        "{what}: {err}"
    );
    assert!(err.contains("--as-root"), "{what}: {err}");
    assert!(!err.contains("Attaching"), "{what}: nothing is attached: {err}");
    assert!(!dir.join("output.txt").exists(), "{what}: file-io ran");
}

/// Creates `trace-gone` with uid GONE_ID, then deletes it: after this nothing
/// on the machine has its name, its uid or a gid GONE_ID.
fn gone_user() {
    static GONE_ONCE: OnceLock<()> = OnceLock::new();
    GONE_ONCE.get_or_init(|| {
        let id = GONE_ID.to_string();
        if !exists("passwd", GONE) {
            assert!(!exists("passwd", &id), "uid {id} is taken by another user; pick another GONE_ID");
            root(Command::new("useradd").args(["--no-create-home", "--uid", &id, GONE])).unwrap();
        }
        root(Command::new("userdel").arg(GONE)).unwrap();
        for (db, key) in [("passwd", GONE), ("passwd", &id), ("group", GONE), ("group", &id)] {
            assert!(!exists(db, key), "getent {db} {key} still finds it after userdel");
        }
    });
}
