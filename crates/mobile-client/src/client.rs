//! `PhoneClient`: the phone as one object over a config directory: identity,
//! pairing, signaling and connections to the paired host.

use std::path::PathBuf;
use std::sync::Arc;

use rtc_transport::RtcConfig;
use signaling_client::http::fetch_token;
use signaling_proto::consts::DEFAULT_API_VERSION;

use crate::connection::{CandidateStyle, ConnectOptions, PhoneConnection};
use crate::error::ClientError;
use crate::identity::PhoneIdentity;
use crate::misbehave::Misbehave;
use crate::signaling::{Signaling, SignalingOptions};
use crate::store::{ConfigDir, PairingRecord};

/// How the phone runs.
#[derive(Debug, Clone)]
pub struct PhoneConfig {
    /// Config directory (identity key, pairing record).
    pub dir: PathBuf,
    /// Device name sent when pairing and in `auth`.
    pub name: String,
    /// Request-signing secret shared with the server (empty: none).
    pub hmac_secret: String,
    /// API version the server serves (default `v1`; empty: no prefix).
    pub api_version: String,
    /// WebRTC settings.
    pub rtc: RtcConfig,
    /// Where the phone's ICE candidates go: trickled (default) or inside the answer.
    pub candidates: CandidateStyle,
    /// Stream v2 (docs/stream-v2.md): fast channel, offsets, resume. On by
    /// default; off acts as a phone from before it.
    pub stream_v2: bool,
}

impl PhoneConfig {
    /// Defaults for a config directory: name "muxlink-phone", no signing secret,
    /// API `v1`, default WebRTC settings, trickled candidates, stream v2 on.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        PhoneConfig {
            dir: dir.into(),
            name: "muxlink-phone".into(),
            hmac_secret: String::new(),
            api_version: DEFAULT_API_VERSION.to_owned(),
            rtc: RtcConfig::default(),
            candidates: CandidateStyle::Trickle,
            stream_v2: true,
        }
    }
}

/// The phone.
#[derive(Debug)]
pub struct PhoneClient {
    config: PhoneConfig,
    store: ConfigDir,
    identity: PhoneIdentity,
}

impl PhoneClient {
    /// Opens the config directory, creating the identity on first use.
    pub fn open(config: PhoneConfig) -> Result<PhoneClient, ClientError> {
        let store = ConfigDir::new(config.dir.clone());
        let identity = store.identity()?;
        Ok(PhoneClient {
            config,
            store,
            identity,
        })
    }

    /// The identity.
    pub fn identity(&self) -> &PhoneIdentity {
        &self.identity
    }

    /// The config.
    pub fn config(&self) -> &PhoneConfig {
        &self.config
    }

    /// The stored pairing, if any.
    pub fn pairing(&self) -> Result<Option<PairingRecord>, ClientError> {
        self.store.pairing()
    }

    /// Pairs from the QR payload text and stores the result (replacing any
    /// earlier pairing). Nothing is stored when pairing fails.
    pub async fn pair(&self, payload: &str) -> Result<PairingRecord, ClientError> {
        let name = (!self.config.name.is_empty()).then_some(self.config.name.as_str());
        let server = crate::pairing::ServerAccess {
            api_version: self.config.api_version.clone(),
            hmac_secret: self.config.hmac_secret.clone(),
        };
        let record = crate::pairing::pair(&self.identity, payload, name, &server).await?;
        self.store.save_pairing(&record)?;
        Ok(record)
    }

    /// Forgets the pairing locally.
    pub fn forget_pairing(&self) -> Result<(), ClientError> {
        self.store.remove_pairing()
    }

    /// A JWT for this device (challenge → sign → token).
    pub async fn fetch_token(&self) -> Result<String, ClientError> {
        let record = self.pairing()?.ok_or(ClientError::NotPaired)?;
        let id = self.identity.clone();
        let (version, secret) = (
            self.config.api_version.clone(),
            self.config.hmac_secret.clone(),
        );
        crate::http::blocking(move || Ok(fetch_token(&id, &record.server_url, &version, &secret)?))
            .await
    }

    /// Opens the signaling socket to the paired host's server.
    pub async fn signaling(&self) -> Result<Arc<Signaling>, ClientError> {
        let record = self.pairing()?.ok_or(ClientError::NotPaired)?;
        let mut opts = SignalingOptions::new(&record.server_url);
        opts.hmac_secret = self.config.hmac_secret.clone();
        opts.api_version = self.config.api_version.clone();
        opts.name = self.config.name.clone();
        Ok(Arc::new(Signaling::connect(&self.identity, &opts).await?))
    }

    /// Connects to the paired host over `signaling` and authenticates.
    pub async fn connect(&self, signaling: Arc<Signaling>) -> Result<PhoneConnection, ClientError> {
        self.connect_with(signaling, Misbehave::default()).await
    }

    /// [`PhoneClient::connect`] with deliberate misbehaviour (hostile-peer tests).
    pub async fn connect_with(
        &self,
        signaling: Arc<Signaling>,
        misbehave: Misbehave,
    ) -> Result<PhoneConnection, ClientError> {
        let record = self.pairing()?.ok_or(ClientError::NotPaired)?;
        let opts = ConnectOptions {
            candidates: self.config.candidates,
            stream_v2: self.config.stream_v2,
            misbehave,
        };
        PhoneConnection::connect_opts(
            signaling,
            &record.host_device_id,
            &record.secret,
            &self.config.rtc,
            opts,
        )
        .await
    }
}
