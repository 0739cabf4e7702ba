//! Test-only misbehaviour for hostile-peer tests: how the phone deviates from
//! the channel-authentication handshake. Production code uses `Misbehave::default()`.

/// What the phone answers to the host's `auth_challenge`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MacBehaviour {
    /// The correct MAC.
    #[default]
    Correct,
    /// A MAC computed with a wrong secret.
    Wrong,
    /// No `auth_response` at all (the host's 10 s timer must close the peer).
    Missing,
    /// A syntactically invalid MAC (not base64).
    Garbage,
}

/// Deviations from the handshake, applied by `PhoneConnection::connect_with`.
#[derive(Debug, Clone, Default)]
pub struct Misbehave {
    /// What to send as `auth_response`.
    pub mac: MacBehaviour,
    /// Raw DataChannel messages sent after the challenge arrives and before the
    /// `auth_response` (encoded requests, garbage bytes, ...).
    pub before_auth: Vec<Vec<u8>>,
    /// Return the connection without waiting for `auth_ok` (so a test can watch
    /// the host close it).
    pub skip_auth_wait: bool,
}

impl Misbehave {
    /// Wrong MAC, connection returned without waiting for `auth_ok`.
    pub fn wrong_mac() -> Self {
        Misbehave {
            mac: MacBehaviour::Wrong,
            skip_auth_wait: true,
            ..Default::default()
        }
    }

    /// No MAC at all, connection returned at once.
    pub fn no_mac() -> Self {
        Misbehave {
            mac: MacBehaviour::Missing,
            skip_auth_wait: true,
            ..Default::default()
        }
    }

    /// These raw messages before the (correct) MAC.
    pub fn before_auth(messages: Vec<Vec<u8>>) -> Self {
        Misbehave {
            before_auth: messages,
            ..Default::default()
        }
    }
}
