//! `Get-CsPersistentChatState` and `Set-CsPersistentChatState` (reference H.1, H.2): the pool state
//! (`Normal` = primary databases, `FailedOver` = backup databases) kept in cms.json.

use serde_json::json;

use crate::binding::{CmdletSpec, EnumType, ParamSpec, ParamType};
use crate::cmdlets::{Invocation, pool_identity, wildcard_match};
use crate::error::ErrorRecord;
use crate::parse::Value;

/// UNVERIFIED: the enum's namespace is inferred from the PersistentChatState object type
/// (Microsoft.Rtc.Management.WritableConfig.Settings.PersistentChat.PersistentChatState).
pub(crate) static POOL_STATE: EnumType = EnumType {
    full_name: "Microsoft.Rtc.Management.WritableConfig.Settings.PersistentChat.PoolState",
    names: &["Normal", "FailedOver"],
};

const XDS_IDENTITY: &str = "Microsoft.Rtc.Management.Xds.XdsIdentity";

pub(crate) static GET_SPEC: CmdletSpec = CmdletSpec {
    name: "Get-CsPersistentChatState",
    type_name: "Microsoft.Rtc.Management.Internal.GetPersistentChatStateCmdlet",
    params: &[
        ParamSpec {
            position: Some(0),
            sets: &["Identity"],
            ..ParamSpec::optional("Identity", ParamType::String, XDS_IDENTITY)
        },
        ParamSpec {
            sets: &["Filter"],
            ..ParamSpec::optional("Filter", ParamType::String, "System.String")
        },
        ParamSpec::switch("LocalStore"),
    ],
    default_set: Some("Identity"),
    supports_should_process: false,
};

pub(crate) static SET_SPEC: CmdletSpec = CmdletSpec {
    name: "Set-CsPersistentChatState",
    type_name: "Microsoft.Rtc.Management.Internal.SetPersistentChatStateCmdlet",
    params: &[
        ParamSpec {
            position: Some(0),
            sets: &["Identity"],
            ..ParamSpec::optional("Identity", ParamType::String, XDS_IDENTITY)
        },
        ParamSpec {
            sets: &["Instance"],
            mandatory: true,
            ..ParamSpec::optional(
                "Instance",
                ParamType::Raw,
                "System.Management.Automation.PSObject",
            )
        },
        ParamSpec::optional(
            "PoolState",
            ParamType::Enum(&POOL_STATE),
            POOL_STATE.full_name,
        ),
        ParamSpec::switch("Force"),
    ],
    default_set: Some("Identity"),
    supports_should_process: true,
};

pub(crate) fn run_get(inv: &mut Invocation<'_>) -> Result<(), ErrorRecord> {
    let manifest = inv.manifest()?;
    inv.check_pool_identity(inv.bound.string("Identity").as_deref(), &manifest)?;
    let cms = inv.cms(&manifest)?;
    let identity = pool_identity(&manifest);
    // -Filter matches the identity with -like wildcards; no match is no output, not an error.
    if inv.bound.set == Some("Filter")
        && inv
            .bound
            .string("Filter")
            .is_some_and(|filter| !wildcard_match(&filter, &identity))
    {
        return Ok(());
    }
    inv.output
        .push(json!({ "Identity": identity, "PoolState": cms.pool_state }));
    Ok(())
}

pub(crate) fn run_set(inv: &mut Invocation<'_>) -> Result<(), ErrorRecord> {
    let manifest = inv.manifest()?;
    let identity = match inv.bound.get("Instance") {
        // -Instance takes an object from Get-CsPersistentChatState; here a hashtable with its Identity.
        Some(Value::Hashtable(entries)) => entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Identity"))
            .map(|(_, v)| v.to_ps_string())
            .ok_or_else(|| inv.identity_not_found(""))?
            .into(),
        Some(other) => return Err(inv.identity_not_found(&other.to_ps_string())),
        None => inv.bound.string("Identity"),
    };
    inv.check_pool_identity(identity.as_deref(), &manifest)?;
    let mut cms = inv.cms(&manifest)?;
    let Some(state) = inv.bound.string("PoolState") else {
        // No -PoolState: the object is written back unchanged.
        return Ok(());
    };
    inv.require_master(&manifest, &cms)?;
    inv.verbose.push(format!(
        "Setting pool state of \"{}\" to \"{state}\".",
        pool_identity(&manifest)
    ));
    cms.pool_state = state;
    Invocation::touch(&mut cms);
    inv.save_cms(&cms)
}
