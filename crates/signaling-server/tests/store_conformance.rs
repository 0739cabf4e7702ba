//! One conformance suite for every [`Store`]: the same cases run against
//! SQLite (in memory) and PostgreSQL (a private cluster started by the test,
//! a fresh database per case), so the two back ends cannot drift apart. The
//! PostgreSQL run also checks what only a shared database has to get right:
//! instances that migrate at the same moment, and writes of one instance
//! seen by another.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use signaling_server::migrations::{self, latest};
use signaling_server::{Device, DeviceType, Pairing, PgStore, SqliteStore, Store, StoreError};
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
];

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
        assert_eq!(s.schema_version().await.unwrap(), 1);
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
