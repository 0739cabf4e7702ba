//! How webrtc 0.17.2 takes an [`RtcConfig`]: its setting engine (our own host
//! sockets on loopback, ICE timing, the message-size limit), its
//! `RTCConfiguration` and the API object a peer is built from. Not built with
//! the cargo feature `sansio`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use webrtc::api::APIBuilder;
use webrtc::api::setting_engine::{SctpMaxMessageSize, SettingEngine};
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::ice::udp_network::UDPNetwork;
use webrtc::ice_transport::ice_server::RTCIceServer;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::policy::ice_transport_policy::RTCIceTransportPolicy;

use crate::config::RtcConfig;
use crate::socket::HostSockets;

impl RtcConfig {
    /// Whether host candidates are gathered on our own sockets ([`HostSockets`]):
    /// loopback only, and only without a STUN server (the library's mux hook
    /// gathers no server-reflexive candidates) or a relay-only policy.
    pub(crate) fn wants_host_sockets(&self) -> bool {
        self.loopback_only
            && !self.relay_only
            && !self.ice_servers.iter().flat_map(|s| &s.urls).any(|u| {
                let u = u.trim_start().to_ascii_lowercase();
                u.starts_with("stun:") || u.starts_with("stuns:")
            })
    }

    pub(crate) fn setting_engine(
        &self,
        send_limit: usize,
        host_sockets: Option<&Arc<HostSockets>>,
    ) -> SettingEngine {
        let mut se = SettingEngine::default();
        // Detached channels let us read messages up to 1 MiB; the callback API
        // reads into a 64 KiB buffer and closes the channel on anything larger.
        se.detach_data_channels();
        se.set_sctp_max_message_size_can_send(SctpMaxMessageSize::Bounded(
            u32::try_from(send_limit).unwrap_or(u32::MAX),
        ));
        if self.loopback_only {
            // An IP filter alone yields no candidates: loopback must be included explicitly.
            se.set_include_loopback_candidate(true);
            se.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
            se.set_network_types(vec![NetworkType::Udp4]);
            // When a check from the peer arrives before its trickled candidate, the
            // pair is peer-reflexive and the library waits 1 s before accepting it;
            // on loopback that pair is the right one, so accept at once.
            se.set_prflx_acceptance_min_wait(Some(Duration::ZERO));
        }
        if self.loopback_only || !self.host_ips.is_empty() {
            let loopback_only = self.loopback_only;
            let allowed = self.host_ips.clone();
            se.set_ip_filter(Box::new(move |ip: IpAddr| {
                (!loopback_only || ip == IpAddr::V4(Ipv4Addr::LOCALHOST))
                    && (allowed.is_empty() || allowed.contains(&ip))
            }));
        }
        if let Some(sockets) = host_sockets {
            se.set_udp_network(UDPNetwork::Muxed(Arc::clone(sockets) as _));
        }
        se
    }

    pub(crate) fn rtc_configuration(&self) -> RTCConfiguration {
        RTCConfiguration {
            ice_servers: self
                .ice_servers
                .iter()
                .map(|s| RTCIceServer {
                    urls: s.urls.clone(),
                    username: s.username.clone(),
                    credential: s.credential.clone(),
                })
                .collect(),
            ice_transport_policy: if self.relay_only {
                RTCIceTransportPolicy::Relay
            } else {
                RTCIceTransportPolicy::All
            },
            ..Default::default()
        }
    }

    /// The library's API object for one peer connection. When
    /// [`RtcConfig::wants_host_sockets`], it carries that peer's own
    /// [`HostSockets`]; the ICE agent keeps them and releases them when it closes.
    pub(crate) fn api(&self, send_limit: usize) -> webrtc::api::API {
        let host_sockets = self
            .wants_host_sockets()
            .then(|| Arc::new(HostSockets::default()));
        APIBuilder::new()
            .with_setting_engine(self.setting_engine(send_limit, host_sockets.as_ref()))
            .build()
    }
}
