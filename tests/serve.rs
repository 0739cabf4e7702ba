//! `muxlink serve`: the bundled signaling server from the real binary answers
//! `/v1/health`, refuses a bad bind address in one line, and exits 0 on SIGTERM.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::time::Duration;

use muxlink_e2e::{Home, Stream};

const BIN: &str = env!("CARGO_BIN_EXE_muxlink-e2e-agent");
const T: Duration = Duration::from_secs(30);

#[test]
fn serve_listens_answers_health_and_stops_on_sigterm() {
    let home = Home::new(BIN, "mxl-e2e-unused").unwrap();
    let mut server = home.spawn(&["serve", "--bind", "127.0.0.1:0"]).unwrap();
    let line = server
        .wait_line(T, |s, l| {
            s == Stream::Stdout && l.starts_with("listening on ")
        })
        .unwrap();
    let url = line.trim_start_matches("listening on ");
    let addr = url.trim_start_matches("http://");
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(T)).unwrap();
    write!(
        tcp,
        "GET /v1/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    tcp.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\"status\":\"ok\""), "{reply}");
    let status = server.terminate(T).unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn bad_bind_address_is_one_clear_line() {
    let home = Home::new(BIN, "mxl-e2e-unused").unwrap();
    let o = home.output(&["serve", "--bind", "nowhere"], T).unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("invalid --bind address"), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "{e}");
}
