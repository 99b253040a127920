//! Who runs pcfail and on which machine, as the operating system says, for the journal and the audit
//! log: `DOMAIN\user` on Windows (the account SQL Server and the event log know), the real user id's
//! login name on Unix, and the host's name. Environment variables (`USER`, `USERNAME`) are not asked:
//! anyone can set them, and a scheduled task or service may have none.
//!
//! The two system calls each platform needs are unsafe code (as is the owner-only ACL in
//! `private.rs`, pcfail's only other); each is a plain buffer-and-length call, checked here, that the
//! crates already in the tree (`libc`, `windows-sys`) declare.

/// What is recorded when the system cannot say.
const UNKNOWN: &str = "unknown";

/// The operator: `DOMAIN\user` on Windows, the login name of the real user id on Unix (`uid N` when
/// the id has no name, as in a container).
pub(crate) fn operator() -> String {
    os::operator().unwrap_or_else(|| UNKNOWN.to_owned())
}

/// The machine's name (its DNS host name on Windows).
pub(crate) fn host() -> String {
    os::host().unwrap_or_else(|| UNKNOWN.to_owned())
}

#[cfg(unix)]
#[allow(unsafe_code)]
mod os {
    use std::ffi::CStr;

    pub(super) fn operator() -> Option<String> {
        // SAFETY: getuid cannot fail and touches no memory of ours.
        let uid = unsafe { libc::getuid() };
        let mut buf = vec![0u8; 1024];
        loop {
            // SAFETY: `passwd` is plain data that getpwuid_r fills; `buf` outlives every pointer it
            // leaves in it, and its length is passed with it.
            let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
            let mut found: *mut libc::passwd = std::ptr::null_mut();
            let rc = unsafe {
                libc::getpwuid_r(
                    uid,
                    &mut entry,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &mut found,
                )
            };
            if rc == libc::ERANGE && buf.len() < 1 << 20 {
                buf.resize(buf.len() * 4, 0);
                continue;
            }
            if rc != 0 || found.is_null() || entry.pw_name.is_null() {
                return Some(format!("uid {uid}"));
            }
            // SAFETY: on success `pw_name` points at a NUL-terminated string inside `buf`.
            let name = unsafe { CStr::from_ptr(entry.pw_name) };
            return Some(name.to_string_lossy().into_owned());
        }
    }

    pub(super) fn host() -> Option<String> {
        let mut buf = [0u8; 256];
        // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc != 0 {
            return None;
        }
        // POSIX leaves a truncated name unterminated: take up to the first NUL, or all of it.
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let name = String::from_utf8_lossy(&buf[..end]).into_owned();
        (!name.is_empty()).then_some(name)
    }
}

#[cfg(windows)]
#[allow(unsafe_code)]
mod os {
    use windows_sys::Win32::Security::Authentication::Identity::{
        GetUserNameExW, NameSamCompatible,
    };
    use windows_sys::Win32::System::SystemInformation::{
        ComputerNameDnsHostname, GetComputerNameExW,
    };

    /// Generous for both names (a SAM name is at most 15 + 1 + 256 characters).
    const CAPACITY: u32 = 1024;

    pub(super) fn operator() -> Option<String> {
        let mut buf = vec![0u16; CAPACITY as usize];
        let mut len = CAPACITY;
        // SAFETY: `len` is the buffer's capacity in UTF-16 units; on success it is set to the
        // length written, without the terminating NUL.
        let ok = unsafe { GetUserNameExW(NameSamCompatible, buf.as_mut_ptr(), &mut len) };
        text(ok, &buf, len)
    }

    pub(super) fn host() -> Option<String> {
        let mut buf = vec![0u16; CAPACITY as usize];
        let mut len = CAPACITY;
        // SAFETY: as above.
        let ok = unsafe { GetComputerNameExW(ComputerNameDnsHostname, buf.as_mut_ptr(), &mut len) };
        text(ok != 0, &buf, len)
    }

    fn text(ok: bool, buf: &[u16], len: u32) -> Option<String> {
        let units = buf.get(..len as usize).filter(|_| ok)?;
        let name = String::from_utf16_lossy(units);
        (!name.is_empty()).then_some(name)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_operator_is_the_real_user_ids_name_not_an_environment_variable() {
        // The test's own process: whatever USER says, the name is the passwd entry of getuid().
        let uid = std::process::Command::new("id")
            .arg("-un")
            .output()
            .expect("id -un");
        let expected = String::from_utf8_lossy(&uid.stdout).trim().to_owned();
        assert_eq!(operator(), expected);
    }

    #[test]
    fn the_host_is_the_kernels_host_name() {
        let hostname = std::process::Command::new("uname")
            .arg("-n")
            .output()
            .expect("uname -n");
        assert_eq!(host(), String::from_utf8_lossy(&hostname.stdout).trim());
    }
}
