//! Hand-written MessagePack decoder for [`Request`] and [`Event`] with the
//! validation of spec §9. Two passes over the bytes: the first checks the
//! whole structure and finds `type`, the second reads the known fields in any
//! order. Unknown keys are skipped; duplicate known keys are rejected.

use crate::error::{DecodeError, ErrorCode};
use crate::limits::{
    MAX_DIM, MAX_ERROR_CODE_LEN, MAX_ERROR_MESSAGE_LEN, MAX_ID_LEN, MAX_INPUT_SIZE, MAX_MAC_LEN,
    MAX_MESSAGE_SIZE, MAX_NONCE_LEN, MAX_OUTPUT_SIZE, MIN_DIM,
};
use crate::message::{Attach, Event, Request};
use crate::reader::{Path, Reader};
use crate::stream::MAX_STREAM_OFFSET;
use crate::tree::{Pane, PaneSize, Session, Window};

type Result<T> = std::result::Result<T, DecodeError>;

/// Reads one map whose entries are matched against `names`: `visit(i, ..)` is
/// called with the index of each known key found, unknown keys are skipped.
/// `depth` is the nesting level of this map (the message itself is 1).
/// `skip_type` skips the top-level `type` key, already read by the first pass.
fn fields<'a>(
    r: &mut Reader<'a>,
    path: &Path<'_>,
    depth: usize,
    names: &[&'static str],
    skip_type: bool,
    mut visit: impl FnMut(usize, &mut Reader<'a>, &Path<'_>) -> Result<()>,
) -> Result<()> {
    debug_assert!(names.len() <= 64, "the seen-set is a u64");
    let n = r.map_len(path)?;
    let mut seen = 0u64;
    for _ in 0..n {
        let Some(key) = r.key(path, depth)? else {
            r.skip(path, depth)?;
            continue;
        };
        if skip_type && key == b"type" {
            // Read and checked by the first pass.
            r.skip(&Path::Key(path, "type"), depth)?;
            continue;
        }
        match names.iter().position(|name| name.as_bytes() == key) {
            Some(i) => {
                let child = Path::Key(path, names[i]);
                if seen & (1 << i) != 0 {
                    return Err(child.malformed("duplicate key"));
                }
                seen |= 1 << i;
                visit(i, r, &child)?;
            }
            None => {
                let label = std::str::from_utf8(key).unwrap_or("<key>");
                r.skip(&Path::Key(path, label), depth)?;
            }
        }
    }
    Ok(())
}

fn required<T>(value: Option<T>, path: &Path<'_>, name: &'static str) -> Result<T> {
    value.ok_or_else(|| DecodeError::Missing {
        field: Path::Key(path, name).render(),
    })
}

/// A str of at most `max` UTF-8 bytes.
fn bounded_bytes_str(r: &mut Reader<'_>, path: &Path<'_>, max: usize) -> Result<String> {
    let s = r.str(path)?;
    if s.len() > max {
        return Err(DecodeError::TooLong {
            field: path.render(),
            len: s.len(),
            max,
            unit: "bytes",
        });
    }
    Ok(s.to_owned())
}

/// A str of at most `max` chars.
fn bounded_chars_str(r: &mut Reader<'_>, path: &Path<'_>, max: usize) -> Result<String> {
    let s = r.str(path)?;
    let len = s.chars().count();
    if len > max {
        return Err(DecodeError::TooLong {
            field: path.render(),
            len,
            max,
            unit: "chars",
        });
    }
    Ok(s.to_owned())
}

/// An optional str: empty means absent.
fn optional_str(r: &mut Reader<'_>, path: &Path<'_>) -> Result<Option<String>> {
    let s = r.str(path)?;
    Ok((!s.is_empty()).then(|| s.to_owned()))
}

/// `cols` / `rows` of attach and resize: 1..=500, else the request's own code.
fn dim(r: &mut Reader<'_>, path: &Path<'_>, code: ErrorCode) -> Result<u16> {
    let v = r.int(path)?;
    match u16::try_from(v) {
        Ok(d) if (MIN_DIM..=MAX_DIM).contains(&d) => Ok(d),
        _ => Err(DecodeError::Dimension {
            field: path.render(),
            value: v,
            code,
        }),
    }
}

/// An integer converted to `T`, reporting `range` when it does not fit.
fn int_in<T: TryFrom<i128>>(r: &mut Reader<'_>, path: &Path<'_>, range: &'static str) -> Result<T> {
    let v = r.int(path)?;
    T::try_from(v).map_err(|_| DecodeError::OutOfRange {
        field: path.render(),
        value: v,
        range,
    })
}

/// A stream v2 offset: an unsigned integer no larger than 2^53 − 1, so a
/// JavaScript phone holds it exactly (docs/stream-v2.md §2).
fn stream_offset(r: &mut Reader<'_>, path: &Path<'_>) -> Result<u64> {
    const RANGE: &str = "0..=9007199254740991";
    let v = r.int(path)?;
    match u64::try_from(v) {
        Ok(o) if o <= MAX_STREAM_OFFSET => Ok(o),
        _ => Err(DecodeError::OutOfRange {
            field: path.render(),
            value: v,
            range: RANGE,
        }),
    }
}

/// First pass: checks that the message is exactly one well-formed map, and
/// returns its non-empty `type`.
fn message_type(bytes: &[u8]) -> Result<&str> {
    if bytes.len() > MAX_MESSAGE_SIZE {
        return Err(DecodeError::MessageTooLarge { len: bytes.len() });
    }
    let mut r = Reader::new(bytes);
    let root = Path::Root("");
    let mut ty = None;
    fields(&mut r, &root, 1, &["type"], false, |_, r, p| {
        ty = Some(r.str(p)?);
        Ok(())
    })?;
    if r.remaining() != 0 {
        return Err(root.malformed("trailing bytes after the map"));
    }
    match ty {
        None => Err(DecodeError::Missing {
            field: "type".into(),
        }),
        Some("") => Err(Path::Key(&root, "type").malformed("must not be empty")),
        Some(t) => Ok(t),
    }
}

/// Second pass over a message of known type `name`.
fn message_fields<'a>(
    bytes: &'a [u8],
    name: &'static str,
    names: &[&'static str],
    visit: impl FnMut(usize, &mut Reader<'a>, &Path<'_>) -> Result<()>,
) -> Result<()> {
    fields(
        &mut Reader::new(bytes),
        &Path::Root(name),
        1,
        names,
        true,
        visit,
    )
}

impl Request {
    /// Decodes one request. Never panics; see the crate docs for the rules.
    pub fn decode(bytes: &[u8]) -> Result<Request> {
        let ty = message_type(bytes)?;
        let no_fields = |name| message_fields(bytes, name, &[], |_, _, _| Ok(()));
        match ty {
            "list_sessions" => no_fields("list_sessions").map(|()| Request::ListSessions),
            "detach" => no_fields("detach").map(|()| Request::Detach),
            "ping" => no_fields("ping").map(|()| Request::Ping),
            "create_session" => no_fields("create_session").map(|()| Request::CreateSession),
            "attach" => {
                let (mut pane, mut cols, mut rows) = (None, None, None);
                let (mut reattach, mut compression) = (false, None);
                let (mut offsets, mut resume_from) = (false, None);
                let names = [
                    "paneId",
                    "cols",
                    "rows",
                    "reattach",
                    "compression",
                    "offsets",
                    "resumeFrom",
                ];
                message_fields(bytes, "attach", &names, |i, r, p| {
                    match i {
                        0 => pane = Some(bounded_bytes_str(r, p, MAX_ID_LEN)?),
                        1 => cols = Some(dim(r, p, ErrorCode::AttachFailed)?),
                        2 => rows = Some(dim(r, p, ErrorCode::AttachFailed)?),
                        3 => reattach = r.bool(p)?,
                        4 => compression = optional_str(r, p)?,
                        5 => offsets = r.bool(p)?,
                        _ => resume_from = Some(stream_offset(r, p)?),
                    }
                    Ok(())
                })?;
                let root = Path::Root("attach");
                Ok(Request::Attach(Attach {
                    pane_id: required(pane, &root, "paneId")?,
                    cols: required(cols, &root, "cols")?,
                    rows: required(rows, &root, "rows")?,
                    reattach,
                    compression,
                    offsets,
                    resume_from,
                }))
            }
            "input" => {
                let (mut data, mut offset) = (None, None);
                message_fields(bytes, "input", &["data", "offset"], |i, r, p| {
                    if i == 1 {
                        offset = Some(stream_offset(r, p)?);
                        return Ok(());
                    }
                    let d = r.bin(p)?;
                    if d.len() > MAX_INPUT_SIZE {
                        return Err(DecodeError::InputTooLarge { len: d.len() });
                    }
                    data = Some(d.to_vec());
                    Ok(())
                })?;
                Ok(Request::Input {
                    data: required(data, &Path::Root("input"), "data")?,
                    offset,
                })
            }
            "resize" => {
                let (mut cols, mut rows) = (None, None);
                message_fields(bytes, "resize", &["cols", "rows"], |i, r, p| {
                    let d = dim(r, p, ErrorCode::ResizeFailed)?;
                    if i == 0 {
                        cols = Some(d)
                    } else {
                        rows = Some(d)
                    }
                    Ok(())
                })?;
                let root = Path::Root("resize");
                Ok(Request::Resize {
                    cols: required(cols, &root, "cols")?,
                    rows: required(rows, &root, "rows")?,
                })
            }
            "kill_session" => {
                let mut session = None;
                message_fields(bytes, "kill_session", &["session"], |_, r, p| {
                    session = Some(bounded_bytes_str(r, p, MAX_ID_LEN)?);
                    Ok(())
                })?;
                Ok(Request::KillSession {
                    session: required(session, &Path::Root("kill_session"), "session")?,
                })
            }
            "auth_response" => {
                let (mut nonce, mut mac) = (None, None);
                message_fields(bytes, "auth_response", &["nonce", "mac"], |i, r, p| {
                    let max = if i == 0 { MAX_NONCE_LEN } else { MAX_MAC_LEN };
                    let v = bounded_chars_str(r, p, max)?;
                    if v.is_empty() {
                        return Err(p.malformed("must not be empty"));
                    }
                    if i == 0 {
                        nonce = Some(v);
                    } else {
                        mac = Some(v);
                    }
                    Ok(())
                })?;
                let root = Path::Root("auth_response");
                Ok(Request::AuthResponse {
                    nonce: required(nonce, &root, "nonce")?,
                    mac: required(mac, &root, "mac")?,
                })
            }
            other => Err(DecodeError::UnknownType(other.to_owned())),
        }
    }
}

impl Event {
    /// Decodes one event, applying the same §9 bounds a host would. Never
    /// panics; see the crate docs for the rules.
    pub fn decode(bytes: &[u8]) -> Result<Event> {
        let ty = message_type(bytes)?;
        let no_fields = |name| message_fields(bytes, name, &[], |_, _, _| Ok(()));
        match ty {
            "auth_ok" => {
                let mut mac = None;
                message_fields(bytes, "auth_ok", &["mac"], |_, r, p| {
                    mac = Some(bounded_chars_str(r, p, MAX_MAC_LEN)?);
                    Ok(())
                })?;
                Ok(Event::AuthOk {
                    mac: required(mac, &Path::Root("auth_ok"), "mac")?,
                })
            }
            "detached" => no_fields("detached").map(|()| Event::Detached),
            "auth_challenge" => {
                let mut nonce = None;
                message_fields(bytes, "auth_challenge", &["nonce"], |_, r, p| {
                    nonce = Some(bounded_chars_str(r, p, MAX_NONCE_LEN)?);
                    Ok(())
                })?;
                Ok(Event::AuthChallenge {
                    nonce: required(nonce, &Path::Root("auth_challenge"), "nonce")?,
                })
            }
            "sessions" => {
                let (mut sessions, mut agent_version, mut update_available) = (None, None, None);
                let names = ["sessions", "agentVersion", "updateAvailable"];
                message_fields(bytes, "sessions", &names, |i, r, p| {
                    match i {
                        0 => sessions = Some(session_list(r, p)?),
                        1 => agent_version = optional_str(r, p)?,
                        _ => update_available = optional_str(r, p)?,
                    }
                    Ok(())
                })?;
                Ok(Event::Sessions {
                    sessions: required(sessions, &Path::Root("sessions"), "sessions")?,
                    agent_version,
                    update_available,
                })
            }
            "output" => {
                let (mut data, mut offset, mut snapshot, mut pane_id) = (None, None, false, None);
                let names = ["data", "offset", "snapshot", "paneId"];
                message_fields(bytes, "output", &names, |i, r, p| {
                    match i {
                        0 => {}
                        1 => {
                            offset = Some(stream_offset(r, p)?);
                            return Ok(());
                        }
                        2 => {
                            snapshot = r.bool(p)?;
                            return Ok(());
                        }
                        _ => {
                            pane_id = Some(bounded_bytes_str(r, p, MAX_ID_LEN)?);
                            return Ok(());
                        }
                    }
                    let d = r.bin(p)?;
                    if d.len() > MAX_OUTPUT_SIZE {
                        return Err(DecodeError::TooLong {
                            field: p.render(),
                            len: d.len(),
                            max: MAX_OUTPUT_SIZE,
                            unit: "bytes",
                        });
                    }
                    data = Some(d.to_vec());
                    Ok(())
                })?;
                Ok(Event::Output {
                    data: required(data, &Path::Root("output"), "data")?,
                    offset,
                    snapshot,
                    pane_id: pane_id.filter(|p| !p.is_empty()),
                })
            }
            "attached" => {
                let (mut pane_id, mut compression) = (None, None);
                let (mut offset, mut resumed) = (None, false);
                let names = ["paneId", "compression", "offset", "resumed"];
                message_fields(bytes, "attached", &names, |i, r, p| {
                    match i {
                        0 => pane_id = Some(bounded_bytes_str(r, p, MAX_ID_LEN)?),
                        1 => compression = optional_str(r, p)?,
                        2 => offset = Some(stream_offset(r, p)?),
                        _ => resumed = r.bool(p)?,
                    }
                    Ok(())
                })?;
                Ok(Event::Attached {
                    pane_id: required(pane_id, &Path::Root("attached"), "paneId")?,
                    compression,
                    offset,
                    resumed,
                })
            }
            "session_ended" => {
                let mut session = None;
                message_fields(bytes, "session_ended", &["session"], |_, r, p| {
                    session = Some(bounded_bytes_str(r, p, MAX_ID_LEN)?);
                    Ok(())
                })?;
                Ok(Event::SessionEnded {
                    session: required(session, &Path::Root("session_ended"), "session")?,
                })
            }
            "pane_closed" => {
                let mut pane_id = None;
                message_fields(bytes, "pane_closed", &["paneId"], |_, r, p| {
                    pane_id = Some(bounded_bytes_str(r, p, MAX_ID_LEN)?);
                    Ok(())
                })?;
                Ok(Event::PaneClosed {
                    pane_id: required(pane_id, &Path::Root("pane_closed"), "paneId")?,
                })
            }
            "error" => {
                let (mut code, mut message) = (None, None);
                message_fields(bytes, "error", &["code", "message"], |i, r, p| {
                    if i == 0 {
                        code = Some(bounded_chars_str(r, p, MAX_ERROR_CODE_LEN)?);
                    } else {
                        message = Some(bounded_chars_str(r, p, MAX_ERROR_MESSAGE_LEN)?);
                    }
                    Ok(())
                })?;
                let root = Path::Root("error");
                Ok(Event::Error {
                    code: required(code, &root, "code")?,
                    message: required(message, &root, "message")?,
                })
            }
            "pong" => {
                let mut latency = None;
                message_fields(bytes, "pong", &["latency"], |_, r, p| {
                    latency = Some(int_in::<u64>(r, p, "0..=18446744073709551615")?);
                    Ok(())
                })?;
                Ok(Event::Pong {
                    latency: required(latency, &Path::Root("pong"), "latency")?,
                })
            }
            "session_created" => {
                let mut session = None;
                message_fields(bytes, "session_created", &["session"], |_, r, p| {
                    session = Some(session_map(r, p, 2)?);
                    Ok(())
                })?;
                Ok(Event::SessionCreated {
                    session: required(session, &Path::Root("session_created"), "session")?,
                })
            }
            other => Err(DecodeError::UnknownType(other.to_owned())),
        }
    }
}

/// `sessions.sessions`: an array (depth 2) of session maps (depth 3).
fn session_list(r: &mut Reader<'_>, path: &Path<'_>) -> Result<Vec<Session>> {
    let n = r.array_len(path)?;
    // No capacity from the claimed count: the vector grows with what decodes.
    let mut out = Vec::new();
    for i in 0..n {
        out.push(session_map(r, &Path::Index(path, i), 3)?);
    }
    Ok(out)
}

const I64_RANGE: &str = "a 64-bit signed integer";
const U32_RANGE: &str = "0..=4294967295";
const U16_RANGE: &str = "0..=65535";

/// One Session map at nesting level `depth`.
fn session_map(r: &mut Reader<'_>, path: &Path<'_>, depth: usize) -> Result<Session> {
    let (mut id, mut name, mut created_at) = (None, None, None);
    let (mut windows, mut last_activity_at, mut attached) = (None, None, None);
    let names = [
        "id",
        "name",
        "createdAt",
        "windows",
        "lastActivityAt",
        "attached",
    ];
    fields(r, path, depth, &names, false, |i, r, p| {
        match i {
            0 => id = Some(r.str(p)?.to_owned()),
            1 => name = Some(r.str(p)?.to_owned()),
            2 => created_at = Some(int_in::<i64>(r, p, I64_RANGE)?),
            3 => {
                let n = r.array_len(p)?;
                let mut list = Vec::new();
                for j in 0..n {
                    list.push(window_map(r, &Path::Index(p, j), depth + 2)?);
                }
                windows = Some(list);
            }
            4 => last_activity_at = Some(int_in::<i64>(r, p, I64_RANGE)?),
            _ => attached = Some(r.bool(p)?),
        }
        Ok(())
    })?;
    Ok(Session {
        id: required(id, path, "id")?,
        name: required(name, path, "name")?,
        created_at: required(created_at, path, "createdAt")?,
        windows: required(windows, path, "windows")?,
        last_activity_at: required(last_activity_at, path, "lastActivityAt")?,
        attached: required(attached, path, "attached")?,
    })
}

fn window_map(r: &mut Reader<'_>, path: &Path<'_>, depth: usize) -> Result<Window> {
    let (mut id, mut name, mut index, mut active, mut panes) = (None, None, None, None, None);
    let names = ["id", "name", "index", "active", "panes"];
    fields(r, path, depth, &names, false, |i, r, p| {
        match i {
            0 => id = Some(r.str(p)?.to_owned()),
            1 => name = Some(r.str(p)?.to_owned()),
            2 => index = Some(int_in::<u32>(r, p, U32_RANGE)?),
            3 => active = Some(r.bool(p)?),
            _ => {
                let n = r.array_len(p)?;
                let mut list = Vec::new();
                for j in 0..n {
                    list.push(pane_map(r, &Path::Index(p, j), depth + 2)?);
                }
                panes = Some(list);
            }
        }
        Ok(())
    })?;
    Ok(Window {
        id: required(id, path, "id")?,
        name: required(name, path, "name")?,
        index: required(index, path, "index")?,
        active: required(active, path, "active")?,
        panes: required(panes, path, "panes")?,
    })
}

fn pane_map(r: &mut Reader<'_>, path: &Path<'_>, depth: usize) -> Result<Pane> {
    let (mut id, mut index, mut active, mut size) = (None, None, None, None);
    let (mut title, mut current_command) = (None, None);
    let names = ["id", "index", "active", "size", "title", "currentCommand"];
    fields(r, path, depth, &names, false, |i, r, p| {
        match i {
            0 => id = Some(r.str(p)?.to_owned()),
            1 => index = Some(int_in::<u32>(r, p, U32_RANGE)?),
            2 => active = Some(r.bool(p)?),
            3 => size = Some(size_map(r, p, depth + 1)?),
            4 => title = Some(r.str(p)?.to_owned()),
            _ => current_command = Some(r.str(p)?.to_owned()),
        }
        Ok(())
    })?;
    Ok(Pane {
        id: required(id, path, "id")?,
        index: required(index, path, "index")?,
        active: required(active, path, "active")?,
        size: required(size, path, "size")?,
        title: required(title, path, "title")?,
        current_command: required(current_command, path, "currentCommand")?,
    })
}

fn size_map(r: &mut Reader<'_>, path: &Path<'_>, depth: usize) -> Result<PaneSize> {
    let (mut cols, mut rows) = (None, None);
    fields(r, path, depth, &["cols", "rows"], false, |i, r, p| {
        let v = int_in::<u16>(r, p, U16_RANGE)?;
        if i == 0 {
            cols = Some(v)
        } else {
            rows = Some(v)
        }
        Ok(())
    })?;
    Ok(PaneSize {
        cols: required(cols, path, "cols")?,
        rows: required(rows, path, "rows")?,
    })
}
