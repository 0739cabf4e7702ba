//! One conformance suite for every [`Store`]: the same cases run against
//! SQLite (in memory) and PostgreSQL (a private cluster started by the test,
//! a fresh database per case), so the two back ends cannot drift apart. The
//! PostgreSQL run also checks what only a shared database has to get right:
//! instances that migrate at the same moment, and writes of one instance
//! seen by another.
//!
//! The short-lived tables ([`Ephemeral`]: challenges, pairing codes, the
//! replay cache, the guess budget) run the same cases, with times passed in
//! as the server's shifted clock would, and on PostgreSQL the one-shot
//! operations are raced between instances.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::sync::Arc;

use signaling_server::client_key::PrefixKey;
use signaling_server::migrations::{self, latest};
use signaling_server::{
    Bounds, ClientKey, Device, DeviceType, Ephemeral, GuessLimits, Pairing, PendingPairing,
    PgStore, SqliteStore, Store, StoreError,
};
use test_support::PrivatePostgres;

type Case = fn(Arc<dyn Store>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Every case, by name.
const CASES: &[(&str, Case)] = &[
    ("never_paired_devices_expire_and_orphan_mobiles_go", |s| {
        Box::pin(never_paired_devices_expire_and_orphan_mobiles_go(s))
    }),
    ("pairing_replaces_and_conflicts", |s| {
        Box::pin(pairing_replaces_and_conflicts(s))
    }),
    ("names_and_registration_times", |s| {
        Box::pin(names_and_registration_times(s))
    }),
    ("removing_pairings_from_either_side", |s| {
        Box::pin(removing_pairings_from_either_side(s))
    }),
    ("unknown_devices", |s| Box::pin(unknown_devices(s))),
    ("challenges_are_single_use_expire_and_are_capped", |s| {
        Box::pin(challenges_are_single_use_expire_and_are_capped(s))
    }),
    (
        "pairing_codes_are_one_per_host_single_use_and_capped",
        |s| Box::pin(pairing_codes_are_one_per_host_single_use_and_capped(s)),
    ),
    ("request_nonces_are_refused_within_the_window", |s| {
        Box::pin(request_nonces_are_refused_within_the_window(s))
    }),
    ("failed_guesses_are_budgeted_per_prefix_and_in_total", |s| {
        Box::pin(failed_guesses_are_budgeted_per_prefix_and_in_total(s))
    }),
];

/// Small bounds so the caps show; times near the protocol's, in Unix seconds.
fn bounds() -> Bounds {
    Bounds {
        challenge_ttl: 300,
        max_challenges: 3,
        max_challenges_per_device: 2,
        pairing_ttl: 300,
        max_pairing_codes: 2,
        replay_window: 120,
        replay_capacity: 3,
        guesses: GuessLimits {
            per_prefix: 2,
            global: 5,
            window_secs: 60,
        },
        max_guess_keys: 100,
    }
}

fn pending(host: &str) -> PendingPairing {
    PendingPairing {
        host_id: host.to_owned(),
        host_x25519_public_key: format!("x25519 of {host}"),
        host_name: format!("name of {host}"),
    }
}

fn prefix(a: u8, b: u8) -> PrefixKey {
    ClientKey::V4(Ipv4Addr::new(198, a, b, 7)).prefix()
}

fn dev(id: &str, t: DeviceType) -> Device {
    Device {
        id: id.to_owned(),
        device_type: t,
        public_key: [1; 32],
        name: String::new(),
        created_at: 100,
        ever_paired: false,
    }
}

async fn never_paired_devices_expire_and_orphan_mobiles_go(s: Arc<dyn Store>) {
    s.upsert_device(&dev("old", DeviceType::Host))
        .await
        .unwrap();
    s.upsert_device(&dev("h", DeviceType::Host)).await.unwrap();
    s.complete_pairing("h", &dev("m", DeviceType::Mobile), 1)
        .await
        .unwrap();
    assert!(s.device("h").await.unwrap().unwrap().ever_paired);
    assert!(s.device("m").await.unwrap().unwrap().ever_paired);
    assert_eq!(s.delete_unpaired(100).await.unwrap(), Vec::<String>::new());
    assert_eq!(s.delete_unpaired(101).await.unwrap(), ["old"]);
    // Paired devices stay, even after the pairing is removed.
    assert!(!s.delete_orphan_mobile("m").await.unwrap());
    s.remove_pairings("h").await.unwrap();
    assert_eq!(s.delete_unpaired(1000).await.unwrap(), Vec::<String>::new());
    assert!(!s.delete_orphan_mobile("h").await.unwrap());
    assert!(s.delete_orphan_mobile("m").await.unwrap());
    assert!(s.device("m").await.unwrap().is_none());
}

async fn pairing_replaces_and_conflicts(s: Arc<dyn Store>) {
    s.upsert_device(&dev("h", DeviceType::Host)).await.unwrap();
    assert!(matches!(
        s.upsert_device(&dev("h", DeviceType::Mobile)).await,
        Err(StoreError::TypeConflict)
    ));
    let pair = |m: &str, t| {
        let (s, m) = (Arc::clone(&s), dev(m, DeviceType::Mobile));
        async move { s.complete_pairing("h", &m, t).await }
    };
    assert_eq!(pair("m1", 1).await.unwrap(), None);
    assert_eq!(pair("m1", 2).await.unwrap(), None);
    assert_eq!(pair("m2", 3).await.unwrap(), Some("m1".to_owned()));
    assert!(s.is_paired("m2", "h").await.unwrap());
    assert!(s.is_paired("h", "m2").await.unwrap());
    assert!(!s.is_paired("m1", "h").await.unwrap());
    assert_eq!(s.paired_hosts("m2").await.unwrap(), ["h"]);
    assert_eq!(s.paired_mobile("h").await.unwrap().as_deref(), Some("m2"));
    assert!(matches!(
        s.complete_pairing("m1", &dev("m2", DeviceType::Mobile), 4)
            .await,
        Err(StoreError::TypeConflict)
    ));
    assert!(matches!(
        s.complete_pairing("h", &dev("h2", DeviceType::Host), 4)
            .await,
        Err(StoreError::TypeConflict)
    ));
    let removed = s.delete_device("h").await.unwrap().unwrap();
    assert_eq!(
        removed,
        [Pairing {
            host_id: "h".into(),
            mobile_id: "m2".into()
        }]
    );
    assert_eq!(s.paired_mobile("h").await.unwrap(), None);
    assert!(s.delete_device("h").await.unwrap().is_none());
}

async fn names_and_registration_times(s: Arc<dyn Store>) {
    let mut h = dev("h", DeviceType::Host);
    h.name = "Desk".into();
    s.upsert_device(&h).await.unwrap();
    // A later upsert renames (when it names) and keeps the first registration time.
    h.created_at = 999;
    h.name = String::new();
    s.upsert_device(&h).await.unwrap();
    let got = s.device("h").await.unwrap().unwrap();
    assert_eq!((got.name.as_str(), got.created_at), ("Desk", 100));
    h.name = "Laptop".into();
    s.upsert_device(&h).await.unwrap();
    assert_eq!(s.device("h").await.unwrap().unwrap().name, "Laptop");
    s.set_name("h", "Büro ☕").await.unwrap();
    let got = s.device("h").await.unwrap().unwrap();
    assert_eq!(got.name, "Büro ☕");
    assert_eq!(got.public_key, [1; 32]);
    assert_eq!(got.device_type, DeviceType::Host);
    assert!(matches!(
        s.set_name("nobody", "x").await,
        Err(StoreError::NotFound)
    ));
}

async fn removing_pairings_from_either_side(s: Arc<dyn Store>) {
    for h in ["h1", "h2"] {
        s.upsert_device(&dev(h, DeviceType::Host)).await.unwrap();
        s.complete_pairing(h, &dev("m", DeviceType::Mobile), 1)
            .await
            .unwrap();
    }
    assert_eq!(s.paired_hosts("m").await.unwrap(), ["h1", "h2"]);
    let mut removed = s.remove_pairings("m").await.unwrap();
    removed.sort_by(|a, b| a.host_id.cmp(&b.host_id));
    assert_eq!(
        removed,
        ["h1", "h2"].map(|h| Pairing {
            host_id: h.into(),
            mobile_id: "m".into()
        })
    );
    assert!(s.remove_pairings("m").await.unwrap().is_empty());
    assert!(s.paired_hosts("m").await.unwrap().is_empty());
}

async fn unknown_devices(s: Arc<dyn Store>) {
    assert!(s.device("nobody").await.unwrap().is_none());
    assert!(matches!(
        s.complete_pairing("nobody", &dev("m", DeviceType::Mobile), 1)
            .await,
        Err(StoreError::NotFound)
    ));
    // A refused pairing leaves nothing behind.
    assert!(s.device("m").await.unwrap().is_none());
    assert!(!s.is_paired("nobody", "m").await.unwrap());
    assert!(s.delete_device("nobody").await.unwrap().is_none());
    assert!(!s.delete_orphan_mobile("nobody").await.unwrap());
    s.ping().await.unwrap();
}

async fn challenges_are_single_use_expire_and_are_capped(s: Arc<dyn Store>) {
    let b = Bounds {
        max_challenges: 10,
        ..bounds()
    };
    let t = 1_000;
    // Presented for another device: refused, and burnt.
    let n = s.issue_challenge("a", t, &b).await.unwrap();
    assert!(!s.consume_challenge("b", &n, t + 1).await.unwrap());
    assert!(!s.consume_challenge("a", &n, t + 1).await.unwrap());
    let n = s.issue_challenge("a", t, &b).await.unwrap();
    assert!(s.consume_challenge("a", &n, t + 1).await.unwrap());
    assert!(!s.consume_challenge("a", &n, t + 1).await.unwrap());
    // Valid until `t + ttl`, exclusive.
    let n = s.issue_challenge("a", t, &b).await.unwrap();
    assert!(s.consume_challenge("a", &n, t + 299).await.unwrap());
    let n = s.issue_challenge("a", t, &b).await.unwrap();
    assert!(!s.consume_challenge("a", &n, t + 300).await.unwrap());
    assert!(!s.consume_challenge("a", "never issued", t).await.unwrap());
    // Past the per-device cap the device's oldest nonce goes.
    let first = s.issue_challenge("a", t, &b).await.unwrap();
    let second = s.issue_challenge("a", t, &b).await.unwrap();
    let third = s.issue_challenge("a", t, &b).await.unwrap();
    assert!(!s.consume_challenge("a", &first, t).await.unwrap());
    assert!(s.consume_challenge("a", &second, t).await.unwrap());
    assert!(s.consume_challenge("a", &third, t).await.unwrap());
    // The sweep drops expired nonces.
    let n = s.issue_challenge("a", t, &b).await.unwrap();
    s.purge_ephemeral(t + 300, &b).await.unwrap();
    assert!(!s.consume_challenge("a", &n, t).await.unwrap());
    // The total holds (after a sweep at the latest): the oldest go.
    let b = bounds();
    let mut nonces = Vec::new();
    for i in 0..5 {
        nonces.push(s.issue_challenge(&format!("d{i}"), t, &b).await.unwrap());
    }
    s.purge_ephemeral(t, &b).await.unwrap();
    for (i, n) in nonces.iter().enumerate() {
        let valid = s.consume_challenge(&format!("d{i}"), n, t).await.unwrap();
        assert_eq!(valid, i >= 2, "d{i}");
    }
}

async fn pairing_codes_are_one_per_host_single_use_and_capped(s: Arc<dyn Store>) {
    let b = Bounds {
        max_pairing_codes: 10,
        ..bounds()
    };
    let t = 1_000;
    // A second initiation replaces the host's first code.
    let a = s
        .create_pairing_code(&pending("h"), t, &b)
        .await
        .unwrap()
        .unwrap();
    let c = s
        .create_pairing_code(&pending("h"), t, &b)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(a, c);
    assert_eq!(s.redeem_pairing_code(&a, t + 1).await.unwrap(), None);
    assert_eq!(
        s.redeem_pairing_code(&c, t + 1).await.unwrap(),
        Some(pending("h"))
    );
    assert_eq!(s.redeem_pairing_code(&c, t + 1).await.unwrap(), None);
    // Valid until `t + ttl`, exclusive; an expired code is gone once tried.
    let c = s
        .create_pairing_code(&pending("h"), t, &b)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.redeem_pairing_code(&c, t + 300).await.unwrap(), None);
    assert_eq!(s.redeem_pairing_code(&c, t).await.unwrap(), None);
    let c = s
        .create_pairing_code(&pending("h"), t, &b)
        .await
        .unwrap()
        .unwrap();
    assert!(s.redeem_pairing_code(&c, t + 299).await.unwrap().is_some());
    // Cancelled with its host; swept once expired.
    let c = s
        .create_pairing_code(&pending("h"), t, &b)
        .await
        .unwrap()
        .unwrap();
    s.cancel_pairing_code("h").await.unwrap();
    s.cancel_pairing_code("nobody").await.unwrap();
    assert_eq!(s.redeem_pairing_code(&c, t).await.unwrap(), None);
    let c = s
        .create_pairing_code(&pending("h"), t, &b)
        .await
        .unwrap()
        .unwrap();
    s.purge_ephemeral(t + 300, &b).await.unwrap();
    assert_eq!(s.redeem_pairing_code(&c, t).await.unwrap(), None);
    // Past the total, the code closest to expiry makes room.
    let b = bounds();
    let x = s
        .create_pairing_code(&pending("x"), t, &b)
        .await
        .unwrap()
        .unwrap();
    let y = s
        .create_pairing_code(&pending("y"), t + 1, &b)
        .await
        .unwrap()
        .unwrap();
    let z = s
        .create_pairing_code(&pending("z"), t + 2, &b)
        .await
        .unwrap()
        .unwrap();
    s.purge_ephemeral(t + 3, &b).await.unwrap();
    assert_eq!(s.redeem_pairing_code(&x, t + 3).await.unwrap(), None);
    assert_eq!(
        s.redeem_pairing_code(&y, t + 3).await.unwrap(),
        Some(pending("y"))
    );
    assert_eq!(
        s.redeem_pairing_code(&z, t + 3).await.unwrap(),
        Some(pending("z"))
    );
}

async fn request_nonces_are_refused_within_the_window(s: Arc<dyn Store>) {
    let b = bounds();
    assert!(s.record_request_nonce("a", 0, &b).await.unwrap());
    assert!(!s.record_request_nonce("a", 120, &b).await.unwrap());
    assert!(s.record_request_nonce("a", 121, &b).await.unwrap());
    assert!(!s.record_request_nonce("a", 122, &b).await.unwrap());
    assert!(s.record_request_nonce("b", 122, &b).await.unwrap());
    // Past the capacity the oldest nonces are forgotten (after a sweep at the
    // latest); the newest are still refused.
    for i in 0..5 {
        assert!(
            s.record_request_nonce(&format!("n{i}"), 200 + i, &b)
                .await
                .unwrap()
        );
    }
    s.purge_ephemeral(205, &b).await.unwrap();
    assert!(!s.record_request_nonce("n4", 205, &b).await.unwrap());
    assert!(!s.record_request_nonce("n3", 205, &b).await.unwrap());
    assert!(s.record_request_nonce("n0", 205, &b).await.unwrap());
}

async fn failed_guesses_are_budgeted_per_prefix_and_in_total(s: Arc<dyn Store>) {
    let b = bounds();
    let t = 1_000;
    let spent = |p, now| {
        let s = Arc::clone(&s);
        async move { s.guess_budget_spent(p, now, &b).await.unwrap() }
    };
    for _ in 0..2 {
        assert_eq!(spent(prefix(1, 1), t).await, None);
        s.record_failed_guess(prefix(1, 1), t, &b).await.unwrap();
    }
    // The window started at the first failure and ends 60 s later.
    assert_eq!(spent(prefix(1, 1), t + 10).await, Some(50));
    assert_eq!(spent(prefix(1, 2), t + 10).await, None);
    // Spread over many prefixes, the global budget stops the guesser.
    for i in 0..3 {
        assert_eq!(spent(prefix(2, i), t + 10).await, None);
        s.record_failed_guess(prefix(2, i), t + 10, &b)
            .await
            .unwrap();
    }
    assert_eq!(spent(prefix(3, 0), t + 20).await, Some(40));
    s.purge_ephemeral(t + 59, &b).await.unwrap();
    assert_eq!(spent(prefix(3, 0), t + 59).await, Some(1));
    assert_eq!(spent(prefix(1, 1), t + 59).await, Some(1));
    // The windows end; a new failure starts a new one.
    assert_eq!(spent(prefix(3, 0), t + 60).await, None);
    assert_eq!(spent(prefix(1, 1), t + 60).await, None);
    s.record_failed_guess(prefix(1, 1), t + 60, &b)
        .await
        .unwrap();
    assert_eq!(spent(prefix(1, 1), t + 61).await, None);
    s.record_failed_guess(prefix(1, 1), t + 61, &b)
        .await
        .unwrap();
    assert_eq!(spent(prefix(1, 1), t + 62).await, Some(58));
    s.purge_ephemeral(t + 120, &b).await.unwrap();
    assert_eq!(spent(prefix(1, 1), t + 62).await, None);
}

/// What one instance issues, another honours, and one-shot operations
/// raced between instances succeed exactly once.
async fn short_lived_state_is_shared(stores: &[PgStore]) {
    let (b, t) = (bounds(), 5_000);
    let n = stores[0].issue_challenge("a", t, &b).await.unwrap();
    assert!(stores[1].consume_challenge("a", &n, t).await.unwrap());
    assert!(!stores[2].consume_challenge("a", &n, t).await.unwrap());
    let code = stores[0]
        .create_pairing_code(&pending("h"), t, &b)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stores[1].redeem_pairing_code(&code, t).await.unwrap(),
        Some(pending("h"))
    );
    assert!(stores[0].record_request_nonce("r", t, &b).await.unwrap());
    assert!(!stores[1].record_request_nonce("r", t, &b).await.unwrap());
    // One failure at each of two instances spends a budget of two.
    stores[0]
        .record_failed_guess(prefix(9, 9), t, &b)
        .await
        .unwrap();
    stores[1]
        .record_failed_guess(prefix(9, 9), t, &b)
        .await
        .unwrap();
    let spent = stores[2].guess_budget_spent(prefix(9, 9), t, &b).await;
    assert_eq!(spent.unwrap(), Some(60));

    // Races: every instance at once, several times each.
    let code = stores[0]
        .create_pairing_code(&pending("h"), t, &b)
        .await
        .unwrap()
        .unwrap();
    let n = stores[0].issue_challenge("a", t, &b).await.unwrap();
    let (codes, nonces, requests) = tokio::join!(
        futures_util::future::join_all(
            stores
                .iter()
                .cycle()
                .take(9)
                .map(|s| s.redeem_pairing_code(&code, t))
        ),
        futures_util::future::join_all(
            stores
                .iter()
                .cycle()
                .take(9)
                .map(|s| s.consume_challenge("a", &n, t))
        ),
        futures_util::future::join_all(
            stores
                .iter()
                .cycle()
                .take(9)
                .map(|s| s.record_request_nonce("q", t, &b))
        ),
    );
    let won = |v: Vec<bool>| v.into_iter().filter(|w| *w).count();
    assert_eq!(
        won(codes.into_iter().map(|r| r.unwrap().is_some()).collect()),
        1
    );
    assert_eq!(won(nonces.into_iter().map(Result::unwrap).collect()), 1);
    assert_eq!(won(requests.into_iter().map(Result::unwrap).collect()), 1);
    // Issued concurrently on every instance, a device still has at most
    // its cap of nonces outstanding.
    let issued = futures_util::future::join_all(
        stores
            .iter()
            .cycle()
            .take(9)
            .map(|s| s.issue_challenge("c", t, &b)),
    )
    .await;
    let mut valid = 0;
    for n in issued {
        valid += usize::from(
            stores[0]
                .consume_challenge("c", &n.unwrap(), t)
                .await
                .unwrap(),
        );
    }
    assert_eq!(valid, b.max_challenges_per_device);
}

#[tokio::test]
async fn sqlite_passes_the_conformance_suite() {
    for (name, case) in CASES {
        eprintln!("sqlite: {name}");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
        assert_eq!(store.backend(), "sqlite");
        assert_eq!(
            store.schema_version().await.unwrap(),
            latest(migrations::SQLITE)
        );
        case(store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_the_conformance_suite() {
    let Some(pg) = PrivatePostgres::start() else {
        return;
    };
    for (i, (name, case)) in CASES.iter().enumerate() {
        eprintln!("postgres: {name}");
        let url = pg.create_database(&format!("case{i}")).unwrap();
        let store: Arc<dyn Store> = Arc::new(PgStore::connect(&url).await.unwrap());
        assert_eq!(store.backend(), "postgres");
        assert_eq!(
            store.schema_version().await.unwrap(),
            latest(migrations::POSTGRES)
        );
        case(store).await;
    }

    // Three instances starting at once migrate the schema once.
    let url = pg.create_database("instances").unwrap();
    let stores = futures_util::future::join_all((0..3).map(|_| PgStore::connect(&url))).await;
    let stores: Vec<PgStore> = stores.into_iter().map(Result::unwrap).collect();
    for s in &stores {
        assert_eq!(
            s.schema_version().await.unwrap(),
            latest(migrations::POSTGRES)
        );
    }
    // What one instance writes, the others see at once.
    stores[0]
        .upsert_device(&dev("h", DeviceType::Host))
        .await
        .unwrap();
    stores[1]
        .complete_pairing("h", &dev("m", DeviceType::Mobile), 5)
        .await
        .unwrap();
    assert!(stores[2].is_paired("m", "h").await.unwrap());
    // Two phones completing a pairing with one host on two instances at the
    // same moment: one wins, and the host has exactly one phone.
    let (m1, m2) = (dev("m1", DeviceType::Mobile), dev("m2", DeviceType::Mobile));
    let (a, b) = tokio::join!(
        stores[0].complete_pairing("h", &m1, 6),
        stores[1].complete_pairing("h", &m2, 6),
    );
    a.unwrap();
    b.unwrap();
    let mobile = stores[2].paired_mobile("h").await.unwrap().unwrap();
    assert!(mobile == "m1" || mobile == "m2", "{mobile}");
    assert_eq!(stores[2].paired_hosts(&mobile).await.unwrap(), ["h"]);

    short_lived_state_is_shared(&stores).await;

    // A database migrated by a newer server is refused.
    let url = pg.create_database("future").unwrap();
    drop(PgStore::connect(&url).await.unwrap());
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute("INSERT INTO schema_migrations VALUES (99, 'from the future', 0)")
        .await
        .unwrap();
    assert!(matches!(
        PgStore::connect(&url).await,
        Err(StoreError::SchemaTooNew { found: 99, .. })
    ));
}
