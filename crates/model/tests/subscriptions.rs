//! Email addresses are kept no longer than they serve: a subscription never confirmed is
//! forgotten once its link has expired, a bounced address after its retention, and nothing
//! else, whatever the scheduler lists.

#![allow(clippy::unwrap_used)]

use statusmesh_model::command::*;
use statusmesh_model::outbox::EventKind;
use statusmesh_model::testkit as scenario;
use statusmesh_model::*;

fn at(s: &mut scenario::Scenario, ms: i64, ids: Vec<Id>) -> u32 {
    match s.ok_at(ms, Command::ExpireSubscribers { ids }) {
        Applied::Expired(n) => n,
        other => panic!("{other:?}"),
    }
}

#[test]
fn expired_confirmations_and_old_bounces_are_forgotten_and_nothing_else() {
    let mut s = scenario::rich();
    let jane = email_subscriber_id("jane@example.com");
    let bob = email_subscriber_id("bob@example.com");
    let ops = email_subscriber_id("ops@example.com");
    let state_of =
        |s: &scenario::Scenario, id: &Id| s.state.subscribers.get(id).map(|x| x.state.clone());
    let Some(SubscriberState::Unconfirmed { expires }) = state_of(&s, &jane) else {
        panic!("the scenario leaves jane unconfirmed");
    };
    let Some(SubscriberState::Bounced { at: bounced, .. }) = state_of(&s, &ops) else {
        panic!("the scenario bounces ops");
    };
    assert!(
        s.state.outbox.pending().any(|(_, id, _)| *id == jane),
        "her confirmation mail is pending"
    );
    let everyone: Vec<Id> = s.state.subscribers.keys().cloned().collect();

    // Just before the link expires: nothing, though every subscriber is listed.
    assert!(s
        .state
        .expired_subscribers(Timestamp(expires.0 - 1), 10)
        .is_empty());
    assert_eq!(at(&mut s, expires.0 - 1, everyone.clone()), 0);
    // At expiry, only jane: what the scheduler would list is what goes.
    assert_eq!(
        s.state.expired_subscribers(expires, 10),
        std::slice::from_ref(&jane)
    );
    assert_eq!(at(&mut s, expires.0, everyone.clone()), 1);
    assert!(state_of(&s, &jane).is_none());
    assert!(
        !s.state.outbox.pending().any(|(_, id, _)| *id == jane),
        "and her pending mail"
    );
    assert_eq!(state_of(&s, &bob), Some(SubscriberState::Active));

    // The bounced address is listed for operators for its retention, then forgotten.
    let retained = bounced.0 + limits::BOUNCED_RETENTION_MS;
    assert_eq!(at(&mut s, retained - 1, vec![ops.clone()]), 0);
    assert!(state_of(&s, &ops).is_some());
    assert_eq!(at(&mut s, retained, vec![ops.clone(), bob.clone()]), 1);
    assert!(state_of(&s, &ops).is_none());
    assert_eq!(
        state_of(&s, &bob),
        Some(SubscriberState::Active),
        "an active one never goes"
    );
    assert!(s
        .state
        .expired_subscribers(Timestamp(retained + 365 * 24 * scenario::HOUR), 10)
        .is_empty());

    // The audit log names how many, never an address.
    let audit = serde_json::to_string(&s.state.audit).unwrap();
    assert!(audit.contains("expire_subscribers"));
    assert!(!audit.contains("jane@example.com"), "{audit}");

    // A batch is bounded.
    let too_many = vec![bob; limits::MAX_EXPIRED_PER_COMMAND + 1];
    s.now += 1000;
    let p = Proposal::internal(
        "k-many".into(),
        "scheduler",
        1,
        Command::ExpireSubscribers { ids: too_many },
    );
    let out = s.state.apply(
        s.index + 1,
        &Proposal {
            at: Timestamp(s.now),
            ..p
        },
    );
    assert!(out.result.unwrap_err().to_string().contains("ids"));
}

#[test]
fn a_webhook_asked_for_on_the_page_needs_the_setting_a_contact_and_its_own_id() {
    let mut h = scenario::Scenario::new();
    let url = "https://hooks.example.org/status";
    let request = |id: Id, owner: Option<&str>| Command::RequestSubscription {
        id,
        spec: NewSubscriber {
            url: url.into(),
            component_ids: vec![],
            description: None,
            secret: scenario::SECRET_A.into(),
            format: PayloadFormat::Statuspage,
            owner: owner.map(str::to_owned),
        },
    };
    let id = webhook_subscriber_id(url);
    let refused = |h: &mut scenario::Scenario, c: Command| {
        h.index += 1;
        h.now += 1000;
        let before = h.state.digest();
        let p = Proposal {
            at: Timestamp(h.now),
            ..Proposal::internal(format!("k{}", h.index), "public", 1, c)
        };
        let e = h.state.apply(h.index, &p).result.unwrap_err().to_string();
        assert_eq!(before, h.state.digest(), "a refusal changed the state: {e}");
        e
    };
    let e = refused(&mut h, request(id.clone(), Some("dev@example.org")));
    assert!(e.contains("webhook_subscriptions"), "{e}");
    h.ok(Command::SetPage {
        page_id: scenario::id("page1"),
        patch: PagePatch {
            webhook_subscriptions: Some(true),
            ..PagePatch::default()
        },
    });
    let e = refused(&mut h, request(id.clone(), None));
    assert!(e.contains("owner"), "{e}");
    let e = refused(
        &mut h,
        request(scenario::id("other"), Some("dev@example.org")),
    );
    assert!(e.contains("derived from its URL"), "{e}");

    h.ok(request(id.clone(), Some("dev@example.org")));
    let audit = serde_json::to_string(&h.state.audit).unwrap();
    assert!(
        !audit.contains("dev@example.org"),
        "the contact stays out of the audit log: {audit}"
    );
    assert!(audit.contains("(address)"), "{audit}");
    let sub = &h.state.subscribers[&id];
    assert!(matches!(sub.state, SubscriberState::Unconfirmed { .. }));
    assert_eq!(
        sub.mail_to(),
        Some("dev@example.org"),
        "its notices go to the contact"
    );
    let confirm = h.state.outbox.events.values().last().unwrap();
    assert_eq!(confirm.kind, EventKind::SubscriptionConfirm);
    h.ok(Command::ConfirmSubscription { id: id.clone() });
    assert!(h.state.subscribers[&id].is_active());
    // Slack or Discord URLs are credentials: never taken from a form.
    let mut slack = request(id, Some("dev@example.org"));
    if let Command::RequestSubscription { spec, .. } = &mut slack {
        spec.format = PayloadFormat::Slack;
    }
    let e = refused(&mut h, slack);
    assert!(e.contains("only email and webhook"), "{e}");
}
