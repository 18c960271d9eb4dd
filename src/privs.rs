//! Privileges: a live capture opens its sockets as root or with CAP_NET_RAW (and
//! CAP_NET_ADMIN for promiscuous mode), then runs with none: `--user NAME` switches to that
//! user and its groups, and every capability left (a service's ambient ones) is dropped.

use std::ffi::CString;

/// Switches to `user` (its uid, primary gid and supplementary groups). Needs root or
/// CAP_SETUID/CAP_SETGID; after it, the process has no capability (the kernel clears them
/// on a uid change away from 0 unless asked to keep them).
pub fn switch_user(user: &str) -> Result<(), String> {
    let name = CString::new(user).map_err(|_| format!("--user {user:?}: bad name"))?;
    // SAFETY: getpwnam returns a pointer to static storage or null; read at once.
    let (uid, gid) = unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            return Err(format!("--user {user}: no such user"));
        }
        ((*pw).pw_uid, (*pw).pw_gid)
    };
    // SAFETY: plain syscalls with valid arguments; order matters (groups and gid while
    // still privileged, uid last).
    unsafe {
        if libc::initgroups(name.as_ptr(), gid) != 0 {
            return Err(format!(
                "--user {user}: initgroups: {}",
                std::io::Error::last_os_error()
            ));
        }
        if libc::setresgid(gid, gid, gid) != 0 {
            return Err(format!(
                "--user {user}: setgid: {}",
                std::io::Error::last_os_error()
            ));
        }
        if libc::setresuid(uid, uid, uid) != 0 {
            return Err(format!(
                "--user {user}: setuid: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    drop_capabilities()
}

/// Clears every capability set (effective, permitted, inheritable, ambient): what the
/// capture needed was used to open it.
pub fn drop_capabilities() -> Result<(), String> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut h = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let d = [Data::default(); 2];
    // SAFETY: capset with a version-3 header and two data words, as capset(2) documents;
    // prctl with constant arguments.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        if libc::syscall(libc::SYS_capset, &mut h as *mut Header, d.as_ptr()) != 0 {
            return Err(format!(
                "dropping capabilities: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Whether the process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}
