//! The escalator: every tick, the incidents with a step or reminder due get it, taken by a
//! conditional update so that one replica sends it.

use super::Shared;
use crate::checks::maintenance;
use crate::engine::apply::{self, Facts};
use crate::incidents::escalate::{due, reminder};
use crate::incidents::reconcile::SYSTEM_ACTOR;
use crate::incidents::{Event, EventKind};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often due escalations are looked for.
const TICK: Duration = Duration::from_secs(1);

/// Runs the escalator until shutdown.
pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(TICK) => {}
        }
        // Histogram samples pile up between scrapes unless drained.
        shared.metrics.run_upkeep();
        match tick(&shared).await {
            Ok(n) if n > 0 => shared.mail_due.notify_one(),
            Ok(_) => {}
            Err(e) => {
                shared.set_ready(false);
                tracing::warn!(error = %e, "Escalation pass failed; retrying.");
            }
        }
    }
}

/// One pass: takes every due step and reminder, and tells the end of every hold that is
/// over. Returns how many mails were written here.
pub async fn tick(shared: &Shared) -> Result<usize, String> {
    let now = shared.clock.now();
    let loaded = shared.loaded();
    // Holds that are over (a snooze ran out, a window closed) are told once — first, so that
    // the end's one mail also stands for a reminder that fell due during the hold.
    let ended = apply::end_holds(
        &shared.store,
        &loaded.composer,
        &loaded.config,
        &loaded.infos,
        now,
    )
    .await
    .map_err(|e| e.chain())?;
    let mut taken = ended.mails;
    let incidents = shared
        .store
        .due_escalations(now)
        .await
        .map_err(|e| e.chain())?;
    // Snoozed, muted or in a maintenance window: steps are taken without mail.
    let controls = if incidents.is_empty() {
        Default::default()
    } else {
        shared.store.controls().await.map_err(|e| e.chain())?
    };
    let windows = maintenance::windows(&loaded.config).unwrap_or_default();
    for mut inc in incidents {
        let mut facts = Facts::of(loaded.infos.get(&inc.check_id.0));
        let own = controls.get(&inc.id).cloned().unwrap_or_default();
        if let Some(h) = apply::hold_of(&inc, &own, &windows, &loaded.config, &loaded.infos, now) {
            facts.holds.insert(inc.id, h);
        }
        // A held step is taken without a mail: not counted as one.
        let mails = usize::from(facts.hold(&inc).is_none());
        if let Some(esc) = due(&inc, now) {
            let event = (!esc.steps.is_empty()).then(|| {
                let steps: Vec<String> = esc.steps.iter().map(|s| (s + 1).to_string()).collect();
                Event {
                    id: 0,
                    kind: EventKind::Escalated,
                    at: now,
                    actor: SYSTEM_ACTOR.into(),
                    severity: inc.severity,
                    note: Some(format!(
                        "step {} to {}",
                        steps.join(", "),
                        esc.email.join(", ")
                    )),
                    fields: Default::default(),
                }
            });
            if apply::take_step(
                &shared.store,
                &loaded.composer,
                &inc,
                Some((esc.next_step, esc.next_at)),
                None,
                event.as_ref(),
                Some(&esc.email),
                &facts,
                now,
            )
            .await
            .map_err(|e| e.chain())?
            {
                taken += usize::from(event.is_some()) * mails;
                metrics::counter!("dqwatch_escalations_total").increment(esc.steps.len() as u64);
                // The row moved on by this write; a reminder due in the same tick builds on it.
                inc.revision += 1;
                inc.escalation_step = esc.next_step;
                inc.next_escalation_at = esc.next_at;
            }
        }
        if let Some(next) = reminder(&inc, now) {
            let event = Event {
                id: 0,
                kind: EventKind::Reminder,
                at: now,
                actor: SYSTEM_ACTOR.into(),
                severity: inc.severity,
                note: None,
                fields: Default::default(),
            };
            if apply::take_step(
                &shared.store,
                &loaded.composer,
                &inc,
                None,
                Some(next),
                Some(&event),
                None,
                &facts,
                now,
            )
            .await
            .map_err(|e| e.chain())?
            {
                taken += mails;
            }
        }
    }
    shared.set_ready(true);
    Ok(taken)
}
