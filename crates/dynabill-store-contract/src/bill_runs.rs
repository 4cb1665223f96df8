//! Bill runs shared by processes: one run per tenant and date that participants
//! join, batches claimed in turn, leases renewed or taken over.

use std::sync::Arc;
use std::time::Duration;

use dynabill_app::Store;
use dynabill_app::store::{BatchOutcome, Claim, Lease};
use dynabill_core::domain::AccountId;
use jiff::Timestamp;
use jiff::civil::date;

use crate::fixtures::{insert_account, minutes, tenant};

/// A lease of one minute taken at `now`.
fn lease(now: Timestamp) -> Lease {
    Lease {
        now,
        length: Duration::from_secs(60),
    }
}

/// The accounts of a claimed batch (panics on anything else).
fn batch(claim: Claim) -> (AccountId, Vec<AccountId>, bool) {
    match claim {
        Claim::Batch {
            after,
            accounts,
            taken_over,
            ..
        } => (after, accounts, taken_over),
        other => panic!("expected a batch, got {other:?}"),
    }
}

pub async fn bill_run_participants_claim_consecutive_batches_and_the_run_ends_when_all_are_done(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(insert_account(&*store, t, &format!("A{n}")).await.id);
    }
    let day = date(2025, 1, 1);
    let (run, started) = store
        .open_bill_run(t, day, lease(minutes(0)))
        .await
        .unwrap();
    assert!(started);
    let (joined, started) = store
        .open_bill_run(t, day, lease(minutes(0)))
        .await
        .unwrap();
    assert_eq!((joined, started), (run, false), "a live run is joined");

    let claim = |owner: &'static str| {
        let store = Arc::clone(&store);
        async move {
            store
                .claim_batch(t, run, owner, 2, lease(minutes(0)))
                .await
                .unwrap()
        }
    };
    let (first_after, first, _) = batch(claim("a").await);
    let (second_after, second, _) = batch(claim("b").await);
    let (third_after, third, _) = batch(claim("a").await);
    assert_eq!(first, ids[0..2]);
    assert_eq!(second, ids[2..4]);
    assert_eq!(third, ids[4..5]);
    assert_eq!(second_after, ids[1]);
    // Nothing left to claim; "b" holds a batch not done, so "a" waits for it.
    assert!(matches!(claim("a").await, Claim::Wait { .. }));
    assert_eq!(claim("b").await, Claim::Wait { until: minutes(1) });
    let done = |after, owner: &'static str| {
        let store = Arc::clone(&store);
        async move {
            store
                .finish_batch(run, after, owner, BatchOutcome::default(), minutes(0))
                .await
                .unwrap()
        }
    };
    assert!(
        !done(second_after, "a").await,
        "only its owner finishes a batch"
    );
    assert!(done(first_after, "a").await);
    assert!(!done(first_after, "a").await, "a batch is finished once");
    assert!(!store.finish_bill_run(run, minutes(0)).await.unwrap());
    assert!(done(second_after, "b").await);
    // Only "a" holds a batch: "b" waits for it, "a" has nothing to wait for.
    assert_eq!(claim("b").await, Claim::Wait { until: minutes(1) });
    assert_eq!(claim("a").await, Claim::Done);
    assert!(!store.finish_bill_run(run, minutes(0)).await.unwrap());
    assert!(done(third_after, "a").await);
    assert_eq!(claim("b").await, Claim::Done);
    assert!(store.finish_bill_run(run, minutes(0)).await.unwrap());

    // Once finished, the next run of the day reads every account again.
    let (again, started) = store
        .open_bill_run(t, day, lease(minutes(1)))
        .await
        .unwrap();
    assert!(started && again != run);
    let (_, all, _) = batch(
        store
            .claim_batch(t, again, "c", 10, lease(minutes(1)))
            .await
            .unwrap(),
    );
    assert_eq!(all, ids);
}

pub async fn a_batch_whose_lease_expired_is_taken_over_once_and_a_renewed_one_is_not(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let other = tenant(&*store, "app-2").await;
    let a = insert_account(&*store, t, "A").await.id;
    let b = insert_account(&*store, t, "B").await.id;
    insert_account(&*store, other, "foreign").await;
    let day = date(2025, 1, 1);
    let (run, _) = store
        .open_bill_run(t, day, lease(minutes(0)))
        .await
        .unwrap();
    let (one_after, one, _) = batch(
        store
            .claim_batch(t, run, "dead", 1, lease(minutes(0)))
            .await
            .unwrap(),
    );
    let (_, two, _) = batch(
        store
            .claim_batch(t, run, "alive", 1, lease(minutes(0)))
            .await
            .unwrap(),
    );
    assert_eq!(
        (one, two),
        (vec![a], vec![b]),
        "another tenant's accounts are not its"
    );
    // "alive" renews its leases; "dead" does not.
    store
        .renew_bill_run_leases(run, "alive", lease(minutes(1)))
        .await
        .unwrap();
    // Two minutes on, the dead owner's batch is taken over, once.
    let (after, accounts, taken_over) = batch(
        store
            .claim_batch(t, run, "heir", 1, lease(minutes(2)))
            .await
            .unwrap(),
    );
    assert_eq!((after, accounts, taken_over), (one_after, vec![a], true));
    assert_eq!(
        store
            .claim_batch(t, run, "other heir", 1, lease(minutes(2)))
            .await
            .unwrap(),
        Claim::Wait { until: minutes(2) },
        "the renewed batch and the taken-over one are held"
    );
    assert!(
        !store
            .finish_batch(run, one_after, "dead", BatchOutcome::default(), minutes(2))
            .await
            .unwrap(),
        "the old owner no longer holds it"
    );
    assert!(
        store
            .finish_batch(run, one_after, "heir", BatchOutcome::default(), minutes(2))
            .await
            .unwrap()
    );
}

pub async fn a_run_nobody_renewed_is_abandoned_and_a_new_one_started(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    insert_account(&*store, t, "A").await;
    let day = date(2025, 1, 1);
    let (dead, _) = store
        .open_bill_run(t, day, lease(minutes(0)))
        .await
        .unwrap();
    store
        .claim_batch(t, dead, "gone", 10, lease(minutes(0)))
        .await
        .unwrap();
    // A helper joins an unfinished run, live or not...
    assert_eq!(
        store
            .join_bill_run(t, day, lease(minutes(5)))
            .await
            .unwrap(),
        Some(dead)
    );
    // ...and a run started after its lease runs out begins a new run.
    let (fresh, started) = store
        .open_bill_run(t, day, lease(minutes(7)))
        .await
        .unwrap();
    assert!(started && fresh != dead);
    assert_eq!(
        store
            .join_bill_run(t, date(2025, 1, 2), lease(minutes(7)))
            .await
            .unwrap(),
        None,
        "no run of that date"
    );
    let (_, accounts, taken_over) = batch(
        store
            .claim_batch(t, fresh, "new", 10, lease(minutes(7)))
            .await
            .unwrap(),
    );
    assert_eq!((accounts.len(), taken_over), (1, false));
}
