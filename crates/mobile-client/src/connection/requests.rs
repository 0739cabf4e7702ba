//! The typed request/response API of [`PhoneConnection`]: each request
//! that has an answer registers what it expects, the event reader hands it
//! the first matching event, and a bounded number may wait at once.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use terminal_protocol::{Attach, Event, MAX_INPUT_SIZE, Request, Session};
use tokio::sync::oneshot;

use super::{MAX_WAITERS, PhoneConnection, REQUEST_TIMEOUT, closed_or, lock};
use crate::error::ClientError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    Sessions,
    Attached,
    Detached,
    SessionEnded,
    SessionCreated,
    Pong,
}

impl Expect {
    pub(super) fn matches(self, ev: &Event) -> bool {
        let err = |c: &str| matches!(ev, Event::Error { code, .. } if code == c);
        match self {
            Expect::Sessions => matches!(ev, Event::Sessions { .. }) || err("list_sessions_failed"),
            Expect::Attached => {
                matches!(ev, Event::Attached { .. } | Event::PaneClosed { .. })
                    || err("attach_failed")
                    || err("compression_failed")
            }
            Expect::Detached => matches!(ev, Event::Detached),
            Expect::SessionEnded => {
                matches!(ev, Event::SessionEnded { .. }) || err("kill_session_failed")
            }
            Expect::SessionCreated => {
                matches!(ev, Event::SessionCreated { .. }) || err("create_session_failed")
            }
            Expect::Pong => matches!(ev, Event::Pong { .. }),
        }
    }
}

pub(super) type Waiters = Arc<Mutex<VecDeque<(Expect, oneshot::Sender<Event>)>>>;

impl PhoneConnection {
    /// `list_sessions` → the session tree.
    pub async fn list_sessions(&self) -> Result<Vec<Session>, ClientError> {
        match self
            .request(Request::ListSessions, Expect::Sessions)
            .await?
        {
            Event::Sessions { sessions, .. } => Ok(sessions),
            other => Err(unexpected(other)),
        }
    }

    /// `attach` to `pane_id` at `cols`×`rows`; with `compress`, asks for deflate
    /// (output events are inflated before they reach [`PhoneConnection::next_event`]).
    pub async fn attach(
        &self,
        pane_id: &str,
        cols: u16,
        rows: u16,
        reattach: bool,
        compress: bool,
    ) -> Result<(), ClientError> {
        let req = Request::Attach(Attach {
            pane_id: pane_id.to_owned(),
            cols,
            rows,
            reattach,
            compression: compress.then(|| "deflate".to_owned()),
            offsets: false,
            resume_from: None,
        });
        match self.request(req, Expect::Attached).await? {
            Event::Attached { .. } => Ok(()),
            Event::PaneClosed { pane_id } => Err(ClientError::PaneClosed(pane_id)),
            other => Err(unexpected(other)),
        }
    }

    /// `input`: sends the bytes in order, split into ≤ 16 384-byte messages.
    pub async fn input(&self, data: &[u8]) -> Result<(), ClientError> {
        for chunk in data.chunks(MAX_INPUT_SIZE) {
            self.send_request(&Request::Input {
                data: chunk.to_vec(),
                offset: None,
            })
            .await?;
        }
        Ok(())
    }

    /// `resize` (silent on success; failures arrive as `error` events).
    pub async fn resize(&self, cols: u16, rows: u16) -> Result<(), ClientError> {
        self.send_request(&Request::Resize { cols, rows }).await
    }

    /// `detach`, waiting for `detached`.
    pub async fn detach(&self) -> Result<(), ClientError> {
        self.request(Request::Detach, Expect::Detached)
            .await
            .map(|_| ())
    }

    /// `kill_session`, waiting for `session_ended`.
    pub async fn kill_session(&self, session: &str) -> Result<(), ClientError> {
        let req = Request::KillSession {
            session: session.to_owned(),
        };
        match self.request(req, Expect::SessionEnded).await? {
            Event::SessionEnded { .. } => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// `create_session` → the new session.
    pub async fn create_session(&self) -> Result<Session, ClientError> {
        match self
            .request(Request::CreateSession, Expect::SessionCreated)
            .await?
        {
            Event::SessionCreated { session } => Ok(session),
            other => Err(unexpected(other)),
        }
    }

    /// `ping` → round-trip time to the `pong`.
    pub async fn ping(&self) -> Result<Duration, ClientError> {
        let started = Instant::now();
        self.request(Request::Ping, Expect::Pong).await?;
        Ok(started.elapsed())
    }

    /// Sends one request without waiting for any answer.
    pub async fn send_request(&self, req: &Request) -> Result<(), ClientError> {
        self.channel.send(&req.encode()).await.map_err(closed_or)
    }

    /// Test hook: sends arbitrary bytes as one DataChannel message (garbage,
    /// events, oversize frames up to the library's limit).
    pub async fn send_raw(&self, bytes: &[u8]) -> Result<(), ClientError> {
        self.channel.send_unchecked(bytes).await.map_err(closed_or)
    }

    async fn request(&self, req: Request, expect: Expect) -> Result<Event, ClientError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut w = lock(&self.waiters);
            if w.len() >= MAX_WAITERS {
                return Err(ClientError::Timeout("a free request slot"));
            }
            w.push_back((expect, tx));
        }
        self.send_request(&req).await?;
        let ev = tokio::time::timeout(REQUEST_TIMEOUT, rx)
            .await
            .map_err(|_| ClientError::Timeout(req.type_name()))?
            .map_err(|_| ClientError::Closed)?;
        match ev {
            Event::Error { code, message } => Err(ClientError::Remote { code, message }),
            ev => Ok(ev),
        }
    }
}

fn unexpected(ev: Event) -> ClientError {
    ClientError::Remote {
        code: "unexpected".into(),
        message: format!("unexpected {} event", ev.type_name()),
    }
}
