//! What every implementation of the storage interface must do, written against `dyn Storage`
//! alone, so that a second database (PostgreSQL) passes the same tests as SQLite: its module's
//! tests call `conformance_tests!` with a function that opens an empty storage.
//!
//! Each check opens its own storage, names what it checks, and covers a contract the service
//! relies on: workspace isolation, idempotent revocations, case-insensitive accounts, session
//! ends, the model version stack, a lead's events (all, or the newest) and links, that work
//! which fails stores nothing, and the funnel report's counts.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::StoreError;
use crate::events::NewEvent;
use crate::keys::Scope;
use crate::models::Origin;
use crate::storage::{IngestedLead, IngestionLookup, IngestionWrite, LeadSave, NewIdentities, Notification, Storage};
use crate::users::Role;
use crate::webhooks::{Attempt, ClaimRequest, Claimed, NewWebhook};

/// An empty storage and what keeps it alive (a temporary directory, a database to drop).
pub(crate) type Opened = (Box<dyn std::any::Any>, Arc<dyn Storage>);

const MINUTE: i64 = 60_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Two workspaces, `acme` and `globex`: their ids.
fn two_workspaces(storage: &Arc<dyn Storage>, runtime: &tokio::runtime::Runtime) -> (i64, i64) {
    runtime
        .block_on(
            storage.write(|t| {
                Ok((t.find_or_create_workspace("acme", 0)?.id, t.find_or_create_workspace("globex", 0)?.id))
            }),
        )
        .unwrap()
}

pub(crate) fn keys_belong_to_their_workspace_and_stay_revoked(opened: Opened) {
    let (_keep, storage) = opened;
    let runtime = runtime();
    let (acme, globex) = two_workspaces(&storage, &runtime);
    let ours =
        runtime.block_on(storage.create_key(acme, Scope::Read, "website tracker".into(), Vec::new(), 1)).unwrap();
    let theirs = runtime.block_on(storage.create_key(globex, Scope::Admin, String::new(), Vec::new(), 2)).unwrap();
    assert_ne!(ours.secret, theirs.secret);

    let owner = runtime.block_on(storage.authenticate(ours.secret.clone())).unwrap().expect("the key signs in");
    assert_eq!((owner.key_id, owner.workspace_id, owner.scope), (ours.id, acme, Scope::Read));
    let listed = runtime.block_on(storage.list_keys(acme)).unwrap();
    assert_eq!(listed.iter().map(|k| k.id).collect::<Vec<_>>(), [ours.id], "a workspace lists its own keys");
    assert_eq!((ours.name.as_str(), listed[0].name.as_str()), ("website tracker", "website tracker"));

    assert_eq!(runtime.block_on(storage.revoke_key(acme, theirs.id, 3)).unwrap(), None, "not another's key");
    let revoked = runtime.block_on(storage.revoke_key(acme, ours.id, 4)).unwrap().expect("its own key");
    assert_eq!(revoked.revoked_at, Some(4));
    let again = runtime.block_on(storage.revoke_key(acme, ours.id, 5)).unwrap().expect("still its key");
    assert_eq!(again.revoked_at, Some(4), "a second revocation keeps the first time");
    assert!(runtime.block_on(storage.authenticate(ours.secret)).unwrap().is_none());
    assert!(runtime.block_on(storage.authenticate(theirs.secret)).unwrap().is_some());
}

pub(crate) fn the_cache_version_moves_with_every_change_of_a_key(opened: Opened) {
    let (_keep, storage) = opened;
    let runtime = runtime();
    let (acme, _) = two_workspaces(&storage, &runtime);
    let version = || runtime.block_on(storage.cache_version()).unwrap();
    let start = version();
    assert_eq!(version(), start, "reading it leaves it");

    let origins = vec!["https://www.acme.example".to_string()];
    let key = runtime.block_on(storage.create_key(acme, Scope::Browser, "site".into(), origins, 1)).unwrap();
    let created = version();
    assert!(created > start, "a new key moves it");
    runtime.block_on(storage.authenticate(key.secret.clone())).unwrap();
    runtime.block_on(storage.browser_origins()).unwrap();
    runtime.block_on(storage.list_keys(acme)).unwrap();
    assert_eq!(version(), created, "reading keys leaves it");

    runtime.block_on(storage.revoke_key(acme, key.id, 2)).unwrap().expect("its key");
    assert!(version() > created, "a revocation moves it");
}

pub(crate) fn an_address_has_one_account_and_a_new_password_or_disabling_ends_its_sessions(opened: Opened) {
    let (_keep, storage) = opened;
    let runtime = runtime();
    let (acme, globex) = two_workspaces(&storage, &runtime);
    let ana = runtime
        .block_on(storage.create_user(acme, "Ana@Example.com".into(), Role::Editor, "$argon2id$h".into(), 1))
        .unwrap();
    let twice = runtime.block_on(storage.create_user(globex, "ana@example.com".into(), Role::Admin, "x".into(), 2));
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");

    let found = runtime.block_on(storage.account_for_sign_in(" ANA@example.com".into())).unwrap();
    assert_eq!(found, Some((ana.clone(), "$argon2id$h".to_string())));
    assert_eq!(runtime.block_on(storage.list_users(acme)).unwrap(), vec![ana.clone()]);
    assert!(runtime.block_on(storage.list_users(globex)).unwrap().is_empty());

    // A new password ends the sessions opened with the old one.
    let before = runtime.block_on(storage.open_session(ana.id, Vec::new(), 5, 30 * MINUTE, 60 * MINUTE)).unwrap();
    assert!(
        !runtime.block_on(storage.set_password(globex, ana.id, "other".into(), 6)).unwrap(),
        "not another's account"
    );
    assert!(runtime.block_on(storage.set_password(acme, ana.id, "$argon2id$new".into(), 7)).unwrap());
    assert!(runtime.block_on(storage.live_session(before.token, 8)).unwrap().is_none());
    let found = runtime.block_on(storage.account_for_sign_in("ana@example.com".into())).unwrap();
    assert_eq!(found.map(|(_, hash)| hash), Some("$argon2id$new".to_string()));

    let opened = runtime.block_on(storage.open_session(ana.id, Vec::new(), 10, 30 * MINUTE, 60 * MINUTE)).unwrap();
    assert!(!runtime.block_on(storage.disable_user(globex, ana.id, 11)).unwrap(), "not another's account");
    assert!(runtime.block_on(storage.live_session(opened.token.clone(), 12)).unwrap().is_some());
    assert!(runtime.block_on(storage.disable_user(acme, ana.id, 13)).unwrap());
    assert!(!runtime.block_on(storage.disable_user(acme, ana.id, 14)).unwrap(), "already disabled");
    assert!(runtime.block_on(storage.live_session(opened.token, 15)).unwrap().is_none());
}

pub(crate) fn a_workspace_always_keeps_an_enabled_admin(opened: Opened) {
    let (_keep, storage) = opened;
    let runtime = runtime();
    let (acme, globex) = two_workspaces(&storage, &runtime);
    let create = |workspace: i64, email: &str, role: Role| {
        runtime.block_on(storage.create_user(workspace, email.into(), role, "h".into(), 1)).unwrap()
    };
    let ana = create(acme, "ana@example.com", Role::Admin);
    let bob = create(acme, "bob@example.com", Role::Editor);
    let eve = create(globex, "eve@example.com", Role::Admin);
    let last = |result: Result<bool, StoreError>| matches!(result, Err(StoreError::Conflict(_)));
    assert!(last(runtime.block_on(storage.set_user_role(acme, ana.id, Role::Editor))), "the last admin stays admin");
    assert!(last(runtime.block_on(storage.disable_user(acme, ana.id, 2))), "and enabled");
    assert!(runtime.block_on(storage.disable_user(acme, bob.id, 2)).unwrap(), "an editor may go");
    assert!(!runtime.block_on(storage.set_user_role(globex, ana.id, Role::Viewer)).unwrap(), "not another's account");

    let carl = create(acme, "carl@example.com", Role::Viewer);
    assert!(runtime.block_on(storage.set_user_role(acme, carl.id, Role::Admin)).unwrap());
    assert!(runtime.block_on(storage.set_user_role(acme, ana.id, Role::Viewer)).unwrap(), "another admin remains");
    assert!(last(runtime.block_on(storage.disable_user(acme, carl.id, 3))), "now carl is the last");
    let roles: Vec<Role> = runtime.block_on(storage.list_users(acme)).unwrap().iter().map(|u| u.role).collect();
    assert_eq!(roles, [Role::Viewer, Role::Editor, Role::Admin]);
    assert_eq!(runtime.block_on(storage.list_users(globex)).unwrap()[0].id, eve.id);

    // When each last signed in: the newest session's opening.
    for at in [10, 30] {
        runtime.block_on(storage.open_session(carl.id, Vec::new(), at, 30 * MINUTE, 60 * MINUTE)).unwrap();
    }
    runtime.block_on(storage.open_session(eve.id, Vec::new(), 20, 30 * MINUTE, 60 * MINUTE)).unwrap();
    assert_eq!(runtime.block_on(storage.last_sign_ins(acme)).unwrap(), vec![(carl.id, 30)]);
}

pub(crate) fn sessions_end_when_idle_at_their_end_or_at_sign_out(opened: Opened) {
    let (_keep, storage) = opened;
    let runtime = runtime();
    let (acme, _) = two_workspaces(&storage, &runtime);
    let ana =
        runtime.block_on(storage.create_user(acme, "ana@example.com".into(), Role::Viewer, "h".into(), 0)).unwrap();
    let session = runtime.block_on(storage.open_session(ana.id, Vec::new(), 0, 30 * MINUTE, 60 * MINUTE)).unwrap();
    let live = |now: i64| runtime.block_on(storage.live_session(session.token.clone(), now)).unwrap();
    let (found, user) = live(29 * MINUTE).expect("live within its idle time");
    assert_eq!((found.id, user.id), (session.session.id, ana.id));
    assert!(live(30 * MINUTE).is_none(), "ended when idle");
    runtime.block_on(storage.extend_session(session.session.id, 90 * MINUTE)).unwrap();
    assert!(live(59 * MINUTE).is_some(), "moved on by use");
    assert!(live(60 * MINUTE).is_none(), "never past its end");

    let other = runtime.block_on(storage.open_session(ana.id, Vec::new(), 0, 30 * MINUTE, 60 * MINUTE)).unwrap();
    assert!(runtime.block_on(storage.end_session(other.session.id, 1)).unwrap());
    assert!(!runtime.block_on(storage.end_session(other.session.id, 2)).unwrap());
    assert!(runtime.block_on(storage.live_session(other.token, 3)).unwrap().is_none());
}

pub(crate) fn failed_sign_ins_count_per_subject_and_a_session_forgets_them(opened: Opened) {
    let (_keep, storage) = opened;
    let runtime = runtime();
    let (acme, _) = two_workspaces(&storage, &runtime);
    let ana =
        runtime.block_on(storage.create_user(acme, "ana@example.com".into(), Role::Viewer, "h".into(), 0)).unwrap();
    let subjects = vec!["account:ana@example.com".to_string(), "address:192.0.2.7".to_string()];
    for at in [0, MINUTE] {
        runtime.block_on(storage.record_sign_in_failure(subjects[..1].to_vec(), at, 0)).unwrap();
    }
    runtime.block_on(storage.record_sign_in_failure(subjects.clone(), 2 * MINUTE, 0)).unwrap();
    let counts = runtime.block_on(storage.sign_in_failures(subjects.clone(), 0)).unwrap();
    assert_eq!(counts, vec![(3, Some(2 * MINUTE)), (1, Some(2 * MINUTE))]);
    assert_eq!(runtime.block_on(storage.sign_in_failures(subjects.clone(), MINUTE)).unwrap()[0], (2, Some(2 * MINUTE)));

    runtime.block_on(storage.open_session(ana.id, subjects[..1].to_vec(), 3 * MINUTE, MINUTE, MINUTE)).unwrap();
    let counts = runtime.block_on(storage.sign_in_failures(subjects, 0)).unwrap();
    assert_eq!(counts, vec![(0, None), (1, Some(2 * MINUTE))], "a sign-in forgets its own subjects only");
}

pub(crate) fn webhooks_belong_to_their_workspace(opened: Opened) {
    let (_keep, storage) = opened;
    let runtime = runtime();
    let (acme, globex) = two_workspaces(&storage, &runtime);
    let new = NewWebhook {
        url: "https://crm.example.com/hook".into(),
        events: vec!["lead.became_mql".into()],
        score: None,
        threshold: None,
    };
    let hook = runtime.block_on(storage.subscribe_webhook(acme, new, 1)).unwrap();
    assert_eq!(runtime.block_on(storage.list_webhooks(acme)).unwrap().len(), 1);
    assert!(runtime.block_on(storage.list_webhooks(globex)).unwrap().is_empty());
    assert_eq!(runtime.block_on(storage.delivery_log(globex, hook.id, None, 10)).unwrap(), None);
    assert!(!runtime.block_on(storage.delete_webhook(globex, hook.id, 2)).unwrap(), "not another's webhook");
    assert!(runtime.block_on(storage.delete_webhook(acme, hook.id, 3)).unwrap());
    assert!(runtime.block_on(storage.list_webhooks(acme)).unwrap().is_empty());
}

/// Instances claim the notifications they send: two claims at once never answer the same one, a
/// claim whose lease ended is claimable again, and a lead's later notification is never claimed
/// while an earlier one is pending (claimed or not).
pub(crate) fn notifications_are_claimed_once_and_in_order_per_lead(opened: Opened) {
    let (_keep, storage) = opened;
    let runtime = runtime();
    let (acme, _) = two_workspaces(&storage, &runtime);
    let new = NewWebhook {
        url: "https://crm.example.com/hook".into(),
        events: vec!["tier_changed".into()],
        score: None,
        threshold: None,
    };
    let hook = runtime.block_on(storage.subscribe_webhook(acme, new, 1)).unwrap().id;
    // Two notifications of each of six leads: the first ones queued at 10, the second ones at 20.
    runtime
        .block_on(storage.write(move |t| {
            for at in [10, 20] {
                for lead in 1..=6 {
                    let data = format!(r#"{{"lead":{lead},"at":{at}}}"#);
                    t.queue_notifications(lead, &[Notification { webhook_id: hook, event: "tier_changed", data }], at)?;
                }
            }
            Ok(())
        }))
        .unwrap();
    let at = |now: i64| ClaimRequest { per_webhook: 100, sending: Vec::new(), limit: 100, now, lease_ms: MINUTE };
    let of = |claimed: &Claimed| {
        let mut found: Vec<(i64, i64)> = claimed.notifications.iter().map(|p| (p.lead_id, p.created_at)).collect();
        found.sort_unstable();
        found
    };

    let (one, two) = runtime.block_on(async {
        let claims = [storage.clone(), storage.clone()]
            .map(|storage| tokio::spawn(async move { storage.claim_notifications(at(30)).await }));
        let [one, two] = claims;
        (one.await.unwrap().unwrap(), two.await.unwrap().unwrap())
    });
    let mut both = of(&one);
    both.extend(of(&two));
    both.sort_unstable();
    assert_eq!(both, (1..=6).map(|lead| (lead, 10)).collect::<Vec<_>>(), "each lead's first, claimed once");
    let first_of = |lead: i64| {
        one.notifications.iter().chain(&two.notifications).find(|p| p.lead_id == lead).map(|p| p.id).unwrap()
    };

    let claimed = runtime.block_on(storage.claim_notifications(at(30 + MINUTE - 1))).unwrap();
    assert_eq!(of(&claimed), [], "the firsts are claimed and the seconds wait for them");
    let delivered = Attempt { at: 40, status: Some(200), error: None, duration_ms: 1 };
    runtime.block_on(storage.record_delivery_attempt(first_of(1), delivered, true, None)).unwrap();
    let failed = Attempt { at: 40, status: Some(503), error: Some("HTTP 503".into()), duration_ms: 1 };
    let retry_at = 30 + MINUTE + MINUTE / 2;
    runtime.block_on(storage.record_delivery_attempt(first_of(2), failed, false, Some(retry_at))).unwrap();
    let claimed = runtime.block_on(storage.claim_notifications(at(50))).unwrap();
    assert_eq!(of(&claimed), [(1, 20)], "lead 1's second once its first is delivered");
    // Lead 2's first is due again at `retry_at`; the claims of leads 3 to 6 end before, when
    // their claimant (it may have stopped) gives them up.
    assert_eq!(claimed.next_due, Some(30 + MINUTE), "when the other claims' lease ends");
    let delivered = Attempt { at: 60, status: Some(200), error: None, duration_ms: 1 };
    runtime.block_on(storage.record_delivery_attempt(claimed.notifications[0].id, delivered, true, None)).unwrap();

    let claimed = runtime.block_on(storage.claim_notifications(at(30 + MINUTE))).unwrap();
    assert_eq!(of(&claimed), [(3, 10), (4, 10), (5, 10), (6, 10)], "their claimant stopped: claimable again");
    assert_eq!(claimed.next_due, Some(retry_at), "lead 2's first is due again then");
    let claimed = runtime.block_on(storage.claim_notifications(at(retry_at))).unwrap();
    assert_eq!(of(&claimed), [(2, 10)], "lead 2's first, retried, still before its second");
}

/// A webhook's share of notifications sent at once counts the claimant's own sendings only: a
/// claimant that stopped keeps its claims until their leases end, and they must not hold back
/// the webhook's other leads meanwhile.
pub(crate) fn a_webhooks_share_counts_the_claimants_own_sendings_only(opened: Opened) {
    let (_keep, storage) = opened;
    let runtime = runtime();
    let (acme, _) = two_workspaces(&storage, &runtime);
    let new = NewWebhook {
        url: "https://crm.example.com/hook".into(),
        events: vec!["tier_changed".into()],
        score: None,
        threshold: None,
    };
    let hook = runtime.block_on(storage.subscribe_webhook(acme, new, 1)).unwrap().id;
    // One notification of each of twenty leads, lead 0's the oldest.
    runtime
        .block_on(storage.write(move |t| {
            for lead in 0..20 {
                let data = format!(r#"{{"lead":{lead}}}"#);
                t.queue_notifications(
                    lead,
                    &[Notification { webhook_id: hook, event: "tier_changed", data }],
                    10 + lead,
                )?;
            }
            Ok(())
        }))
        .unwrap();
    let claim = |sending: u32| {
        let sending = if sending == 0 { Vec::new() } else { vec![(hook, sending)] };
        let request = ClaimRequest { per_webhook: 8, sending, limit: u32::MAX, now: 100, lease_ms: MINUTE };
        let claimed = runtime.block_on(storage.claim_notifications(request)).unwrap();
        claimed.notifications.iter().map(|p| p.lead_id).collect::<Vec<_>>()
    };
    let leads = |range: std::ops::Range<i64>| range.collect::<Vec<_>>();
    assert_eq!(claim(3), leads(0..5), "8 at once, with the 3 it sends");
    // Another claimant: the first one's claims, still running, do not count.
    assert_eq!(claim(0), leads(5..13), "its own 8, whatever the first sends");
    assert_eq!(claim(8), leads(0..0), "the first sends 8");
    assert_eq!(claim(7), leads(13..14));
}

pub(crate) fn model_versions_stack_and_roll_back(opened: Opened) {
    let (_keep, storage) = opened;
    let runtime = runtime();
    let (acme, globex) = two_workspaces(&storage, &runtime);
    let (first, second) = runtime
        .block_on(storage.write(move |t| {
            let first = t.add_model_version(acme, "[scores.a]\nrules = []\n", &BTreeMap::new(), None, 1)?;
            t.activate_model(acme, first.id, Origin::Upload, 1)?;
            let second =
                t.add_model_version(acme, "[scores.b]\nrules = []\n", &BTreeMap::new(), Some("ana@example.com"), 2)?;
            t.activate_model(acme, second.id, Origin::Api, 2)?;
            Ok((first, second))
        }))
        .unwrap();
    assert_eq!((first.version, second.version), (1, 2), "versions are numbered per workspace");
    let (active, versions, elsewhere) = runtime
        .block_on(storage.read(move |r| Ok((r.active_model(acme)?, r.model_versions(acme)?, r.active_model(globex)?))))
        .unwrap();
    assert_eq!(active.map(|m| m.id), Some(second.id));
    let uploaders: Vec<_> = versions.iter().map(|v| v.uploaded_by.as_deref()).collect();
    assert_eq!(uploaders, [None, Some("ana@example.com")], "who uploaded each version is kept");
    assert_eq!(elsewhere, None, "another workspace has no model");

    let rolled = runtime.block_on(storage.write(move |t| t.roll_back_model(acme, 3))).unwrap();
    assert_eq!((rolled.undone.id, rolled.restored.id), (second.id, first.id));
    let active = runtime.block_on(storage.read(move |r| r.active_model(acme))).unwrap();
    assert_eq!(active.map(|m| m.id), Some(first.id));
    let (stack, none) = runtime
        .block_on(storage.read(move |r| Ok((r.model_activations(acme)?, r.model_activations(globex)?))))
        .unwrap();
    let stack: Vec<_> = stack.iter().map(|a| (a.version, a.undone_at)).collect();
    assert_eq!(stack, [(1, None), (2, Some(3))], "the stack keeps the undone activation, marked");
    assert!(none.is_empty(), "another workspace's stack is its own");
    let by_version = runtime.block_on(storage.read(move |r| r.model_id_of_version(acme, 2))).unwrap();
    assert_eq!(by_version, Some(second.id));
    let not_theirs = runtime.block_on(storage.read(move |r| r.model_id_of_version(globex, 2))).unwrap();
    assert_eq!(not_theirs, None);
}

pub(crate) fn a_leads_events_and_identities_are_found_again_and_failed_work_stores_nothing(opened: Opened) {
    let (_keep, storage) = opened;
    let runtime = runtime();
    let (acme, globex) = two_workspaces(&storage, &runtime);
    let lookup = |workspace_id, message_ids: Vec<&'static str>| IngestionLookup {
        workspace_id,
        message_ids,
        user_ids: vec!["ana"],
        anonymous_ids: vec!["visitor-1"],
        identifiers: Vec::new(),
    };
    let lead = runtime
        .block_on(storage.ingest(move |t| {
            let snapshot = t.ingestion_snapshot(&lookup(acme, vec!["m1", "m2"]))?;
            assert!(snapshot.stored_message_ids.is_empty() && snapshot.by_user_id.is_empty());
            let mut lead = crate::leads::new_row(snapshot.next_lead_id, acme, Some("ana"), 5);
            let identities = NewIdentities {
                workspace_id: acme,
                now: 5,
                leads: vec![(lead.id, Some("ana".into()))],
                links: vec![("visitor-1".into(), lead.id)],
            };
            let properties = serde_json::Map::new();
            let event = |message_id, at| NewEvent {
                message_id,
                event_type: "visit",
                at,
                received_at: 5,
                properties: &properties,
            };
            let mut write = IngestionWrite {
                identities,
                leads: vec![IngestedLead { events: vec![event("m1", 1), event("m2", 2)], save: LeadSave::Row(&lead) }],
            };
            lead.last_event_id = t.write_ingested(&mut write)?[0];
            Ok(lead)
        }))
        .unwrap();

    let (by_user, by_anonymous, in_globex, events, (newest, count), (all, all_count)) = runtime
        .block_on(storage.read(move |r| {
            let by_user = r.lead_by_user_id(acme, "ana")?;
            let by_anonymous = r.lead_by_anonymous_id(acme, "visitor-1")?;
            let in_globex = r.lead_by_user_id(globex, "ana")?;
            let lead = by_user.clone().expect("found by its user id");
            Ok((
                by_user,
                by_anonymous,
                in_globex,
                r.events_of(&lead)?,
                r.newest_events(&lead, 1)?,
                r.newest_events(&lead, 50)?,
            ))
        }))
        .unwrap();
    // A lead's page reads its newest events and how many it has, not every event.
    assert_eq!((newest.iter().map(|e| e.message_id.as_str()).collect::<Vec<_>>(), count), (vec!["m2"], 2));
    assert_eq!((all.iter().map(|e| e.message_id.as_str()).collect::<Vec<_>>(), all_count), (vec!["m2", "m1"], 2));
    assert_eq!(by_user.as_ref().map(|l| l.id), Some(lead.id));
    assert_eq!(by_anonymous.map(|l| l.id), Some(lead.id));
    assert_eq!(in_globex, None, "a user id is found in its own workspace only");
    let mut times: Vec<i64> = events.iter().map(|e| e.at).collect();
    times.sort();
    assert_eq!(times, [1, 2]);

    // A batch of a pass over every lead reads the same rows, scores and events as one lead's
    // reads, and only the workspace's leads.
    let lead_id = lead.id;
    let (batch, batch_events, alone, theirs, after_it) = runtime
        .block_on(storage.read(move |r| {
            let batch = r.leads_after(acme, 0, 10)?;
            let rows: Vec<_> = batch.iter().map(|(lead, _)| lead).collect();
            let alone = (r.stored_scores(lead_id)?, r.events_of(rows[0])?);
            let events = r.events_of_leads(&rows)?;
            Ok((batch, events, alone, r.leads_after(globex, 0, 10)?, r.leads_after(acme, lead_id, 10)?))
        }))
        .unwrap();
    assert_eq!(batch.len(), 1, "the workspace's one lead");
    assert_eq!((batch[0].0.id, &batch[0].1), (lead.id, &alone.0));
    assert_eq!(batch_events, [alone.1], "its events, oldest first");
    assert!(theirs.is_empty() && after_it.is_empty());

    // The next request's snapshot knows the lead by both its ids, and its stored message ids;
    // another workspace's knows neither.
    let (ours, theirs) = runtime
        .block_on(storage.ingest(move |t| {
            Ok((
                t.ingestion_snapshot(&lookup(acme, vec!["m1", "m3"]))?,
                t.ingestion_snapshot(&lookup(globex, vec!["m1"]))?,
            ))
        }))
        .unwrap();
    assert_eq!(ours.stored_message_ids, ["m1".to_string()].into(), "a message id is stored once");
    assert_eq!((ours.by_user_id.get("ana"), ours.by_anonymous_id.get("visitor-1")), (Some(&lead.id), Some(&lead.id)));
    assert!(ours.leads.contains_key(&lead.id));
    // Every id asked finds a lead: no new lead can take the id handed out, which is past every
    // lead's (SQLite's next id), or none at all (0, where ids are reserved as needed).
    assert!(ours.next_lead_id == 0 || ours.next_lead_id > lead.id, "{}", ours.next_lead_id);
    assert!(theirs.stored_message_ids.is_empty() && theirs.by_user_id.is_empty() && theirs.leads.is_empty());

    // Work that fails stores nothing of what it wrote.
    let failed = runtime.block_on(storage.ingest(move |t| -> Result<(), StoreError> {
        // Asked about "bob", who has no lead: the snapshot hands out an id for him.
        let bob = IngestionLookup { user_ids: vec!["bob"], anonymous_ids: vec![], ..lookup(acme, vec![]) };
        let snapshot = t.ingestion_snapshot(&bob)?;
        let identities = NewIdentities {
            workspace_id: acme,
            now: 6,
            leads: vec![(snapshot.next_lead_id, Some("bob".into()))],
            links: vec![],
        };
        t.write_identities(&identities)?;
        Err(StoreError::Conflict("changed my mind".into()))
    }));
    assert!(matches!(failed, Err(StoreError::Conflict(_))), "{failed:?}");
    let bob = runtime.block_on(storage.read(move |r| r.lead_by_user_id(acme, "bob"))).unwrap();
    assert_eq!(bob, None);
}

/// One test per check, for the storage that `open` (a function of the invoking module, of type
/// `fn() -> Opened`) makes.
/// The funnel report's reads count a workspace's own leads only: each workspace has one lead,
/// scored and moved alike.
pub(crate) fn the_funnel_report_counts_the_workspaces_own_leads(opened: Opened) {
    use crate::funnel::{OutcomesByTier, WEEK, week_start};
    use crate::scores::{History, ScoreRow};
    use crate::stages::StageChange;
    use crate::storage::ScoredLeadWrite;

    let (_keep, storage) = opened;
    let runtime = runtime();
    let (acme, globex) = two_workspaces(&storage, &runtime);
    let at = 10 * WEEK + 3 * MINUTE;
    for workspace_id in [acme, globex] {
        runtime
            .block_on(storage.write(move |t| {
                let model_id = t.add_model_version(workspace_id, "", &BTreeMap::new(), None, at)?.id;
                // The lookup names the user the lead is created for, as an ingestion's does: a
                // store that reserves ids for the leads an ingestion may create reserves one.
                let lookup = IngestionLookup {
                    workspace_id,
                    message_ids: vec![],
                    user_ids: vec!["ana"],
                    anonymous_ids: vec![],
                    identifiers: Vec::new(),
                };
                let id = t.ingestion_snapshot(&lookup)?.next_lead_id;
                t.write_identities(&NewIdentities {
                    workspace_id,
                    now: at,
                    leads: vec![(id, Some("ana".into()))],
                    links: vec![],
                })?;
                let lead = t.lead_by_id(workspace_id, id)?.expect("the lead just written");
                let rows = [ScoreRow {
                    score: "fit".into(),
                    value: 90.0,
                    tier: Some("hot".into()),
                    model_id,
                    evaluated_at: at,
                    overridden: None,
                }];
                let write = ScoredLeadWrite {
                    lead: &lead,
                    rows: &rows,
                    cause: "event",
                    history: History::EveryChange,
                    terms: &[],
                    stage: None,
                    notifications: &[],
                    lifted_overrides: &[],
                    now: at,
                };
                t.save_scored_lead(&write, &mut Default::default())?;
                for (stage, previous, when) in [("mql", "lead", at), ("customer", "mql", at + MINUTE)] {
                    let change = StageChange {
                        stage: stage.into(),
                        previous: Some(previous.into()),
                        at: when,
                        actor: "ana@example.com".into(),
                        reason: None,
                    };
                    t.set_stage(id, &change)?;
                }
                Ok(())
            }))
            .unwrap();
    }
    let (tiers, stages, weeks, journeys, shares, outcomes) = runtime
        .block_on(storage.read(move |r| {
            let (from, to, now) = (at - WEEK, at + WEEK, at + 2 * MINUTE);
            Ok((
                r.tier_counts(acme, "fit")?,
                r.stage_counts(acme)?,
                r.mql_entries_by_week(acme, from, to)?,
                r.mql_journeys(acme, from, to, now)?,
                r.tier_share_by_week(acme, "fit", "hot", &r.tier_counts(acme, "fit")?, from, now)?,
                r.outcomes_by_tier(acme, "fit", from, to)?,
            ))
        }))
        .unwrap();
    assert_eq!(tiers, [(Some("hot".to_string()), 1)]);
    assert_eq!(stages, [("customer".to_string(), 1)]);
    assert_eq!(weeks, [(week_start(at), 1)]);
    assert_eq!(journeys.iter().map(|j| (j.mql, j.customer)).collect::<Vec<_>>(), [(at, Some(at + MINUTE))]);
    assert_eq!(shares.last().map(|s| (s.week, s.in_tier, s.scored)), Some((week_start(at), 1, 1)));
    assert_eq!(outcomes, [OutcomesByTier { tier: Some("hot".into()), at_mql: true, won: 1, lost: 0 }]);
}

macro_rules! conformance_tests {
    ($open:ident) => {
        mod conformance {
            use crate::storage::conformance as check;

            #[test]
            fn keys_belong_to_their_workspace_and_stay_revoked() {
                if let Some(opened) = super::$open() {
                    check::keys_belong_to_their_workspace_and_stay_revoked(opened);
                }
            }
            #[test]
            fn the_cache_version_moves_with_every_change_of_a_key() {
                if let Some(opened) = super::$open() {
                    check::the_cache_version_moves_with_every_change_of_a_key(opened);
                }
            }
            #[test]
            fn an_address_has_one_account_and_a_new_password_or_disabling_ends_its_sessions() {
                if let Some(opened) = super::$open() {
                    check::an_address_has_one_account_and_a_new_password_or_disabling_ends_its_sessions(opened);
                }
            }
            #[test]
            fn a_workspace_always_keeps_an_enabled_admin() {
                if let Some(opened) = super::$open() {
                    check::a_workspace_always_keeps_an_enabled_admin(opened);
                }
            }
            #[test]
            fn sessions_end_when_idle_at_their_end_or_at_sign_out() {
                if let Some(opened) = super::$open() {
                    check::sessions_end_when_idle_at_their_end_or_at_sign_out(opened);
                }
            }
            #[test]
            fn failed_sign_ins_count_per_subject_and_a_session_forgets_them() {
                if let Some(opened) = super::$open() {
                    check::failed_sign_ins_count_per_subject_and_a_session_forgets_them(opened);
                }
            }
            #[test]
            fn webhooks_belong_to_their_workspace() {
                if let Some(opened) = super::$open() {
                    check::webhooks_belong_to_their_workspace(opened);
                }
            }
            #[test]
            fn notifications_are_claimed_once_and_in_order_per_lead() {
                if let Some(opened) = super::$open() {
                    check::notifications_are_claimed_once_and_in_order_per_lead(opened);
                }
            }
            #[test]
            fn a_webhooks_share_counts_the_claimants_own_sendings_only() {
                if let Some(opened) = super::$open() {
                    check::a_webhooks_share_counts_the_claimants_own_sendings_only(opened);
                }
            }
            #[test]
            fn model_versions_stack_and_roll_back() {
                if let Some(opened) = super::$open() {
                    check::model_versions_stack_and_roll_back(opened);
                }
            }
            #[test]
            fn a_leads_events_and_identities_are_found_again_and_failed_work_stores_nothing() {
                if let Some(opened) = super::$open() {
                    check::a_leads_events_and_identities_are_found_again_and_failed_work_stores_nothing(opened);
                }
            }
            #[test]
            fn the_funnel_report_counts_the_workspaces_own_leads() {
                if let Some(opened) = super::$open() {
                    check::the_funnel_report_counts_the_workspaces_own_leads(opened);
                }
            }
        }
    };
}
pub(crate) use conformance_tests;
