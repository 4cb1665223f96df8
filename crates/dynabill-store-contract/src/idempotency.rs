//! The contract for idempotency keys: claim, complete, replay, release, expiry, purge.

use std::sync::Arc;

use dynabill_app::Store;
use dynabill_app::store::IdempotencyClaim;
use jiff::{SignedDuration, Timestamp};

use crate::fixtures::{T0, minutes, tenant};

const H1: [u8; 32] = [1; 32];
const H2: [u8; 32] = [2; 32];

/// A claim's lease that outlives every moment these tests visit: only the lease
/// test sees one run out.
pub(crate) fn held(at: Timestamp) -> Timestamp {
    at + SignedDuration::from_hours(1000)
}

/// The window the app uses: a key is honoured for a day.
fn day_before(now: Timestamp) -> Timestamp {
    now - SignedDuration::from_hours(24)
}

pub async fn a_claimed_key_is_in_flight_until_completed_and_then_replays_its_response(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let claim = |key: &'static str, at: Timestamp| {
        let store = Arc::clone(&store);
        async move {
            store
                .claim_idempotency_key(t, key, &H1, at, held(at), day_before(at))
                .await
                .unwrap()
        }
    };

    assert_eq!(claim("k-1", T0).await, IdempotencyClaim::Claimed);
    assert_eq!(claim("k-1", minutes(1)).await, IdempotencyClaim::InFlight);

    let body = vec![b'{', 0, 0x9f, 0xff, b'}'];
    store
        .complete_idempotency_key(t, "k-1", 201, &body)
        .await
        .unwrap();
    let replay = IdempotencyClaim::Replay { status: 201, body };
    assert_eq!(claim("k-1", minutes(2)).await, replay);
    assert_eq!(
        claim("k-1", minutes(3)).await,
        replay,
        "a replay can repeat"
    );

    assert_eq!(claim("k-2", T0).await, IdempotencyClaim::Claimed);
    store
        .complete_idempotency_key(t, "k-2", 204, b"")
        .await
        .unwrap();
    assert_eq!(
        claim("k-2", minutes(1)).await,
        IdempotencyClaim::Replay {
            status: 204,
            body: Vec::new()
        }
    );
}

pub async fn a_key_reused_for_a_different_request_is_a_mismatch(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let claim = |hash: [u8; 32], at: Timestamp| {
        let store = Arc::clone(&store);
        async move {
            store
                .claim_idempotency_key(t, "k", &hash, at, held(at), day_before(at))
                .await
                .unwrap()
        }
    };

    assert_eq!(claim(H1, T0).await, IdempotencyClaim::Claimed);
    assert_eq!(claim(H2, minutes(1)).await, IdempotencyClaim::Mismatch);
    store
        .complete_idempotency_key(t, "k", 200, b"ok")
        .await
        .unwrap();
    assert_eq!(claim(H2, minutes(2)).await, IdempotencyClaim::Mismatch);
    assert_eq!(
        claim(H1, minutes(3)).await,
        IdempotencyClaim::Replay {
            status: 200,
            body: b"ok".to_vec()
        }
    );
}

pub async fn a_released_key_can_be_claimed_again_but_a_completed_key_stays(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let claim = |hash: [u8; 32], at: Timestamp| {
        let store = Arc::clone(&store);
        async move {
            store
                .claim_idempotency_key(t, "k", &hash, at, held(at), day_before(at))
                .await
                .unwrap()
        }
    };

    assert_eq!(claim(H1, T0).await, IdempotencyClaim::Claimed);
    store.release_idempotency_key(t, "k").await.unwrap();
    assert_eq!(
        claim(H2, minutes(1)).await,
        IdempotencyClaim::Claimed,
        "a released key is free, even for another request"
    );
    assert_eq!(claim(H1, minutes(2)).await, IdempotencyClaim::Mismatch);

    store
        .complete_idempotency_key(t, "k", 200, b"done")
        .await
        .unwrap();
    store.release_idempotency_key(t, "k").await.unwrap();
    assert_eq!(
        claim(H2, minutes(3)).await,
        IdempotencyClaim::Replay {
            status: 200,
            body: b"done".to_vec()
        },
        "releasing does not forget a stored response"
    );
    store
        .release_idempotency_key(t, "never-claimed")
        .await
        .expect("releasing an unknown key is harmless");
}

pub async fn an_expired_key_counts_as_absent_and_a_new_claim_replaces_it(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let claim = |key: &'static str, hash: [u8; 32], at: Timestamp, expired_before: Timestamp| {
        let store = Arc::clone(&store);
        async move {
            store
                .claim_idempotency_key(t, key, &hash, at, held(at), expired_before)
                .await
                .unwrap()
        }
    };
    let later = minutes(25 * 60);

    assert_eq!(
        claim("done", H1, T0, day_before(T0)).await,
        IdempotencyClaim::Claimed
    );
    store
        .complete_idempotency_key(t, "done", 200, b"old")
        .await
        .unwrap();
    assert_eq!(
        claim("done", H2, later, minutes(1)).await,
        IdempotencyClaim::Claimed,
        "an expired completed key is replaced, whatever its request was"
    );
    assert_eq!(
        claim("done", H2, later, minutes(1)).await,
        IdempotencyClaim::InFlight,
        "the replacement starts in flight: the old response is gone"
    );
    assert_eq!(
        claim("done", H1, later, minutes(1)).await,
        IdempotencyClaim::Mismatch
    );

    assert_eq!(
        claim("stuck", H1, T0, day_before(T0)).await,
        IdempotencyClaim::Claimed
    );
    assert_eq!(
        claim("stuck", H1, later, T0).await,
        IdempotencyClaim::InFlight,
        "a key created exactly at the cut-off has not expired"
    );
    assert_eq!(
        claim("stuck", H1, later, minutes(1)).await,
        IdempotencyClaim::Claimed,
        "an expired key still in flight is replaced too"
    );
}

pub async fn an_abandoned_claim_is_taken_over_by_the_same_request_once_its_lease_runs_out(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let claim = |hash: [u8; 32], at: Timestamp, until: Timestamp| {
        let store = Arc::clone(&store);
        async move {
            store
                .claim_idempotency_key(t, "k", &hash, at, until, day_before(at))
                .await
                .unwrap()
        }
    };

    assert_eq!(claim(H1, T0, minutes(1)).await, IdempotencyClaim::Claimed);
    assert_eq!(
        claim(H1, minutes(1), minutes(2)).await,
        IdempotencyClaim::InFlight,
        "a lease ending this very moment still holds"
    );
    assert!(
        store
            .renew_idempotency_claim(t, "k", minutes(5))
            .await
            .unwrap()
    );
    assert_eq!(
        claim(H1, minutes(3), minutes(4)).await,
        IdempotencyClaim::InFlight,
        "a renewed lease holds past its first end"
    );
    assert_eq!(
        claim(H2, minutes(6), minutes(7)).await,
        IdempotencyClaim::Mismatch,
        "another request never takes a key over"
    );
    assert_eq!(
        claim(H1, minutes(6), minutes(7)).await,
        IdempotencyClaim::Claimed,
        "the same request takes an abandoned claim over"
    );
    assert_eq!(
        claim(H1, minutes(6), minutes(7)).await,
        IdempotencyClaim::InFlight,
        "and holds it with a lease of its own"
    );

    store
        .complete_idempotency_key(t, "k", 201, b"made")
        .await
        .unwrap();
    assert!(
        !store
            .renew_idempotency_claim(t, "k", minutes(60))
            .await
            .unwrap(),
        "a completed claim is not renewed"
    );
    assert_eq!(
        claim(H1, minutes(100), minutes(101)).await,
        IdempotencyClaim::Replay {
            status: 201,
            body: b"made".to_vec()
        },
        "a completed key replays, whatever its lease said"
    );
    assert!(
        !store
            .renew_idempotency_claim(t, "never-claimed", minutes(60))
            .await
            .unwrap()
    );
}

pub async fn purging_removes_only_keys_created_before_the_cutoff(store: Arc<dyn Store>) {
    let one = tenant(&*store, "app-1").await;
    let two = tenant(&*store, "app-2").await;
    let long_ago = minutes(-10_000);
    for (t, key, at) in [
        (one, "old", T0),
        (one, "new", minutes(120)),
        (two, "old-too", minutes(30)),
    ] {
        let claimed = store
            .claim_idempotency_key(t, key, &H1, at, held(at), long_ago)
            .await
            .unwrap();
        assert_eq!(claimed, IdempotencyClaim::Claimed);
    }
    store
        .complete_idempotency_key(one, "old", 200, b"x")
        .await
        .unwrap();

    assert_eq!(store.purge_idempotency_keys(minutes(60)).await.unwrap(), 2);
    assert_eq!(store.purge_idempotency_keys(minutes(60)).await.unwrap(), 0);

    // With nothing counted as expired, Claimed proves the record is really gone.
    let old = store
        .claim_idempotency_key(one, "old", &H2, minutes(200), held(minutes(200)), long_ago)
        .await
        .unwrap();
    assert_eq!(old, IdempotencyClaim::Claimed);
    let kept = store
        .claim_idempotency_key(one, "new", &H1, minutes(200), held(minutes(200)), long_ago)
        .await
        .unwrap();
    assert_eq!(kept, IdempotencyClaim::InFlight);
    let other = store
        .claim_idempotency_key(
            two,
            "old-too",
            &H2,
            minutes(200),
            held(minutes(200)),
            long_ago,
        )
        .await
        .unwrap();
    assert_eq!(other, IdempotencyClaim::Claimed);
}
