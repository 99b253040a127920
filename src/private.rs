//! Files only the operator can read: the state directory is created 0700 and every file pcfail writes
//! in it 0600, whatever the umask. Journals hold every statement and server answer, the run lock says
//! who runs, and a review page (`pcfail report`) is made from a journal: a file anyone can write there
//! is a way to forge the record.
//!
//! On Unix the mode is set at creation (where the umask can only remove bits) and set again on files
//! and folders that already exist. On Windows the folder gets a protected ACL with one entry, full
//! control for the account running pcfail, inherited by everything in it: files created there, and
//! those already there (Windows propagates it), are the operator's alone, as with 0700/0600. A file
//! written elsewhere (`pcfail report --output`) keeps its folder's ACL there.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Creates `dir` (and its parents) if needed and leaves `dir` itself readable by its owner only.
pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(windows)]
    {
        std::fs::create_dir_all(dir)?;
        owner_only::protect(dir)
    }
    #[cfg(not(any(unix, windows)))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// The protected, inheritable, owner-only ACL of a Windows folder. The only unsafe code outside
/// `identity.rs`: the token's user SID, one ACL built around it, and one call to set it.
#[cfg(windows)]
#[allow(unsafe_code)]
mod owner_only {
    use std::io;
    use std::os::windows::ffi::OsStrExt;
    use std::path::Path;
    use std::ptr::{null, null_mut};

    use windows_sys::Win32::Foundation::{CloseHandle, ERROR_SUCCESS, HANDLE};
    use windows_sys::Win32::Security::Authorization::{SE_FILE_OBJECT, SetNamedSecurityInfoW};
    use windows_sys::Win32::Security::{
        ACCESS_ALLOWED_ACE, ACL, ACL_REVISION, AddAccessAllowedAceEx, CONTAINER_INHERIT_ACE,
        DACL_SECURITY_INFORMATION, GetLengthSid, GetTokenInformation, InitializeAcl,
        OBJECT_INHERIT_ACE, PROTECTED_DACL_SECURITY_INFORMATION, TOKEN_QUERY, TOKEN_USER,
        TokenUser,
    };
    use windows_sys::Win32::Storage::FileSystem::FILE_ALL_ACCESS;
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

    pub(super) fn protect(dir: &Path) -> io::Result<()> {
        // u64 words: TOKEN_USER holds a pointer and the ACL must be DWORD-aligned.
        let user = token_user()?;
        // SAFETY: `user` holds the TOKEN_USER GetTokenInformation wrote; its SID points into `user`,
        // which lives until the end of this function.
        let sid = unsafe { (*user.as_ptr().cast::<TOKEN_USER>()).User.Sid };
        // SAFETY: `sid` is a valid SID (above).
        let sid_len = unsafe { GetLengthSid(sid) } as usize;
        // An ACL header and one ACE whose last DWORD (SidStart) is where the SID begins.
        let acl_len =
            size_of::<ACL>() + size_of::<ACCESS_ALLOWED_ACE>() - size_of::<u32>() + sid_len;
        let mut acl_words = vec![0u64; acl_len.div_ceil(8)];
        let acl = acl_words.as_mut_ptr().cast::<ACL>();
        let acl_len = u32::try_from(acl_len).map_err(io::Error::other)?;
        // SAFETY: `acl` points at `acl_len` zeroed, aligned bytes that outlive both calls.
        if unsafe { InitializeAcl(acl, acl_len, ACL_REVISION) } == 0 {
            return Err(io::Error::last_os_error());
        }
        let inherit = OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE;
        // SAFETY: as above; the ACE fits because `acl_len` was computed for this SID.
        if unsafe { AddAccessAllowedAceEx(acl, ACL_REVISION, inherit, FILE_ALL_ACCESS, sid) } == 0 {
            return Err(io::Error::last_os_error());
        }
        let wide: Vec<u16> = dir.as_os_str().encode_wide().chain([0]).collect();
        let what = DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION;
        // SAFETY: `wide` is NUL-terminated; owner, group and SACL are left as they are (null).
        let rc = unsafe {
            SetNamedSecurityInfoW(
                wide.as_ptr(),
                SE_FILE_OBJECT,
                what,
                null_mut(),
                null_mut(),
                acl,
                null(),
            )
        };
        if rc != ERROR_SUCCESS {
            return Err(io::Error::from_raw_os_error(rc as i32));
        }
        Ok(())
    }

    /// The process token's TOKEN_USER, in a buffer of u64 words.
    fn token_user() -> io::Result<Vec<u64>> {
        let mut token: HANDLE = null_mut();
        // SAFETY: GetCurrentProcess is a pseudo-handle; `token` receives a handle closed below.
        if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
            return Err(io::Error::last_os_error());
        }
        let mut len = 0u32;
        // SAFETY: asking for the size only (null buffer of length 0); the call fails by design.
        unsafe { GetTokenInformation(token, TokenUser, null_mut(), 0, &mut len) };
        let mut buf = vec![0u64; (len as usize).div_ceil(8)];
        // SAFETY: `buf` holds at least `len` bytes.
        let ok = unsafe {
            GetTokenInformation(token, TokenUser, buf.as_mut_ptr().cast(), len, &mut len)
        };
        let error = io::Error::last_os_error();
        // SAFETY: `token` was opened above and is not used after this.
        unsafe { CloseHandle(token) };
        if ok == 0 {
            return Err(error);
        }
        Ok(buf)
    }
}

/// `OpenOptions` whose newly created files are readable and writable by their owner only.
pub(crate) fn options() -> OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut options = OpenOptions::new();
        options.mode(0o600);
        options
    }
    #[cfg(not(unix))]
    OpenOptions::new()
}

/// Makes an existing file owner-only (a file from an earlier version or another umask).
pub(crate) fn restrict(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(())
    }
}

/// Writes `bytes` to a new or truncated owner-only file.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    restrict(&file)?;
    file.write_all(bytes)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn folders_and_files_are_owner_only_whatever_was_there() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("state");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        create_dir(&dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, b"old").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        write(&file, b"new").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&dir), mode(&file)), (0o700, 0o600));
        assert_eq!(std::fs::read(&file).unwrap(), b"new");
    }
}
