//! The WebRTC path against a real server and a minimal test host: connect,
//! key possession, typed requests, deflate output, ICE restart, hostile MACs.
#![allow(clippy::unwrap_used)]

mod support;

use mobile_client::{ClientError, Event, MacBehaviour, Misbehave};
use support::*;
use tokio::time::timeout;

async fn next_output(conn: &mobile_client::PhoneConnection) -> Vec<u8> {
    loop {
        match timeout(WAIT, conn.next_event()).await.unwrap().unwrap() {
            Event::Output { data, .. } => return data,
            _ => continue,
        }
    }
}

async fn saw(seen: &mut tokio::sync::mpsc::Receiver<String>, what: &str) {
    timeout(WAIT, async {
        while let Some(s) = seen.recv().await {
            if s == what {
                return;
            }
        }
        panic!("host never saw {what}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_authenticates_and_speaks_the_protocol() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let (phone, _host, host_sig, secret) = paired(&server, dir.path()).await;
    let (cmds, mut seen) = mini_host(host_sig, phone.identity().device_id().to_owned(), secret);
    let sig = phone.signaling().await.unwrap();
    let conn = timeout(WAIT, phone.connect(sig)).await.unwrap().unwrap();
    saw(&mut seen, "auth ok").await;
    assert_eq!(conn.max_message_size(), 1_048_576);

    assert!(conn.list_sessions().await.unwrap().is_empty());
    conn.ping().await.unwrap();

    // Deflate: the spec's V8 frames inflate to "hello\r\n" twice.
    conn.attach("%3", 120, 40, false, true).await.unwrap();
    assert_eq!(next_output(&conn).await, b"hello\r\n");
    assert_eq!(next_output(&conn).await, b"hello\r\n");
    conn.input(b"ls\r").await.unwrap();
    assert_eq!(next_output(&conn).await, b"ls\r");
    // A new attach resets the inflater: the V8 frames decode again.
    conn.attach("%3", 80, 24, true, true).await.unwrap();
    assert_eq!(next_output(&conn).await, b"hello\r\n");
    assert_eq!(next_output(&conn).await, b"hello\r\n");
    conn.detach().await.unwrap();
    conn.attach("%4", 80, 24, false, false).await.unwrap();
    assert_eq!(next_output(&conn).await, b"hello\r\n");
    let err = conn.attach("%404", 80, 24, false, false).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::PaneClosed(p) if p == "%404"),
        "{err}"
    );
    let err = conn.create_session().await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Remote { code, .. } if code == "create_session_failed"),
        "{err}"
    );
    conn.kill_session("$1").await.unwrap();

    // ICE restart on the same connection; the channel keeps working.
    cmds.send(HostCmd::IceRestart).await.unwrap();
    saw(&mut seen, "restart offer sent").await;
    for _ in 0..3 {
        conn.ping().await.unwrap();
    }
    conn.input(b"after restart").await.unwrap();
    assert_eq!(next_output(&conn).await, b"after restart");
    conn.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_garbage_mac_gets_the_peer_closed() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let (phone, _host, host_sig, secret) = paired(&server, dir.path()).await;
    let (_cmds, mut seen) = mini_host(host_sig, phone.identity().device_id().to_owned(), secret);
    let sig = phone.signaling().await.unwrap();

    let conn = timeout(
        WAIT,
        phone.connect_with(sig.clone(), Misbehave::wrong_mac()),
    )
    .await
    .unwrap()
    .unwrap();
    saw(&mut seen, "auth failed").await;
    timeout(WAIT, conn.closed()).await.unwrap();
    assert!(matches!(conn.ping().await, Err(ClientError::Closed)));
    drop(conn);

    // Waiting for auth_ok with a garbage MAC fails the connect itself: the
    // host closes without proving anything, which the phone cannot tell from
    // interception.
    let garbage = Misbehave {
        mac: MacBehaviour::Garbage,
        ..Default::default()
    };
    let err = timeout(WAIT, phone.connect_with(sig, garbage))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, ClientError::Intercepted(_)), "{err}");
    assert!(err.to_string().contains("could not prove the pairing key"));
    saw(&mut seen, "auth failed").await;
    server.shutdown().await;
}
