//! The protocol handler against a real tmux server on a private socket, with a
//! channel standing in for the phone's DataChannel (terminal-protocol.md §6).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use agent_bin::handler::{Handler, PeerLink};
use terminal_protocol::{Attach, Decompressor, Event, Request};
use test_support::PrivateTmux;
use tmux_bridge::{BridgeConfig, TmuxBridge};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

/// A phone stand-in: events land in a bounded channel.
struct Phone {
    id: String,
    tx: mpsc::Sender<Event>,
    max: usize,
}

#[async_trait::async_trait]
impl PeerLink for Phone {
    fn device_id(&self) -> &str {
        &self.id
    }
    async fn send_event(&self, event: &Event) -> Result<(), String> {
        let size = event.encode().len();
        assert!(
            size <= self.max,
            "event of {size} bytes over the limit {}",
            self.max
        );
        self.tx.send(event.clone()).await.map_err(|e| e.to_string())
    }
    fn max_message_size(&self) -> usize {
        self.max
    }
}

struct Rig {
    tmux: PrivateTmux,
    handler: Handler,
    link: Arc<dyn PeerLink>,
    rx: mpsc::Receiver<Event>,
}

async fn rig(tag: &str, max: usize) -> (Rig, String) {
    let tmux = PrivateTmux::tagged(&format!("h-{tag}"));
    let pane = tmux.new_session("work", 100, 30).unwrap();
    // Tests run in parallel on two cores; a generous command timeout keeps a
    // busy machine from failing the bridge's start-up.
    let mut cfg = BridgeConfig::new(&tmux.socket);
    cfg.timeout = Duration::from_secs(30);
    // As the agent runs it: pane output handed over by its own binary.
    cfg.pipe_helper = Some(agent_bin::pane_pipe_helper(env!("CARGO_BIN_EXE_muxlink")));
    let bridge = TmuxBridge::start_with(cfg).await.unwrap();
    let (tx, rx) = mpsc::channel(64);
    let link: Arc<dyn PeerLink> = Arc::new(Phone {
        id: "0123456789abcdef0123456789abcdef".into(),
        tx,
        max,
    });
    (
        Rig {
            tmux,
            handler: Handler::new(bridge),
            link,
            rx,
        },
        pane,
    )
}

impl Rig {
    async fn req(&self, r: Request) {
        self.handler.handle(self.link.clone(), r).await;
    }
    async fn next(&mut self) -> Event {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("no event in time")
            .expect("channel closed")
    }
    /// Collects output text until it contains `needle`.
    async fn output_until(
        &mut self,
        needle: &str,
        mut inflate: Option<&mut Decompressor>,
    ) -> String {
        let mut text = Vec::new();
        loop {
            match self.next().await {
                Event::Output { data, .. } => {
                    let plain = match inflate.as_deref_mut() {
                        Some(d) => d.decompress(&data).unwrap(),
                        None => data,
                    };
                    text.extend(plain);
                    let s = String::from_utf8_lossy(&text).into_owned();
                    if s.contains(needle) {
                        return s;
                    }
                }
                other => panic!("unexpected {other:?} while waiting for {needle:?}"),
            }
        }
    }
    fn attach(pane: &str, cols: u16, rows: u16) -> Request {
        Request::Attach(Attach {
            pane_id: pane.to_string(),
            cols,
            rows,
            reattach: false,
            compression: None,
            offsets: false,
            resume_from: None,
        })
    }
}

#[tokio::test]
async fn attach_input_output_resize_detach() {
    let (mut r, pane) = rig("main", 65_536).await;
    r.req(Rig::attach(&pane, 80, 24)).await;
    assert_eq!(
        r.next().await,
        Event::Attached {
            pane_id: pane.clone(),
            compression: None,
            offset: None,
            resumed: false
        }
    );
    // The snapshot comes first and shows the current screen, cleared and homed.
    let snap = match r.next().await {
        Event::Output { data, .. } => String::from_utf8_lossy(&data).into_owned(),
        other => panic!("{other:?}"),
    };
    assert!(snap.contains("\x1b[H\x1b[2J"), "{snap:?}");
    assert_eq!(r.tmux.pane_size(&pane).unwrap(), "80x24");

    r.req(Request::Input {
        data: b"echo mux$((40+2))link\r".to_vec(),
        offset: None,
    })
    .await;
    r.output_until("mux42link", None).await;

    r.req(Request::Resize { cols: 60, rows: 20 }).await;
    assert_eq!(r.tmux.pane_size(&pane).unwrap(), "60x20");
    // Same size again: a silent no-op.
    r.req(Request::Resize { cols: 60, rows: 20 }).await;

    r.req(Request::Detach).await;
    loop {
        match r.next().await {
            Event::Detached => break,
            Event::Output { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    // The forced size is released: window-size no longer set on the window.
    let opt = r
        .tmux
        .tmux(&["show-options", "-w", "-t", &pane, "window-size"]);
    assert!(opt.is_empty(), "window-size still set: {opt:?}");
    // Reattach: the snapshot shows the current screen.
    r.req(Request::Attach(Attach {
        pane_id: pane.clone(),
        cols: 80,
        rows: 24,
        reattach: true,
        compression: None,
        offsets: false,
        resume_from: None,
    }))
    .await;
    assert!(matches!(r.next().await, Event::Attached { .. }));
    match r.next().await {
        Event::Output { data, .. } => {
            let s = String::from_utf8_lossy(&data);
            assert!(s.contains("mux42link"), "{s:?}");
        }
        other => panic!("{other:?}"),
    }
    r.req(Request::Detach).await;
    loop {
        if r.next().await == Event::Detached {
            break;
        }
    }
    // Input after detach: not attached.
    r.req(Request::Input {
        data: b"x".to_vec(),
        offset: None,
    })
    .await;
    match r.next().await {
        Event::Error { code, .. } => assert_eq!(code, "not_attached"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bad_requests_get_their_error_codes() {
    let (mut r, pane) = rig("errors", 65_536).await;
    let code_of = |e: Event| match e {
        Event::Error { code, message } => {
            assert!(!message.contains('/'), "message leaks a path: {message}");
            code
        }
        other => panic!("{other:?}"),
    };
    r.req(Rig::attach("bad id!", 80, 24)).await;
    assert_eq!(code_of(r.next().await), "attach_failed");
    r.req(Rig::attach(&pane, 0, 24)).await;
    assert_eq!(code_of(r.next().await), "attach_failed");
    r.req(Rig::attach(&pane, 80, 501)).await;
    assert_eq!(code_of(r.next().await), "attach_failed");
    r.req(Request::Input {
        data: vec![b'a'; 16_385],
        offset: None,
    })
    .await;
    assert_eq!(code_of(r.next().await), "input_too_large");
    r.req(Request::Input {
        data: b"a".to_vec(),
        offset: None,
    })
    .await;
    assert_eq!(code_of(r.next().await), "not_attached");
    r.req(Request::Resize { cols: 0, rows: 10 }).await;
    assert_eq!(code_of(r.next().await), "resize_failed");
    r.req(Request::Resize { cols: 10, rows: 10 }).await;
    assert_eq!(code_of(r.next().await), "not_attached");
    r.req(Request::KillSession {
        session: "a b".into(),
    })
    .await;
    assert_eq!(code_of(r.next().await), "kill_session_failed");
    r.req(Request::KillSession {
        session: "nope".into(),
    })
    .await;
    assert_eq!(code_of(r.next().await), "kill_session_failed");
    r.req(Request::Ping).await;
    assert_eq!(r.next().await, Event::Pong { latency: 0 });
    r.req(Request::Detach).await;
    assert_eq!(r.next().await, Event::Detached);
}

#[tokio::test]
async fn missing_pane_gives_pane_closed_then_sessions() {
    let (mut r, _pane) = rig("missing", 65_536).await;
    r.req(Rig::attach("%999", 80, 24)).await;
    assert_eq!(
        r.next().await,
        Event::PaneClosed {
            pane_id: "%999".into()
        }
    );
    assert!(matches!(r.next().await, Event::Sessions { .. }));
}

#[tokio::test]
async fn pane_exit_is_reported_once() {
    let (mut r, pane) = rig("exit", 65_536).await;
    r.req(Rig::attach(&pane, 80, 24)).await;
    assert!(matches!(r.next().await, Event::Attached { .. }));
    r.req(Request::Input {
        data: b"exit\r".to_vec(),
        offset: None,
    })
    .await;
    let mut closed = 0;
    loop {
        match r.next().await {
            Event::Output { .. } => {}
            Event::PaneClosed { pane_id } => {
                assert_eq!(pane_id, pane);
                closed += 1;
            }
            Event::Sessions { sessions, .. } => {
                assert!(sessions.is_empty() || !sessions.iter().any(|s| s.name == "work"));
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(closed, 1);
    // The attachment is gone.
    r.req(Request::Input {
        data: b"x".to_vec(),
        offset: None,
    })
    .await;
    assert!(matches!(r.next().await, Event::Error { code, .. } if code == "not_attached"));
}

#[tokio::test]
async fn deflate_output_and_small_messages() {
    // A phone accepting only 2 KiB messages: a big screen arrives in pieces.
    let (mut r, pane) = rig("deflate", 2048).await;
    r.req(Request::Attach(Attach {
        pane_id: pane.clone(),
        cols: 200,
        rows: 50,
        reattach: true,
        compression: Some("deflate".into()),
        offsets: false,
        resume_from: None,
    }))
    .await;
    assert_eq!(
        r.next().await,
        Event::Attached {
            pane_id: pane.clone(),
            compression: Some("deflate".into()),
            offset: None,
            resumed: false
        }
    );
    let mut d = Decompressor::new();
    r.req(Request::Input {
        data: b"i=0; while [ $i -lt 3000 ]; do printf '%05d ' $i; i=$((i+1)); done; echo; echo seq-$((1+1))done\r"
            .to_vec(), offset: None })
    .await;
    let text = r.output_until("seq-2done", Some(&mut d)).await;
    assert!(text.contains("02999"), "all numbers arrived");
}

#[tokio::test]
async fn kill_and_create_sessions_and_list() {
    let (mut r, _pane) = rig("sessions", 65_536).await;
    r.req(Request::CreateSession).await;
    let created = match r.next().await {
        Event::SessionCreated { session } => session,
        other => panic!("{other:?}"),
    };
    r.req(Request::ListSessions).await;
    match r.next().await {
        Event::Sessions {
            sessions,
            agent_version,
            ..
        } => {
            assert_eq!(sessions.len(), 2);
            assert_eq!(agent_version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
        }
        other => panic!("{other:?}"),
    }
    r.req(Request::KillSession {
        session: created.id.clone(),
    })
    .await;
    assert_eq!(
        r.next().await,
        Event::SessionEnded {
            session: created.id
        }
    );
}

#[tokio::test]
async fn disconnect_releases_the_size() {
    let (mut r, pane) = rig("disc", 65_536).await;
    r.req(Rig::attach(&pane, 70, 20)).await;
    assert!(matches!(r.next().await, Event::Attached { .. }));
    assert_eq!(r.tmux.pane_size(&pane).unwrap(), "70x20");
    r.handler.peer_disconnected(r.link.device_id()).await;
    let opt = r
        .tmux
        .tmux(&["show-options", "-w", "-t", &pane, "window-size"]);
    assert!(opt.is_empty(), "window-size still set: {opt:?}");
    assert!(r.handler.attachments().is_empty());
    // The pane's pipe is gone too: a new attach works.
    r.req(Rig::attach(&pane, 80, 24)).await;
    loop {
        if let Event::Attached { .. } = r.next().await {
            break;
        }
    }
}

/// Waits for a pushed `sessions` event whose session names satisfy `want`.
async fn pushed_sessions(r: &mut Rig, want: impl Fn(&[String]) -> bool) -> Vec<String> {
    loop {
        if let Event::Sessions { sessions, .. } = r.next().await {
            let names: Vec<String> = sessions.iter().map(|s| s.name.clone()).collect();
            if want(&names) {
                return names;
            }
        }
    }
}

#[tokio::test]
async fn tree_changes_are_pushed_to_the_phone() {
    let (mut r, _pane) = rig("push", 65_536).await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let watcher = r.handler.spawn_tree_watcher(cancel.clone());
    // The phone becomes known to the handler with its first request.
    r.req(Request::Ping).await;
    assert!(matches!(r.next().await, Event::Pong { .. }));

    r.tmux.new_session("added", 100, 30).unwrap();
    pushed_sessions(&mut r, |n| n.iter().any(|s| s == "added")).await;
    r.tmux.tmux(&["rename-session", "-t", "added", "renamed"]);
    pushed_sessions(&mut r, |n| n.iter().any(|s| s == "renamed")).await;
    r.tmux.tmux(&["kill-session", "-t", "renamed"]);
    let names = pushed_sessions(&mut r, |n| !n.iter().any(|s| s == "renamed")).await;
    assert_eq!(names, vec!["work".to_string()]);
    // A kill can produce one more push while tmux settles; let it drain.
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1500), r.rx.recv()).await {}

    // A resize re-layouts the window but does not change the tree's shape.
    r.tmux
        .tmux(&["resize-window", "-t", "work", "-x", "90", "-y", "20"]);
    r.req(Request::Ping).await;
    assert!(matches!(r.next().await, Event::Pong { .. }));
    let quiet = tokio::time::timeout(Duration::from_millis(1500), r.rx.recv()).await;
    assert!(quiet.is_err(), "unexpected push after a resize: {quiet:?}");

    cancel.cancel();
    watcher.await.unwrap();
}

#[tokio::test]
async fn reattach_releases_the_previous_panes_size() {
    let (mut r, first) = rig("reattach", 65_536).await;
    let second = r.tmux.new_session("second", 100, 30).unwrap();
    let window_size = |r: &Rig, pane: &str| {
        r.tmux
            .tmux(&["show-options", "-w", "-t", pane, "window-size"])
    };
    r.req(Rig::attach(&first, 70, 20)).await;
    assert!(matches!(r.next().await, Event::Attached { .. }));
    assert_eq!(r.tmux.pane_size(&first).unwrap(), "70x20");
    assert!(!window_size(&r, &first).is_empty(), "the size is forced");

    // A new attach of the same phone ends the first one silently (§6 attach
    // step 2): no `detached`, no `pane_closed`, and its size is released.
    r.req(Rig::attach(&second, 60, 18)).await;
    loop {
        match r.next().await {
            Event::Attached { pane_id, .. } => {
                assert_eq!(pane_id, second);
                break;
            }
            Event::Output { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    let opt = window_size(&r, &first);
    assert!(opt.is_empty(), "window-size still set: {opt:?}");
    assert_eq!(r.tmux.pane_size(&second).unwrap(), "60x18");
    assert_eq!(
        r.handler.attachments(),
        vec![(r.link.device_id().to_string(), Some(second.clone()))]
    );

    // Input now goes to the second pane.
    r.req(Request::Input {
        data: b"echo re$((2+3))attached\r".to_vec(),
        offset: None,
    })
    .await;
    r.output_until("re5attached", None).await;
}
