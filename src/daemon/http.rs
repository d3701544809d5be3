//! The HTTP face: `/healthz`, `/readyz`, `/metrics` (Prometheus), the incidents page and the
//! JSON API. Changing an incident needs the bearer token from `[daemon] api_token`; without
//! one the API is read-only. The listener comes from outside (bound in `daemon::main`).

use super::{Shared, page};
use crate::engine::apply::{self, ApplyError};
use crate::incidents::{
    Change, Controls, EventFields, Incident, ResolveReason, ResponseStatus, hold, reconcile,
    respond,
};
use crate::model::IncidentState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

type S = State<Arc<Shared>>;

/// Serves until shutdown.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    let app = Router::new()
        .route("/", get(index))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/incidents", get(list))
        .route("/api/incidents/{id}", get(show))
        .route("/api/incidents/{id}/ack", post(ack))
        .route("/api/incidents/{id}/resolve", post(resolve))
        .route("/api/incidents/{id}/update", post(update))
        .route("/api/incidents/{id}/assign", post(assign))
        .route("/api/incidents/{id}/snooze", post(snooze))
        .route("/api/incidents/{id}/mute", post(mute))
        .route("/api/incidents/{id}/unsnooze", post(unhold))
        .route("/api/incidents/{id}/unmute", post(unhold))
        .route("/api/checks", get(checks))
        .route("/incidents/{id}", get(incident_page))
        .route("/incidents/{id}/ack", post(form_ack))
        .route("/incidents/{id}/resolve", post(form_resolve))
        .route("/incidents/{id}/note", post(form_note))
        .route("/incidents/{id}/snooze", post(form_snooze))
        .route("/incidents/{id}/unsnooze", post(form_unhold))
        .route("/checks/{*id}", get(check_page))
        .with_state(shared);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        tracing::error!(error = %e, "HTTP server failed.");
    }
}

/// Serves `/healthz` (alive) and a 503 for everything else while the daemon waits for its
/// state store; stops when `done` is cancelled.
pub async fn serve_starting(listener: TcpListener, done: CancellationToken) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(|| async {
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "starting: waiting for the state store",
            )
        });
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(done.cancelled_owned())
        .await;
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn index(
    State(shared): S,
    axum::extract::Query(filter): axum::extract::Query<page::Filter>,
) -> Response {
    match page::render(&shared, &filter).await {
        Ok(html) => Html(html).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn incident_page(State(shared): S, Path(id): Path<i64>) -> Response {
    match page::render_incident(&shared, id).await {
        Ok(Some(html)) => Html(html).into_response(),
        Ok(None) => page_error(StatusCode::NOT_FOUND, &format!("no incident {id}")),
        Err(e) => page_error(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

async fn check_page(State(shared): S, Path(id): Path<String>) -> Response {
    match page::render_check(&shared, &id).await {
        Ok(Some(html)) => Html(html).into_response(),
        Ok(None) => page_error(StatusCode::NOT_FOUND, &format!("no check {id}")),
        Err(e) => page_error(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

/// An HTML answer for the pages' forms and links.
fn page_error(status: StatusCode, message: &str) -> Response {
    (status, Html(page::message_page(status.as_u16(), message))).into_response()
}

/// From the last background check ([`super::health`]): never waits for a server.
async fn readyz(State(shared): S) -> Response {
    let health = shared
        .health
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let ok = health.ready();
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({
            "ready": ok,
            "state_store": health.state_store,
            "connections": health.connections,
            "checked_at": health.checked_at.map(crate::store::format_time),
        })),
    )
        .into_response()
}

/// Prometheus text; the gauges come from the last background check, so that a scrape never
/// waits for the state store and `dqwatch_ready` agrees with `/readyz`.
async fn metrics(State(shared): S) -> Response {
    let health = shared
        .health
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    super::health::set_gauges(&health);
    (
        [("content-type", super::prom::CONTENT_TYPE)],
        super::prom::render(&shared.metrics),
    )
        .into_response()
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
}

async fn list(
    State(shared): S,
    axum::extract::Query(q): axum::extract::Query<ListQuery>,
) -> Response {
    let states: &[&str] = match q.state.as_deref() {
        None | Some("active") => &["pending", "open", "acknowledged"],
        Some("open") => &["open"],
        Some("acknowledged") => &["acknowledged"],
        Some("resolved") => &["resolved"],
        Some("all") => &[],
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "unknown state \"{other}\": use active, open, acknowledged, resolved or all"
                ),
            );
        }
    };
    let list = match shared.store.incidents(states).await {
        Ok(list) => list,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.chain()),
    };
    let loaded = shared.loaded();
    let holds = match apply::holds(
        &shared.store,
        &loaded.config,
        &loaded.infos,
        &list,
        shared.clock.now(),
    )
    .await
    {
        Ok(h) => h,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.chain()),
    };
    let none = (Controls::default(), None);
    let rows: Vec<serde_json::Value> = list
        .iter()
        .map(|i| {
            let (c, h) = holds.get(&i.id).unwrap_or(&none);
            hold::incident_json(i, c, h.as_ref())
        })
        .collect();
    Json(rows).into_response()
}

async fn show(State(shared): S, Path(id): Path<i64>) -> Response {
    match shared.store.incident(id).await {
        Ok(Some((incident, timeline))) => {
            let loaded = shared.loaded();
            let holds = apply::holds(
                &shared.store,
                &loaded.config,
                &loaded.infos,
                std::slice::from_ref(&incident),
                shared.clock.now(),
            )
            .await
            .unwrap_or_default();
            let (c, h) = holds.get(&incident.id).cloned().unwrap_or_default();
            Json(json!({
                "incident": hold::incident_json(&incident, &c, h.as_ref()),
                "timeline": timeline,
            }))
            .into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no incident {id}")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.chain()),
    }
}

async fn checks(State(shared): S) -> Response {
    let loaded = shared.loaded();
    let now = shared.clock.now();
    let tz = loaded.config.daemon.timezone;
    let last: std::collections::HashMap<String, (String, String, Option<String>)> = shared
        .store
        .recent_runs(1)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(c, at, outcome, sev, _)| (c, (at, outcome, sev)))
        .collect();
    let list: Vec<_> = loaded
        .checks
        .iter()
        .map(|c| {
            let last = last.get(&c.id.0);
            json!({
                "id": c.id.0,
                "path": c.path.display().to_string(),
                "connection": c.connection,
                "schedule": c.schedule.as_ref().map(|s| s.as_str().to_string()),
                "next_run": c.schedule.as_ref().and_then(|s| s.next_after(tz, now)).map(crate::store::format_time),
                "tags": c.tags,
                "category": c.category.as_str(),
                "last_run": last.map(|(at, outcome, sev)| json!({ "at": at, "outcome": outcome, "severity": sev })),
            })
        })
        .collect();
    Json(list).into_response()
}

#[derive(Deserialize)]
struct Action {
    by: String,
    note: Option<String>,
    /// For resolve: fixed (default), false_positive, expected, duplicate, upstream, other.
    reason: Option<String>,
}

/// `POST /api/incidents/ID/update`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    by: String,
    status: String,
    impact: Option<String>,
    next: Option<String>,
    eta: Option<String>,
    workaround: Option<String>,
    note: Option<String>,
}

/// `POST /api/incidents/ID/assign`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Assign {
    by: String,
    to: String,
}

/// `POST /api/incidents/ID/snooze` (`for` = a duration) and `/mute`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Hold {
    by: String,
    #[serde(rename = "for")]
    duration: Option<String>,
    reason: String,
}

/// `POST /api/incidents/ID/unsnooze` and `/unmute`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Unhold {
    by: String,
}

/// A snooze's length as `incidents snooze --for` reads it.
fn snooze_length(text: Option<&str>) -> Result<chrono::Duration, String> {
    let text = text.ok_or("a snooze needs \"for\": a duration such as \"2h\"")?;
    let d = crate::config::parse_duration(text).map_err(|m| format!("for: {m}"))?;
    chrono::Duration::from_std(d).map_err(|_| format!("for: {text} is too long"))
}

/// A resolve's reason as `incidents resolve --reason` reads it (default `fixed`).
fn resolve_reason(text: Option<&str>) -> Result<ResolveReason, String> {
    text.filter(|t| !t.trim().is_empty())
        .map_or(Ok(ResolveReason::Fixed), ResolveReason::by_hand)
}

/// The refusal, if the request may not change incidents.
fn refusal(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    refusal_for(shared, given).map(|(status, message)| error(status, message))
}

/// Why a request that gave the token `given` (bearer header or form field) may not change
/// incidents, if it may not: the one comparison for the API and the page's forms.
fn refusal_for(shared: &Shared, given: Option<&str>) -> Option<(StatusCode, &'static str)> {
    let token = shared.loaded().config.daemon.api_token.clone();
    if token.is_empty() {
        return Some((
            StatusCode::FORBIDDEN,
            "the API is read-only: set [daemon] api_token to allow changes",
        ));
    }
    (given != Some(token.expose()))
        .then_some((StatusCode::UNAUTHORIZED, "missing or wrong bearer token"))
}

async fn change(
    shared: &Shared,
    id: i64,
    headers: &HeaderMap,
    apply: impl Fn(&Incident, chrono::DateTime<chrono::Utc>) -> Result<Change, String>,
) -> Response {
    if let Some(r) = refusal(shared, headers) {
        return r;
    }
    match apply_change(shared, id, apply).await {
        Ok(state) => Json(json!({ "id": id, "state": state })).into_response(),
        Err((status, message)) => error(status, message),
    }
}

/// Applies a change the caller was allowed to make; the new state, or why not.
async fn apply_change(
    shared: &Shared,
    id: i64,
    apply: impl Fn(&Incident, chrono::DateTime<chrono::Utc>) -> Result<Change, String>,
) -> Result<IncidentState, (StatusCode, String)> {
    let now = shared.clock.now();
    let loaded = shared.loaded();
    let changed = apply::change_incident(
        &shared.store,
        &loaded.composer,
        &loaded.infos,
        id,
        now,
        |inc| apply(inc, now),
    )
    .await;
    answer(shared, id, changed)
}

async fn ack(
    State(shared): S,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Json(a): Json<Action>,
) -> Response {
    change(&shared, id, &headers, |inc, now| {
        reconcile::acknowledge(inc, &a.by, a.note.clone(), now)
    })
    .await
}

async fn resolve(
    State(shared): S,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Json(a): Json<Action>,
) -> Response {
    if let Some(r) = refusal(&shared, &headers) {
        return r;
    }
    // As `dqwatch incidents resolve --note`: a resolve by hand says why.
    if a.note.as_deref().is_none_or(|n| n.trim().is_empty()) {
        return error(
            StatusCode::BAD_REQUEST,
            "a note is required to resolve an incident by hand: {\"by\": \"…\", \"note\": \"why\"}",
        );
    }
    let reason = match resolve_reason(a.reason.as_deref()) {
        Ok(r) => r,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    change(&shared, id, &headers, |inc, now| {
        respond::resolve(inc, &a.by, reason, a.note.clone(), now)
    })
    .await
}

async fn update(
    State(shared): S,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Json(u): Json<Update>,
) -> Response {
    if let Some(r) = refusal(&shared, &headers) {
        return r;
    }
    let status = match u.status.parse::<ResponseStatus>() {
        Ok(s) => s,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let fields = EventFields {
        status: Some(status),
        impact: u.impact.clone(),
        next: u.next.clone(),
        eta: u.eta.clone(),
        workaround: u.workaround.clone(),
        ..EventFields::default()
    };
    change(&shared, id, &headers, |inc, now| {
        respond::status_update(inc, &u.by, fields.clone(), u.note.clone(), now)
    })
    .await
}

async fn change_with(
    shared: &Shared,
    id: i64,
    headers: &HeaderMap,
    apply: impl Fn(
        &Incident,
        &Controls,
        chrono::DateTime<chrono::Utc>,
    ) -> Result<(Change, Controls), String>,
) -> Response {
    if let Some(r) = refusal(shared, headers) {
        return r;
    }
    match apply_change_with(shared, id, apply).await {
        Ok(state) => Json(json!({ "id": id, "state": state })).into_response(),
        Err((status, message)) => error(status, message),
    }
}

/// [`apply_change`] for a change that sets the incident's controls.
async fn apply_change_with(
    shared: &Shared,
    id: i64,
    apply: impl Fn(
        &Incident,
        &Controls,
        chrono::DateTime<chrono::Utc>,
    ) -> Result<(Change, Controls), String>,
) -> Result<IncidentState, (StatusCode, String)> {
    let now = shared.clock.now();
    let loaded = shared.loaded();
    let changed = apply::change_incident_with(
        &shared.store,
        &loaded.composer,
        &loaded.infos,
        id,
        now,
        |inc, c| apply(inc, c, now).map(|(ch, c)| (ch, Some(c))),
    )
    .await;
    answer(shared, id, changed)
}

fn answer(
    shared: &Shared,
    id: i64,
    changed: Result<Option<(Change, crate::store::Recorded)>, ApplyError>,
) -> Result<IncidentState, (StatusCode, String)> {
    match changed {
        Ok(Some((change, _))) => {
            shared.mail_due.notify_one();
            Ok(change.incident.state)
        }
        Ok(None) => Err((StatusCode::NOT_FOUND, format!("no incident {id}"))),
        Err(ApplyError::Refused { message }) => Err((StatusCode::CONFLICT, message)),
        Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, e.chain())),
    }
}

async fn assign(
    State(shared): S,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Json(a): Json<Assign>,
) -> Response {
    change_with(&shared, id, &headers, |inc, c, now| {
        respond::assign(inc, c, &a.by, &a.to, now)
    })
    .await
}

async fn snooze(
    State(shared): S,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Json(h): Json<Hold>,
) -> Response {
    if let Some(r) = refusal(&shared, &headers) {
        return r;
    }
    let length = match snooze_length(h.duration.as_deref()) {
        Ok(d) => d,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    change_with(&shared, id, &headers, |inc, c, now| {
        respond::snooze(inc, c, &h.by, now + length, &h.reason, now)
    })
    .await
}

async fn mute(
    State(shared): S,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Json(h): Json<Hold>,
) -> Response {
    if h.duration.is_some() {
        return error(
            StatusCode::BAD_REQUEST,
            "a mute lasts until unmute: to hold for a while, POST …/snooze with \"for\"",
        );
    }
    change_with(&shared, id, &headers, |inc, c, now| {
        respond::mute(inc, c, &h.by, &h.reason, now)
    })
    .await
}

async fn unhold(
    State(shared): S,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Json(u): Json<Unhold>,
) -> Response {
    if let Some(r) = refusal(&shared, &headers) {
        return r;
    }
    match unhold_now(&shared, id, &u.by).await {
        Ok(state) => Json(json!({ "id": id, "state": state })).into_response(),
        Err((status, message)) => error(status, message),
    }
}

async fn unhold_now(
    shared: &Shared,
    id: i64,
    by: &str,
) -> Result<IncidentState, (StatusCode, String)> {
    let loaded = shared.loaded();
    let now = shared.clock.now();
    match apply::unhold(&shared.store, &loaded.composer, &loaded.infos, id, by, now).await {
        Ok(Some(_)) => {
            shared.mail_due.notify_one();
            match shared.store.incident(id).await {
                Ok(Some((inc, _))) => Ok(inc.state),
                Ok(None) => Err((StatusCode::NOT_FOUND, format!("no incident {id}"))),
                Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, e.chain())),
            }
        }
        Ok(None) => Err((StatusCode::NOT_FOUND, format!("no incident {id}"))),
        Err(ApplyError::Refused { message }) => Err((StatusCode::CONFLICT, message)),
        Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, e.chain())),
    }
}

/// A change from the incident page's forms: the token is a form field, checked as the API
/// checks its bearer token.
#[derive(Deserialize)]
struct FormAction {
    #[serde(default)]
    token: String,
    #[serde(default)]
    by: String,
    #[serde(default)]
    note: String,
    /// The resolve form's reason.
    #[serde(default)]
    reason: String,
    /// The snooze form's length.
    #[serde(default, rename = "for")]
    duration: String,
}

impl FormAction {
    fn note(&self) -> Option<String> {
        let n = self.note.trim();
        (!n.is_empty()).then(|| n.to_string())
    }
}

/// Checks the token and the name, applies, and sends the browser back to the incident.
async fn form_change(
    shared: &Shared,
    id: i64,
    f: &FormAction,
    apply: impl Fn(&Incident, chrono::DateTime<chrono::Utc>) -> Result<Change, String>,
) -> Response {
    if let Some((status, message)) = refusal_for(shared, Some(f.token.as_str())) {
        return page_error(status, message);
    }
    if f.by.trim().is_empty() {
        return page_error(StatusCode::BAD_REQUEST, "say who you are (the name field)");
    }
    match apply_change(shared, id, apply).await {
        Ok(_) => axum::response::Redirect::to(&format!("/incidents/{id}")).into_response(),
        Err((status, message)) => page_error(status, &message),
    }
}

async fn form_ack(
    State(shared): S,
    Path(id): Path<i64>,
    axum::extract::Form(f): axum::extract::Form<FormAction>,
) -> Response {
    let by = f.by.trim().to_string();
    form_change(&shared, id, &f, |inc, now| {
        reconcile::acknowledge(inc, &by, f.note(), now)
    })
    .await
}

async fn form_resolve(
    State(shared): S,
    Path(id): Path<i64>,
    axum::extract::Form(f): axum::extract::Form<FormAction>,
) -> Response {
    if let Some((status, message)) = refusal_for(&shared, Some(f.token.as_str())) {
        return page_error(status, message);
    }
    // As the API and `dqwatch incidents resolve --note`: a resolve by hand says why.
    if f.note().is_none() {
        return page_error(
            StatusCode::BAD_REQUEST,
            "a note is required to resolve an incident by hand",
        );
    }
    let reason = match resolve_reason(Some(&f.reason)) {
        Ok(r) => r,
        Err(m) => return page_error(StatusCode::BAD_REQUEST, &m),
    };
    let by = f.by.trim().to_string();
    form_change(&shared, id, &f, |inc, now| {
        respond::resolve(inc, &by, reason, f.note(), now)
    })
    .await
}

async fn form_snooze(
    State(shared): S,
    Path(id): Path<i64>,
    axum::extract::Form(f): axum::extract::Form<FormAction>,
) -> Response {
    if let Some((status, message)) = refusal_for(&shared, Some(f.token.as_str())) {
        return page_error(status, message);
    }
    if f.by.trim().is_empty() {
        return page_error(StatusCode::BAD_REQUEST, "say who you are (the name field)");
    }
    let length = match snooze_length(Some(&f.duration)) {
        Ok(d) => d,
        Err(m) => return page_error(StatusCode::BAD_REQUEST, &m),
    };
    let by = f.by.trim().to_string();
    let reason = f.note().unwrap_or_default();
    match apply_change_with(&shared, id, |inc, c, now| {
        respond::snooze(inc, c, &by, now + length, &reason, now)
    })
    .await
    {
        Ok(_) => axum::response::Redirect::to(&format!("/incidents/{id}")).into_response(),
        Err((status, message)) => page_error(status, &message),
    }
}

async fn form_unhold(
    State(shared): S,
    Path(id): Path<i64>,
    axum::extract::Form(f): axum::extract::Form<FormAction>,
) -> Response {
    if let Some((status, message)) = refusal_for(&shared, Some(f.token.as_str())) {
        return page_error(status, message);
    }
    if f.by.trim().is_empty() {
        return page_error(StatusCode::BAD_REQUEST, "say who you are (the name field)");
    }
    match unhold_now(&shared, id, f.by.trim()).await {
        Ok(_) => axum::response::Redirect::to(&format!("/incidents/{id}")).into_response(),
        Err((status, message)) => page_error(status, &message),
    }
}

async fn form_note(
    State(shared): S,
    Path(id): Path<i64>,
    axum::extract::Form(f): axum::extract::Form<FormAction>,
) -> Response {
    if let Some((status, message)) = refusal_for(&shared, Some(f.token.as_str())) {
        return page_error(status, message);
    }
    let Some(text) = f.note() else {
        return page_error(StatusCode::BAD_REQUEST, "the note is empty");
    };
    let by = f.by.trim().to_string();
    form_change(&shared, id, &f, |inc, now| {
        Ok(reconcile::note(inc, &by, text.clone(), now))
    })
    .await
}
