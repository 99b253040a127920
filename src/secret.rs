//! Passwords: from the environment variable the runbook names or, when it is unset and pcfail runs
//! at a terminal, asked for once (without echo) and kept in memory for this process only, never
//! written anywhere. SQL logins and a remoting session's account share the one prompt per variable.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Mutex, OnceLock};

/// The password in `var`, or the operator's answer at the terminal; `None` when neither is to be
/// had. `who` names the account in the prompt.
pub(crate) fn password(who: &str, var: &str) -> Option<String> {
    if let Ok(password) = std::env::var(var) {
        return Some(password);
    }
    static ASKED: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    // Held while asking: instances are connected at once, and the operator is asked once.
    let mut asked = ASKED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(password) = asked.get(var) {
        return Some(password.clone());
    }
    if !std::io::stdin().is_terminal() {
        return None;
    }
    let password =
        rpassword::prompt_password(format!("password of {who} (${var} is not set): ")).ok()?;
    asked.insert(var.to_owned(), password.clone());
    Some(password)
}
