//! Hand-written MessagePack encoder: one map per message, `type` first, keys in
//! the spec's table order, shortest integer/str/bin/map forms, optional fields
//! omitted (spec §1, §10). Written with `rmp::encode` for byte-exact control.

use std::convert::Infallible;

use rmp::encode::{self as enc, ByteBuf, ValueWriteError};

use crate::message::{Attach, Event, Request};
use crate::tree::{Pane, Session, Window};

/// Unwraps a write into a [`ByteBuf`], whose error type is uninhabited.
fn done<T>(r: Result<T, ValueWriteError<Infallible>>) -> T {
    match r {
        Ok(v) => v,
        Err(ValueWriteError::InvalidMarkerWrite(e) | ValueWriteError::InvalidDataWrite(e)) => {
            match e {}
        }
    }
}

/// A length as msgpack's u32. Every length we write is bounded far below
/// 4 GiB by the message size limit; saturating keeps this total anyway.
fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// The output buffer with one method per msgpack shape we emit.
struct Enc(ByteBuf);

impl Enc {
    fn map(&mut self, entries: usize) {
        done(enc::write_map_len(&mut self.0, len32(entries)));
    }

    fn array(&mut self, items: usize) {
        done(enc::write_array_len(&mut self.0, len32(items)));
    }

    fn str(&mut self, s: &str) {
        done(enc::write_str(&mut self.0, s));
    }

    fn bin(&mut self, b: &[u8]) {
        done(enc::write_bin(&mut self.0, b));
    }

    fn uint(&mut self, v: u64) {
        done(enc::write_uint(&mut self.0, v));
    }

    /// Non-negative values use the unsigned forms (`createdAt` 1700000000 is
    /// `ce 65 53 f1 00`, vector V7).
    fn sint(&mut self, v: i64) {
        done(enc::write_sint(&mut self.0, v));
    }

    fn bool(&mut self, b: bool) {
        match enc::write_bool(&mut self.0, b) {
            Ok(()) => {}
            Err(e) => match e {},
        }
    }

    /// Map header plus the `type` entry; `entries` counts `type` too.
    fn head(&mut self, entries: usize, ty: &str) {
        self.map(entries);
        self.str("type");
        self.str(ty);
    }

    fn kv_str(&mut self, key: &str, value: &str) {
        self.str(key);
        self.str(value);
    }

    fn session(&mut self, s: &Session) {
        self.map(6);
        self.kv_str("id", &s.id);
        self.kv_str("name", &s.name);
        self.str("createdAt");
        self.sint(s.created_at);
        self.str("windows");
        self.array(s.windows.len());
        for w in &s.windows {
            self.window(w);
        }
        self.str("lastActivityAt");
        self.sint(s.last_activity_at);
        self.str("attached");
        self.bool(s.attached);
    }

    fn window(&mut self, w: &Window) {
        self.map(5);
        self.kv_str("id", &w.id);
        self.kv_str("name", &w.name);
        self.str("index");
        self.uint(u64::from(w.index));
        self.str("active");
        self.bool(w.active);
        self.str("panes");
        self.array(w.panes.len());
        for p in &w.panes {
            self.pane(p);
        }
    }

    fn pane(&mut self, p: &Pane) {
        self.map(6);
        self.kv_str("id", &p.id);
        self.str("index");
        self.uint(u64::from(p.index));
        self.str("active");
        self.bool(p.active);
        self.str("size");
        self.map(2);
        self.str("cols");
        self.uint(u64::from(p.size.cols));
        self.str("rows");
        self.uint(u64::from(p.size.rows));
        self.kv_str("title", &p.title);
        self.kv_str("currentCommand", &p.current_command);
    }
}

/// `Some` and non-empty: the only optional strings that go on the wire.
fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// Runs `f` on an encoder that appends to `buf`.
fn append(buf: &mut Vec<u8>, f: impl FnOnce(&mut Enc)) {
    let mut e = Enc(ByteBuf::from_vec(std::mem::take(buf)));
    f(&mut e);
    *buf = e.0.into_vec();
}

impl Request {
    /// The wire bytes of this request.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        self.encode_into(&mut buf);
        buf
    }

    /// Appends the wire bytes of this request to `buf`.
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        append(buf, |e| {
            let ty = self.type_name();
            match self {
                Request::ListSessions
                | Request::Detach
                | Request::Ping
                | Request::CreateSession => e.head(1, ty),
                Request::Attach(Attach {
                    pane_id,
                    cols,
                    rows,
                    reattach,
                    compression,
                    offsets,
                    resume_from,
                }) => {
                    let compression = present(compression);
                    e.head(
                        4 + usize::from(*reattach)
                            + usize::from(compression.is_some())
                            + usize::from(*offsets)
                            + usize::from(resume_from.is_some()),
                        ty,
                    );
                    e.kv_str("paneId", pane_id);
                    e.str("cols");
                    e.uint(u64::from(*cols));
                    e.str("rows");
                    e.uint(u64::from(*rows));
                    if *reattach {
                        e.str("reattach");
                        e.bool(true);
                    }
                    if let Some(c) = compression {
                        e.kv_str("compression", c);
                    }
                    if *offsets {
                        e.str("offsets");
                        e.bool(true);
                    }
                    if let Some(from) = resume_from {
                        e.str("resumeFrom");
                        e.uint(*from);
                    }
                }
                Request::Input { data, offset } => {
                    e.head(2 + usize::from(offset.is_some()), ty);
                    e.str("data");
                    e.bin(data);
                    if let Some(o) = offset {
                        e.str("offset");
                        e.uint(*o);
                    }
                }
                Request::Resize { cols, rows } => {
                    e.head(3, ty);
                    e.str("cols");
                    e.uint(u64::from(*cols));
                    e.str("rows");
                    e.uint(u64::from(*rows));
                }
                Request::KillSession { session } => {
                    e.head(2, ty);
                    e.kv_str("session", session);
                }
                Request::AuthResponse { nonce, mac } => {
                    e.head(3, ty);
                    e.kv_str("nonce", nonce);
                    e.kv_str("mac", mac);
                }
            }
        });
    }
}

impl Event {
    /// The wire bytes of this event.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        self.encode_into(&mut buf);
        buf
    }

    /// Appends the wire bytes of this event to `buf`.
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        append(buf, |e| {
            let ty = self.type_name();
            match self {
                Event::Detached => e.head(1, ty),
                Event::AuthOk { mac } => {
                    e.head(2, ty);
                    e.kv_str("mac", mac);
                }
                Event::AuthChallenge { nonce } => {
                    e.head(2, ty);
                    e.kv_str("nonce", nonce);
                }
                Event::Sessions {
                    sessions,
                    agent_version,
                    update_available,
                } => {
                    let agent_version = present(agent_version);
                    let update_available = present(update_available);
                    e.head(
                        2 + usize::from(agent_version.is_some())
                            + usize::from(update_available.is_some()),
                        ty,
                    );
                    e.str("sessions");
                    e.array(sessions.len());
                    for s in sessions {
                        e.session(s);
                    }
                    if let Some(v) = agent_version {
                        e.kv_str("agentVersion", v);
                    }
                    if let Some(v) = update_available {
                        e.kv_str("updateAvailable", v);
                    }
                }
                Event::Output {
                    data,
                    offset,
                    snapshot,
                    pane_id,
                } => {
                    let pane_id = present(pane_id);
                    e.head(
                        2 + usize::from(offset.is_some())
                            + usize::from(*snapshot)
                            + usize::from(pane_id.is_some()),
                        ty,
                    );
                    e.str("data");
                    e.bin(data);
                    if let Some(o) = offset {
                        e.str("offset");
                        e.uint(*o);
                    }
                    if *snapshot {
                        e.str("snapshot");
                        e.bool(true);
                    }
                    if let Some(p) = pane_id {
                        e.kv_str("paneId", p);
                    }
                }
                Event::Attached {
                    pane_id,
                    compression,
                    offset,
                    resumed,
                } => {
                    let compression = present(compression);
                    e.head(
                        2 + usize::from(compression.is_some())
                            + usize::from(offset.is_some())
                            + usize::from(*resumed),
                        ty,
                    );
                    e.kv_str("paneId", pane_id);
                    if let Some(c) = compression {
                        e.kv_str("compression", c);
                    }
                    if let Some(o) = offset {
                        e.str("offset");
                        e.uint(*o);
                    }
                    if *resumed {
                        e.str("resumed");
                        e.bool(true);
                    }
                }
                Event::SessionEnded { session } => {
                    e.head(2, ty);
                    e.kv_str("session", session);
                }
                Event::PaneClosed { pane_id } => {
                    e.head(2, ty);
                    e.kv_str("paneId", pane_id);
                }
                Event::Error { code, message } => {
                    e.head(3, ty);
                    e.kv_str("code", code);
                    e.kv_str("message", message);
                }
                Event::Pong { latency } => {
                    e.head(2, ty);
                    e.str("latency");
                    e.uint(*latency);
                }
                Event::SessionCreated { session } => {
                    e.head(2, ty);
                    e.str("session");
                    e.session(session);
                }
            }
        });
    }
}
