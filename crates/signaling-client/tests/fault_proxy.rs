//! The signaling client through the TCP fault proxy: a silent (black-holed)
//! link trips the read deadline and reconnects; a cut reconnects; delay alone does not.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use signaling_client::{ConnectionState, Identity};
use test_support::TcpFaultProxy;
use tokio::sync::broadcast;

async fn next_change(changes: &mut broadcast::Receiver<ConnectionState>) -> ConnectionState {
    tokio::time::timeout(WAIT, changes.recv())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_hole_trips_the_read_deadline_and_reconnects() {
    let server = start_server(server_config(None, None)).await;
    let identity = Identity::generate();
    register_host(&identity, &server.url()).await;
    let proxy = TcpFaultProxy::start(server.local_addr()).await.unwrap();
    let run = spawn_client(identity, &proxy.http_url(), HMAC, fast_config());
    wait_state(&run.client, |s| *s == ConnectionState::Connected).await;
    let mut changes = run.client.state_changes();

    // The path goes silent but the TCP connection stays open: only the
    // rolling read deadline (2 × 200 ms + 1 s) can notice.
    proxy.black_hole();
    assert_eq!(
        next_change(&mut changes).await,
        ConnectionState::Backoff {
            wait: Duration::from_millis(100)
        }
    );
    assert_eq!(next_change(&mut changes).await, ConnectionState::Connecting);

    // The path heals: the stalled dial completes and the client is back.
    proxy.pass();
    wait_state(&run.client, |s| *s == ConnectionState::Connected).await;
    assert!(proxy.accepted() >= 2);

    run.stop().await.unwrap();
    proxy.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connection_reconnects_after_the_initial_backoff() {
    let server = start_server(server_config(None, None)).await;
    let identity = Identity::generate();
    register_host(&identity, &server.url()).await;
    let proxy = TcpFaultProxy::start(server.local_addr()).await.unwrap();
    let run = spawn_client(identity, &proxy.http_url(), HMAC, fast_config());
    wait_state(&run.client, |s| *s == ConnectionState::Connected).await;
    let mut changes = run.client.state_changes();

    proxy.cut();
    assert_eq!(
        next_change(&mut changes).await,
        ConnectionState::Backoff {
            wait: Duration::from_millis(100)
        }
    );
    wait_state(&run.client, |s| *s == ConnectionState::Connected).await;

    run.stop().await.unwrap();
    proxy.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_below_the_read_deadline_keeps_the_link() {
    let server = start_server(server_config(None, None)).await;
    let identity = Identity::generate();
    register_host(&identity, &server.url()).await;
    let proxy = TcpFaultProxy::start(server.local_addr()).await.unwrap();
    let mut run = spawn_client(identity, &proxy.http_url(), HMAC, fast_config());
    wait_state(&run.client, |s| *s == ConnectionState::Connected).await;
    let mut changes = run.client.state_changes();

    proxy.delay(Duration::from_millis(100));
    for _ in 0..10 {
        wait_presence_ack(&mut run.messages).await;
    }
    assert!(matches!(
        changes.try_recv(),
        Err(broadcast::error::TryRecvError::Empty)
    ));

    run.stop().await.unwrap();
    proxy.stop().await;
    server.shutdown().await;
}
