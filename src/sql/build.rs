//! What this build of pcfail can do when it connects, per platform and cargo feature: the one place
//! that knows, so `pcfail validate` can refuse a runbook setting before any run trips over it, and
//! the README's table can be checked against it.
//!
//! TLS: rustls by default everywhere, SChannel on Windows with the `schannel` feature (Cargo.toml
//! says why each); exactly one of them, checked below at compile time. Windows
//! authentication as the logged-on user: SSPI on Windows; Kerberos through GSSAPI on Linux and
//! macOS only with the `kerberos` feature. Explicit `DOMAIN\name` credentials: NTLM everywhere
//! (SSPI on Windows, tiberius's pure-Rust `sspi-rs` elsewhere).

#[cfg(all(feature = "rustls", feature = "schannel"))]
compile_error!(
    "choose one TLS library: `rustls` (the default) or `schannel` (build with `--no-default-features --features schannel`)"
);
#[cfg(not(any(feature = "rustls", feature = "schannel")))]
compile_error!("a TLS library is needed: the default `rustls` feature, or `schannel` on Windows");
#[cfg(all(feature = "schannel", not(windows)))]
compile_error!(
    "the `schannel` feature is SChannel, the TLS library of Windows: build it for a Windows target"
);

/// Whether `auth = "integrated"` can work here, and if not, a sentence saying what would.
pub(crate) fn integrated() -> Result<(), &'static str> {
    if cfg!(any(windows, feature = "kerberos")) {
        Ok(())
    } else {
        Err(
            "Windows authentication as the logged-on user needs Windows, or Kerberos through GSSAPI, which this build does not include (build pcfail with `--features kerberos` where libgssapi_krb5 is installed); or name the account with `auth = \"windows\"`, `user = \"DOMAIN\\name\"` and `password_env`",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrated_authentication_follows_the_platform_and_the_kerberos_feature() {
        let expected = cfg!(windows) || cfg!(feature = "kerberos");
        assert_eq!(integrated().is_ok(), expected);
        if let Err(why) = integrated() {
            assert!(why.contains("--features kerberos"), "{why}");
        }
    }
}
