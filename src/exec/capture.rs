//! Facts read before the step that destroys them: the log-shipping settings of each database whose
//! log shipping a step removes (failover step 1 deletes them, and the copy and apply steps, and later
//! the fail-back, need the share, the copy folder, the jobs and their schedules).
//!
//! When msdb no longer has them (a resumed run, or log shipping removed by hand), an earlier run's
//! capture or the runbook's overrides serve; when the database is already recovered nothing will be
//! copied or applied, so nothing is needed.

use super::outcome::Outcome;
use super::probe;
use super::progress::Progress;
use super::session::{Session, log_shipping_key};
use crate::action::Action;
use crate::journal::JournalError;
use crate::plan::Plan;
use crate::situation::History;

/// `Ok(Some(outcome))` when the run cannot go on without a fact nobody has; `Err` when the journal
/// cannot record one.
pub(crate) async fn log_shipping(
    plan: &Plan,
    progress: &Progress,
    session: &mut Session<'_>,
    history: &History,
) -> Result<Option<Outcome>, JournalError> {
    for step in &plan.steps {
        let Action::RemoveLogShippingSecondary(remove) = &step.action else {
            continue;
        };
        let key = log_shipping_key(&remove.database);
        if progress.finished(&step.id) || session.captured(&key).is_some() {
            continue;
        }
        let read = match probe::log_shipping_secondary_full(
            session,
            remove.instance,
            &remove.database,
        )
        .await
        {
            Ok(read) => read,
            Err(e) => {
                return Ok(Some(Outcome::Refused {
                    message: format!(
                        "cannot read the log-shipping settings of `{}` on `{}` before removing them: {e}",
                        remove.database, remove.instance
                    ),
                }));
            }
        };
        let value = match read {
            Some(settings) => serde_json::to_value(&settings).expect("settings serialize"),
            None => match history.last_captured(&key) {
                Some((run, value)) => {
                    session.progress(&format!(
                        "log shipping of `{}` is no longer configured on `{}`; using the settings run {} captured",
                        remove.database, remove.instance, run.id
                    ));
                    value.clone()
                }
                None => {
                    let overrides = &session.runbook.log_shipping;
                    let given = overrides.share.is_some() && overrides.copy_folder.is_some();
                    let recovered = probe::database(session, remove.instance, &remove.database)
                        .await
                        .ok()
                        .flatten()
                        .is_some_and(|db| db.is_recovered());
                    if given || recovered {
                        continue;
                    }
                    return Ok(Some(Outcome::Refused {
                        message: format!(
                            "`{}` on `{}` is not configured as a log-shipping secondary and no earlier run recorded its settings, so the backup share and copy folder are unknown; give `share` and `copy_folder` under [log_shipping] in the runbook",
                            remove.database, remove.instance
                        ),
                    }));
                }
            },
        };
        session.capture(&key, value)?;
    }
    Ok(None)
}
