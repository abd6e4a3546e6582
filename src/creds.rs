//! Whom the traced command runs as: the user who ran `sudo` (or `doas`), with
//! that user's groups, as `strace -u` would run it.
//!
//! The accounts are looked up with the C library trace is linked with, musl,
//! which reads /etc/passwd and /etc/group (and asks nscd where one runs). It never
//! loads the system's NSS modules: a static binary that does (static glibc) runs
//! the distribution's libnss_systemd against its own copy of the C library and
//! crashes. An account that lives only in a directory service (LDAP, sssd)
//! reachable through NSS modules is therefore not found here: see [`from_env`].

use std::ffi::CString;
use std::fmt;

use nix::unistd::{Gid, Uid, User};

/// Whom the command runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    /// Every group of the command, the primary one first.
    pub groups: Vec<u32>,
    pub user: String,
}

/// Why the command cannot run as the user behind sudo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredsError {
    /// A variable sudo sets is there but is not a number.
    NotANumber { var: &'static str, value: String },
    /// SUDO_UID names no account of this machine: a deleted user, or a stale
    /// environment.
    NoSuchUser { uid: u32, name: String },
    /// DOAS_USER (a name only) is in no account database trace can read.
    NoSuchDoasUser { name: String },
}

impl fmt::Display for CredsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredsError::NotANumber { var, value } => write!(
                f,
                "{var}={value:?} is not a user or group id, so trace cannot tell whom to run the command as; \
                 run it with sudo as usual, or add --as-root to run the command as root"
            ),
            CredsError::NoSuchDoasUser { name } => write!(
                f,
                "DOAS_USER {name:?} is not in /etc/passwd, so trace cannot tell its uid to run the command \
                 as; add --as-root to run the command as root"
            ),
            CredsError::NoSuchUser { uid, name } => {
                let who = if name.is_empty() { String::new() } else { format!(" (SUDO_USER {name})") };
                write!(
                    f,
                    "SUDO_UID {uid}{who} is no user of this machine (not in /etc/passwd, and \
                     /etc/nsswitch.conf names no other place for users): was the account deleted? \
                     The command would run as a uid nobody owns. Run trace with sudo from an existing \
                     account, or add --as-root to run the command as root"
                )
            }
        }
    }
}

impl std::error::Error for CredsError {}

/// What was found for the sudo user in the account databases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// The account's name, when the uid is in the passwd database.
    pub name: Option<String>,
    /// Its groups (getgrouplist), when they could be listed.
    pub groups: Option<Vec<u32>>,
}

/// The user behind `sudo` (SUDO_UID, SUDO_GID, SUDO_USER) or `doas`
/// (DOAS_USER), with that user's supplementary groups. `Ok(None)` when neither
/// ran trace, or when the user was root: the command then runs as root.
///
/// A uid the passwd database does not know is an error where /etc/nsswitch.conf
/// names no other source of accounts (the account was deleted); where it does
/// (ldap, sss, ...), the user may live there, beyond what trace can read: the
/// command then runs with the uid and primary gid sudo gave, without
/// supplementary groups, and a warning says so.
pub fn from_env() -> Result<Option<Creds>, CredsError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (uid, gid, sudo_user) = match (var("SUDO_UID"), var("SUDO_GID")) {
        (Some(uid), Some(gid)) => (number("SUDO_UID", &uid)?, number("SUDO_GID", &gid)?, var("SUDO_USER")),
        _ => match var("DOAS_USER") {
            // doas passes the name only.
            Some(name) => match User::from_name(&name).ok().flatten() {
                Some(u) => (u.uid.as_raw(), u.gid.as_raw(), Some(name)),
                None => return Err(CredsError::NoSuchDoasUser { name }),
            },
            None => return Ok(None),
        },
    };
    if uid == 0 {
        return Ok(None);
    }
    let found = lookup(uid, gid);
    let nss = std::fs::read_to_string("/etc/nsswitch.conf").unwrap_or_default();
    decide(uid, gid, sudo_user.unwrap_or_default(), found, &nss)
}

fn number(var: &'static str, value: &str) -> Result<u32, CredsError> {
    value.trim().parse().map_err(|_| CredsError::NotANumber { var, value: value.to_string() })
}

/// Looks the uid up in the passwd database, and the account's groups.
fn lookup(uid: u32, gid: u32) -> Lookup {
    let Some(user) = User::from_uid(Uid::from_raw(uid)).ok().flatten() else {
        return Lookup { name: None, groups: None };
    };
    let groups = CString::new(user.name.clone())
        .ok()
        .and_then(|name| nix::unistd::getgrouplist(&name, Gid::from_raw(gid)).ok())
        .map(|list| {
            // The account's own primary group too, as login's initgroups(pw_gid)
            // gives it, when sudo's gid is another one (after newgrp).
            let mut groups: Vec<u32> = list.into_iter().map(|g| g.as_raw()).collect();
            if !groups.contains(&user.gid.as_raw()) {
                groups.push(user.gid.as_raw());
            }
            groups
        });
    Lookup { name: Some(user.name), groups }
}

/// The decision of [`from_env`] on what was looked up (pure, for the tests).
pub fn decide(
    uid: u32,
    gid: u32,
    sudo_user: String,
    found: Lookup,
    nsswitch: &str,
) -> Result<Option<Creds>, CredsError> {
    let Some(name) = found.name else {
        if !elsewhere(nsswitch, "passwd") && !homed(uid, nsswitch) {
            return Err(CredsError::NoSuchUser { uid, name: sudo_user });
        }
        crate::tell!(
            "trace: warning: uid {uid}{} is not in /etc/passwd (an account of a directory service such \
             as LDAP or sssd, which trace does not query): the command runs with uid {uid} and gid {gid} \
             only, without its supplementary groups",
            if sudo_user.is_empty() { String::new() } else { format!(" ({sudo_user})") }
        );
        return Ok(Some(Creds { uid, gid, groups: vec![gid], user: sudo_user }));
    };
    let groups = match found.groups {
        Some(mut groups) => {
            // The primary group first, as setgroups(2) gets it from login(1).
            groups.retain(|&g| g != gid);
            groups.insert(0, gid);
            groups
        }
        None => {
            crate::tell!(
                "trace: warning: the groups of {name} could not be listed from /etc/group: the command runs \
                 with its primary group {gid} only"
            );
            vec![gid]
        }
    };
    Ok(Some(Creds { uid, gid, groups, user: name }))
}

/// systemd-homed's range of uids (systemd's UIDS-GIDS.md): such an account is
/// served by nsswitch's `systemd` source, not /etc/passwd.
const HOMED_UIDS: std::ops::RangeInclusive<u32> = 60001..=60513;

/// Whether `uid` may be a systemd-homed account where nsswitch asks systemd.
fn homed(uid: u32, nsswitch: &str) -> bool {
    HOMED_UIDS.contains(&uid) && sources(nsswitch, "passwd").any(|s| s == "systemd")
}

/// The sources /etc/nsswitch.conf names for `database`, without actions.
fn sources<'a>(nsswitch: &'a str, database: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    nsswitch
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .filter_map(|l| l.split_once(':'))
        .filter(move |(db, _)| db.trim() == database)
        .flat_map(|(_, sources)| sources.split_whitespace())
        .filter(|s| !s.starts_with('[') && !s.ends_with(']'))
}

/// Whether /etc/nsswitch.conf names a source for `database` that is not a
/// local file trace reads itself: `files` and `compat` are /etc/passwd and
/// /etc/group; `systemd` holds only the dynamic users of services (no login
/// accounts). A missing line or file means `files`.
fn elsewhere(nsswitch: &str, database: &str) -> bool {
    sources(nsswitch, database).any(|s| !matches!(s, "files" | "compat" | "systemd"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: &str = "passwd: files systemd\ngroup: files systemd\n";
    const LDAP: &str = "# comment\npasswd:   files [NOTFOUND=return] sss\ngroup: files sss\n";

    fn found(name: &str, groups: Option<Vec<u32>>) -> Lookup {
        Lookup { name: Some(name.into()), groups }
    }

    #[test]
    fn a_user_runs_with_every_group_the_primary_first() {
        let c = decide(1000, 1000, "ann".into(), found("ann", Some(vec![27, 1000, 100])), LOCAL).unwrap();
        assert_eq!(c, Some(Creds { uid: 1000, gid: 1000, groups: vec![1000, 27, 100], user: "ann".into() }));
    }

    #[test]
    fn groups_that_cannot_be_listed_leave_the_primary_group() {
        let c = decide(1000, 1000, "ann".into(), found("ann", None), LOCAL).unwrap().unwrap();
        assert_eq!(c.groups, vec![1000]);
    }

    #[test]
    fn a_deleted_user_is_an_error_where_accounts_are_local() {
        let none = Lookup { name: None, groups: None };
        let e = decide(54321, 54321, "gone".into(), none.clone(), LOCAL).unwrap_err();
        assert_eq!(e, CredsError::NoSuchUser { uid: 54321, name: "gone".into() });
        assert!(e.to_string().contains("SUDO_UID 54321 (SUDO_USER gone) is no user of this machine"));
        assert!(e.to_string().contains("--as-root"));
        // No nsswitch.conf at all: files only.
        assert!(decide(54321, 54321, "gone".into(), none, "").is_err());
    }

    #[test]
    fn a_directory_user_runs_with_the_primary_group_only() {
        let none = Lookup { name: None, groups: None };
        let c = decide(700001, 700001, "dir".into(), none, LDAP).unwrap().unwrap();
        assert_eq!((c.uid, c.gid, c.groups), (700001, 700001, vec![700001]));
    }

    #[test]
    fn a_homed_user_runs_with_the_primary_group_only() {
        let none = Lookup { name: None, groups: None };
        let c = decide(60100, 60100, "home".into(), none.clone(), LOCAL).unwrap().unwrap();
        assert_eq!(c.groups, vec![60100]);
        // Without systemd in nsswitch.conf, the range means nothing.
        assert!(decide(60100, 60100, "home".into(), none, "passwd: files\n").is_err());
    }

    #[test]
    fn nsswitch_sources_beyond_local_files() {
        assert!(!elsewhere(LOCAL, "passwd"));
        assert!(!elsewhere("passwd: compat\n", "passwd"));
        assert!(elsewhere(LDAP, "passwd"));
        assert!(elsewhere("passwd: files ldap # directory\n", "passwd"));
        assert!(!elsewhere("passwd: files # ldap\n", "passwd"));
        assert!(!elsewhere("group: files ldap\n", "passwd"));
    }
}
