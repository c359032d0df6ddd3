//! One server-side WebRTC peer: answers an offer, then runs ICE-lite
//! (RFC 8445 2.5), DTLS 1.2 (RFC 6347, RFC 5763/8842 roles), DTLS-SRTP
//! (RFC 5764, RFC 7714) and RTCP feedback (RFC 4585, RFC 5104) over the
//! webrtc-rs sans-IO stack.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::dtls::cipher_suite::CipherSuiteId;
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::interceptor::NackGeneratorBuilder;
use rtc::interceptor::ReceiverReportBuilder;
use rtc::interceptor::{Interceptor, Packet as IPacket, Registry, Slot, StreamInfo, TaggedPacket};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::configure_twcc;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_RTX, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate,
};
use rtc::rtcp::goodbye::Goodbye;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{
    RTCRtpReceiverId, RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use rts_rtp::history::{self as rtp_history, SendHistory};

use crate::demux::{self, Class, StunView};
use crate::error::Error;
use crate::handshake::{self, FlightGuard, Nomination};
use crate::sdp::{self, Codec, Direction, MediaKind};
use crate::sync::{self, SenderClock, WallClock};
/// A received RTP packet (the `rtc-rtp` type).
pub use rtc::rtp::Packet as RtpPacket;

/// A retransmission is sent a second time this much later.
const RESEND_AGAIN_AFTER: Duration = Duration::from_millis(4);
/// Second copies waiting at most (a NACK storm is bounded).
const MAX_RESEND_LATER: usize = 512;

/// A DTLS certificate (ECDSA P-256, RFC 8827 6.5) shared by the peers of a
/// server; its SHA-256 fingerprint goes in every answer (RFC 8122 5).
#[derive(Clone, Debug)]
pub struct Certificate(RTCCertificate);

impl Certificate {
    /// Generates a self-signed ECDSA P-256 certificate.
    pub fn generate() -> Result<Self, Error> {
        let provider = rtc::crypto::default_provider().map_err(Error::stack)?;
        let cert = RTCCertificate::generate(
            provider.crypto(),
            rtc::crypto::SignatureScheme::EcdsaP256Sha256,
            CertificateParams::new(vec!["rts".to_owned()]).map_err(Error::stack)?,
        )
        .map_err(Error::stack)?;
        Ok(Self(cert))
    }

    /// Loads a certificate saved with [`Certificate::to_pem`].
    pub fn from_pem(pem: &str) -> Result<Self, Error> {
        let provider = rtc::crypto::default_provider().map_err(Error::stack)?;
        RTCCertificate::from_pem(pem, provider.crypto())
            .map(Self)
            .map_err(Error::stack)
    }

    /// The certificate and its private key in PEM.
    pub fn to_pem(&self) -> Result<String, Error> {
        self.0.serialize_pem().map_err(Error::stack)
    }
}

/// What the remote side does in this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The remote plays (WHEP): we send audio and video, it receives.
    Viewer,
    /// The remote publishes (WHIP): it sends, we receive.
    Publisher,
}

/// Settings for one peer.
#[derive(Clone, Debug)]
pub struct Config {
    /// The address of the UDP socket the peer's packets go through.
    pub local_addr: SocketAddr,
    /// Host candidates to put in the answer (usually `[local_addr]`).
    pub candidates: Vec<SocketAddr>,
    /// The DTLS certificate.
    pub certificate: Certificate,
    /// Our ICE username fragment (random, at least 4 characters, RFC 8839
    /// 5.4). The demultiplexer routes a new remote address by it
    /// ([`Peer::ice_ufrag`]). Empty (with `ice_pwd` empty): the stack
    /// generates random credentials, and new ones at each ICE restart
    /// ([`Peer::restart_ice`]); with fixed credentials a restart keeps ours
    /// (the stack re-installs the configured ones, see
    /// docs/decisions/webrtc-ice-restart.md).
    pub ice_ufrag: String,
    /// Our ICE password (random, at least 22 characters, or empty).
    pub ice_pwd: String,
    /// SSRC for the video we send (viewers only).
    pub video_ssrc: u32,
    /// SSRC for the audio we send (viewers only).
    pub audio_ssrc: u32,
    /// A peer that sent nothing for this long is disconnected. STUN checks
    /// and RTCP count: FFmpeg's WHIP client does not answer consent
    /// freshness (RFC 7675), so liveness comes from what the peer sends.
    pub idle_timeout: Duration,
    /// Interval of [`Event::Stats`].
    pub stats_interval: Duration,
    /// ICE-TCP passive host candidates (RFC 6544) to put in the answer:
    /// the address of a TCP listener whose connections carry RFC 4571
    /// framed datagrams ([`Peer::handle_receive_on`] with
    /// [`Transport::Tcp`]). Empty: UDP only.
    pub tcp_candidates: Vec<SocketAddr>,
}

/// How a datagram travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Transport {
    /// A UDP datagram.
    #[default]
    Udp,
    /// An RFC 4571 frame on an ICE-TCP connection (RFC 6544).
    Tcp,
}

/// A datagram to send.
#[derive(Debug, Clone)]
pub struct Transmit {
    /// Where to.
    pub destination: SocketAddr,
    /// The bytes (STUN, DTLS, SRTP or SRTCP).
    pub contents: BytesMut,
    /// Over UDP, or framed on the ICE-TCP connection from `destination`.
    pub transport: Transport,
}

/// ICE credentials (RFC 8839 5.4): what an ICE restart exchanges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCredentials {
    /// `ice-ufrag`.
    pub ufrag: String,
    /// `ice-pwd`.
    pub pwd: String,
}

fn transport_of(t: &TransportContext) -> Transport {
    match t.transport_protocol {
        TransportProtocol::TCP => Transport::Tcp,
        _ => Transport::Udp,
    }
}

/// Our credentials as the current local description carries them.
fn local_credentials(pc: &RTCPeerConnection) -> Option<IceCredentials> {
    let sdp = pc.local_description()?.sdp;
    let (ufrag, pwd) = sdp::ice_credentials(&sdp)?;
    Some(IceCredentials { ufrag, pwd })
}

fn check_remote_credentials(ufrag: &str, pwd: &str) -> Result<(), Error> {
    if !sdp::is_ice_credential(ufrag, 4) || !sdp::is_ice_credential(pwd, 22) {
        return Err(Error::Usage(
            "ICE credentials: ufrag 4..256 and pwd 22..256 ice-chars (RFC 8839 5.4)",
        ));
    }
    Ok(())
}

/// Which keyframe request arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyframeRequest {
    /// Picture Loss Indication (RFC 4585 6.3.1).
    Pli,
    /// Full Intra Request (RFC 5104 4.3.1).
    Fir,
}

/// Counters of one peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams received from the peer.
    pub datagrams_received: u64,
    /// Bytes received from the peer.
    pub bytes_received: u64,
    /// Datagrams sent to the peer.
    pub datagrams_sent: u64,
    /// Bytes sent to the peer.
    pub bytes_sent: u64,
    /// RTP packets handed to [`Peer::send_rtp`].
    pub rtp_sent: u64,
    /// RTP packets received (publishers).
    pub rtp_received: u64,
    /// PLI and FIR received.
    pub keyframe_requests: u64,
    /// NACK packets received.
    pub nacks_received: u64,
    /// RTCP BYE packets received (the remote ended its streams).
    pub byes_received: u64,
}

/// The [`Event::Disconnected`] reason when every source we receive sent
/// an RTCP BYE: the remote ended the session (a WHEP server whose stream
/// ended, a WHIP publisher that stopped), not a failure.
pub const ENDED_BY_REMOTE: &str = "the remote ended its streams (RTCP BYE)";

/// What a peer reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// ICE and DTLS are up; media can flow.
    Connected,
    /// The session is over (failed, closed, or silent for the idle timeout).
    Disconnected {
        /// Why.
        reason: &'static str,
    },
    /// The remote asked for a keyframe.
    KeyframeRequested(KeyframeRequest),
    /// An RTP packet arrived (publishers).
    Rtp {
        /// Audio or video.
        kind: MediaKind,
        /// The negotiated codec of its payload type.
        codec: Codec,
        /// The packet, decrypted.
        packet: RtpPacket,
    },
    /// Periodic counters.
    Stats(Stats),
    /// An RTCP sender report of one of the remote's sources: its RTP time
    /// `rtp_time` is wall-clock `ntp_time` (RFC 3550 6.4.1). Tracks whose
    /// reports share a clock are aligned by mapping each packet's RTP time
    /// through its track's latest report.
    SenderReport {
        /// The reporting source.
        ssrc: u32,
        /// NTP timestamp, 32.32 fixed point.
        ntp_time: u64,
        /// The RTP time of that instant.
        rtp_time: u32,
    },
}

#[derive(Default)]
struct Feedback {
    requests: VecDeque<KeyframeRequest>,
    nacks: u64,
    byes: u64,
    /// The sources named in received BYEs.
    bye_sources: Vec<u32>,
    nack_list: VecDeque<TransportLayerNack>,
    /// Sender reports received: (ssrc, NTP, RTP).
    sender_reports: VecDeque<(u32, u64, u32)>,
    /// RTCP came in decrypted: the remote holds the session's keys.
    rtcp_seen: bool,
}

/// Surfaces PLI and FIR, which the stack's terminus would otherwise drop:
/// everything passes through; keyframe requests are recorded on the side.
struct FeedbackTap {
    shared: Arc<Mutex<Feedback>>,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for FeedbackTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let IPacket::Rtcp(packets) = &msg.message.packet
            && let Ok(mut f) = self.shared.lock()
        {
            f.rtcp_seen = true;
            for p in packets {
                let any = p.as_any();
                if any.is::<PictureLossIndication>() {
                    f.requests.push_back(KeyframeRequest::Pli);
                } else if any.is::<FullIntraRequest>() {
                    f.requests.push_back(KeyframeRequest::Fir);
                } else if let Some(n) = any.downcast_ref::<TransportLayerNack>() {
                    f.nacks = f.nacks.saturating_add(1);
                    f.nack_list.push_back(n.clone());
                } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
                    f.sender_reports
                        .push_back((sr.ssrc, sr.ntp_time, sr.rtp_time));
                } else if let Some(b) = any.downcast_ref::<Goodbye>() {
                    f.byes = f.byes.saturating_add(1);
                    for src in &b.sources {
                        if f.bye_sources.len() < 16 && !f.bye_sources.contains(src) {
                            f.bye_sources.push(*src);
                        }
                    }
                }
            }
            // Bounded: a flood of PLIs needs one keyframe, not thousands.
            while f.requests.len() > 16 {
                f.requests.pop_front();
            }
            while f.nack_list.len() > 64 {
                f.nack_list.pop_front();
            }
            while f.sender_reports.len() > 16 {
                f.sender_reports.pop_front();
            }
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for FeedbackTap {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

const VIDEO_FEEDBACK: [(&str, &str); 4] = [
    ("nack", ""),
    ("nack", "pli"),
    ("ccm", "fir"),
    ("transport-cc", ""),
];

/// Our codecs. `receives`: this side receives media, so it offers
/// transport-cc (its feedback drives the sender's bandwidth estimate, e.g.
/// a browser publishing over WHIP). A side that only sends, as the server
/// does to viewers, leaves it out: nothing here adapts to it, and each
/// viewer would otherwise send feedback every few tens of milliseconds.
fn media_engine(receives: bool) -> Result<MediaEngine, Error> {
    let mut me = MediaEngine::default();
    let fb: Vec<RTCPFeedback> = VIDEO_FEEDBACK
        .iter()
        .filter(|(t, _)| receives || *t != "transport-cc")
        .map(|(t, p)| RTCPFeedback {
            typ: (*t).to_owned(),
            parameter: (*p).to_owned(),
        })
        .collect();
    // Two profile-level-ids for one constrained-baseline stream: the stack
    // matches profile_idc and constraint flags exactly (42e0 / 4200), and
    // browsers offer both. A receiving side also takes Main and High (OBS
    // and FFmpeg publish High without B-frames): the hub carries any
    // profile, and the conversion decides what viewers get.
    let mut profiles = vec![(102u8, 103u8, "42e01f"), (104, 105, "42001f")];
    if receives {
        profiles.extend([
            (106, 107, "4d001f"),
            (108, 109, "64001f"),
            (110, 112, "640c1f"),
        ]);
    }
    for (pt, rtx, plid) in profiles {
        me.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_H264.to_owned(),
                    clock_rate: 90000,
                    channels: 0,
                    sdp_fmtp_line: format!(
                        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={plid}"
                    ),
                    rtcp_feedback: fb.clone(),
                },
                payload_type: pt,
            },
            RtpCodecKind::Video,
        )
        .map_err(Error::stack)?;
        me.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_RTX.to_owned(),
                    clock_rate: 90000,
                    channels: 0,
                    sdp_fmtp_line: format!("apt={pt}"),
                    rtcp_feedback: vec![],
                },
                payload_type: rtx,
            },
            RtpCodecKind::Video,
        )
        .map_err(Error::stack)?;
    }
    me.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                rtcp_feedback: vec![],
            },
            payload_type: 111,
        },
        RtpCodecKind::Audio,
    )
    .map_err(Error::stack)?;
    Ok(me)
}

/// The stack's peer connection with our codecs, interceptors and DTLS/SRTP
/// settings; ICE-lite for the answering server, full ICE for a client.
fn build_connection(
    now: Instant,
    config: &Config,
    lite: bool,
    receives: bool,
) -> Result<(RTCPeerConnection, Arc<Mutex<Feedback>>), Error> {
    let mut me = media_engine(receives)?;
    let feedback = Arc::new(Mutex::new(Feedback::default()));
    let tap = FeedbackTap {
        shared: feedback.clone(),
        read: VecDeque::new(),
        write: VecDeque::new(),
    };
    // Every interceptor is a stage each packet passes through: a side that
    // only sends needs no NACK generator, receiver reports or TWCC.
    let registry = if receives {
        let r = Registry::new()
            .with(Slot::NackGenerator, NackGeneratorBuilder::new().build())
            .with(Slot::ReceiverReport, ReceiverReportBuilder::new().build())
            .with(Slot::Custom(14_000), tap);
        configure_twcc(r, &mut me).map_err(Error::stack)?
    } else {
        // Sender reports are ours (module sync), not the stack's: its
        // builder maps RTP time to the time of sending, which differs per
        // track by each path's delay.
        Registry::new().with(Slot::Custom(14_000), tap)
    };

    let mut setting = SettingEngineBuilder::new();
    if !lite {
        // The client's checks: Ta = 50 ms (RFC 8445 14.2) instead of the
        // stack's 200 ms, 28 attempts (the same 1.4 s); the first check
        // otherwise waits a whole interval, on loopback most of the
        // time to first frame.
        setting = setting.with_ice_connection_attempts(Some(Duration::from_millis(50)), Some(28));
    }
    if !config.ice_ufrag.is_empty() || !config.ice_pwd.is_empty() {
        // Fixed credentials: the stack installs these again at an ICE
        // restart (it has no way to change them later), so a peer that
        // restarts must be built with empty ones (random per restart).
        setting = setting.with_ice_credentials(config.ice_ufrag.clone(), config.ice_pwd.clone());
    }
    let setting = setting
        .with_lite(lite)
        .with_answering_dtls_role(RTCDtlsRole::Server)
        .with_srtp_protection_profiles(vec![
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
        ])
        .with_dtls_cipher_suites(vec![
            CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_128_Gcm_Sha256,
            CipherSuiteId::Tls_Ecdhe_Ecdsa_With_ChaCha20_Poly1305_Sha256,
            CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_256_Cbc_Sha,
        ])
        .build();
    let rtc_config = RTCConfigurationBuilder::new()
        .with_certificates(vec![config.certificate.0.clone()])
        .build();
    let pc = RTCPeerConnectionBuilder::new()
        .with_configuration(rtc_config)
        .with_setting_engine(setting)
        .with_media_engine(me)
        .with_interceptor_registry(registry)
        .build(now)
        .map_err(Error::stack)?;

    Ok((pc, feedback))
}

/// Adds our audio and video tracks (H.264 and Opus, the configured SSRCs).
fn add_send_tracks(
    pc: &mut RTCPeerConnection,
    config: &Config,
    video: bool,
    audio: bool,
) -> Result<Vec<(MediaKind, RTCRtpSenderId, u32)>, Error> {
    let mut sender_ids = Vec::new();
    {
        let tracks = [
            (video, MediaKind::Video, config.video_ssrc),
            (audio, MediaKind::Audio, config.audio_ssrc),
        ];
        for (offered, kind, ssrc) in tracks {
            if !offered {
                continue;
            }
            let (rk, codec) = match kind {
                MediaKind::Video => (
                    RtpCodecKind::Video,
                    RTCRtpCodec {
                        mime_type: MIME_TYPE_H264.to_owned(),
                        clock_rate: 90000,
                        channels: 0,
                        sdp_fmtp_line:
                            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
                                .to_owned(),
                        rtcp_feedback: vec![],
                    },
                ),
                MediaKind::Audio => (
                    RtpCodecKind::Audio,
                    RTCRtpCodec {
                        mime_type: MIME_TYPE_OPUS.to_owned(),
                        clock_rate: 48000,
                        channels: 2,
                        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                        rtcp_feedback: vec![],
                    },
                ),
            };
            let name = match kind {
                MediaKind::Video => "video",
                MediaKind::Audio => "audio",
            };
            let track = MediaStreamTrack::new(
                "rts".to_owned(),
                format!("rts-{name}"),
                format!("rts-{name}"),
                rk,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec,
                    ..Default::default()
                }],
            );
            let id = pc.add_track(track).map_err(Error::stack)?;
            sender_ids.push((kind, id, ssrc));
        }
    }
    Ok(sender_ids)
}

/// Adds the configured host candidates and the end-of-candidates marker.
fn add_local_candidates(pc: &mut RTCPeerConnection, config: &Config) -> Result<(), Error> {
    for addr in &config.candidates {
        let cand = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".to_owned(),
                address: addr.ip().to_string(),
                port: addr.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()
        .map_err(Error::stack)?;
        let init = RTCIceCandidate::from(&cand)
            .to_json()
            .map_err(Error::stack)?;
        pc.add_local_candidate(init).map_err(Error::stack)?;
    }
    for addr in &config.tcp_candidates {
        let cand = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "tcp".to_owned(),
                address: addr.ip().to_string(),
                port: addr.port(),
                component: 1,
                ..Default::default()
            },
            tcp_type: rtc::ice::tcp_type::TcpType::Passive,
        }
        .new_candidate_host()
        .map_err(Error::stack)?;
        let init = RTCIceCandidate::from(&cand)
            .to_json()
            .map_err(Error::stack)?;
        pc.add_local_candidate(init).map_err(Error::stack)?;
    }
    pc.add_local_candidate(Default::default())
        .map_err(Error::stack)?;
    Ok(())
}

/// The negotiated payload type of each sender.
fn resolve_senders(
    pc: &mut RTCPeerConnection,
    sender_ids: &[(MediaKind, RTCRtpSenderId, u32)],
) -> BTreeMap<MediaKindKey, (RTCRtpSenderId, u8, u32)> {
    let mut senders = BTreeMap::new();
    for &(kind, id, ssrc) in sender_ids {
        let pt = pc.rtp_sender(id).and_then(|mut s| {
            s.get_parameters()
                .rtp_parameters
                .codecs
                .first()
                .map(|c| c.payload_type)
        });
        if let Some(pt) = pt {
            senders.insert(key(kind), (id, pt, ssrc));
        }
    }
    senders
}

fn video_history(
    senders: &BTreeMap<MediaKindKey, (RTCRtpSenderId, u8, u32)>,
) -> Option<SendHistory> {
    senders.get(&MediaKindKey::Video).map(|(_, _, ssrc)| {
        SendHistory::new(rtp_history::Config {
            ssrc: *ssrc,
            ..Default::default()
        })
    })
}

/// A WebRTC peer (sans-IO): the server side, made from an offer by
/// [`Peer::accept`] (which also returns the answer), or the client side,
/// made by [`Peer::offer`] and completed by [`Peer::accept_answer`].
/// Feed it datagrams ([`Peer::handle_receive`]) and timer expiries
/// ([`Peer::handle_timeout`]); drain [`Peer::poll_transmit`] and
/// [`Peer::poll_event`] after each call.
pub struct Peer {
    pc: RTCPeerConnection,
    role: Role,
    local_addr: SocketAddr,
    /// The ICE-TCP candidate's address, if one was offered.
    local_tcp: Option<SocketAddr>,
    ufrag: String,
    feedback: Arc<Mutex<Feedback>>,
    senders: BTreeMap<MediaKindKey, (RTCRtpSenderId, u8, u32)>,
    /// Sent video, for answering NACKs (rts-rtp's send history).
    history: Option<SendHistory>,
    receivers: Vec<RTCRtpReceiverId>,
    payload_types: BTreeMap<u8, (MediaKind, Codec)>,
    events: VecDeque<Event>,
    stats: Stats,
    /// Datagrams made by the stack, not yet taken by `poll_transmit`.
    out: VecDeque<Transmit>,
    /// Resends our DTLS flight when the stack would not (module handshake).
    guard: FlightGuard,
    /// A USE-CANDIDATE check the stack left unanswered (ICE-lite side).
    nomination: Nomination,
    /// Last proof that the remote is there and holds the session's secrets:
    /// an authenticated STUN check ([`Peer::mark_alive`]), SRTP or SRTCP
    /// that decrypted. Other datagrams do not count.
    last_alive: Instant,
    idle_timeout: Duration,
    stats_interval: Duration,
    next_stats: Instant,
    connected: bool,
    closed: bool,
    /// Remote sources that sent an RTCP BYE.
    left_sources: Vec<u32>,
    /// The latest `now` this peer was given (what a local close stamps its
    /// RTCP BYE with).
    clock: Instant,
    /// Our sending tracks' media clock, for sender reports (module sync).
    sender_clock: SenderClock,
    wall: WallClock,
    next_report: Instant,
    /// An RTP packet decrypted since the last liveness check.
    rtp_seen: bool,
    /// Second copies of retransmissions, due at their instant.
    resend_later: VecDeque<(Instant, rts_rtp::Packet)>,
    /// Client only: our senders, resolved once the answer is in.
    pending_senders: Vec<(MediaKind, RTCRtpSenderId, u32)>,
    /// Client only: the offer is out, the answer not yet applied.
    awaiting_answer: bool,
    /// Made by [`Peer::offer`].
    is_client: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum MediaKindKey {
    Audio,
    Video,
}

fn key(kind: MediaKind) -> MediaKindKey {
    match kind {
        MediaKind::Audio => MediaKindKey::Audio,
        MediaKind::Video => MediaKindKey::Video,
    }
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("role", &self.role)
            .field("ufrag", &self.ufrag)
            .field("connected", &self.connected)
            .field("closed", &self.closed)
            .finish()
    }
}

impl Peer {
    /// Answers `offer` (SDP text). Returns the peer and the answer SDP.
    ///
    /// The answer: ICE-lite with the configured host candidates,
    /// `a=setup:passive` (we are the DTLS server), the certificate's SHA-256
    /// fingerprint, rtcp-mux, BUNDLE; H.264 packetization-mode=1 constrained
    /// baseline with RTX, nack, nack pli, ccm fir and transport-cc; Opus
    /// 48000/2 with useinbandfec=1; the transport-cc header extension only.
    pub fn accept(
        now: Instant,
        offer: &str,
        role: Role,
        config: &Config,
    ) -> Result<(Self, String), Error> {
        let summary = sdp::summarize(offer)?;
        let (video, audio) = match role {
            Role::Viewer => (
                summary.has_usable(MediaKind::Video),
                summary.has_usable(MediaKind::Audio),
            ),
            Role::Publisher => (
                summary.has_receivable(MediaKind::Video),
                summary.has_receivable(MediaKind::Audio),
            ),
        };
        if !video && !audio {
            return Err(Error::NoUsableCodec(match role {
                Role::Viewer => "neither H.264 constrained baseline (packetization-mode=1) nor Opus 48000/2 offered".into(),
                Role::Publisher => "neither H.264 (packetization-mode=1) nor Opus 48000/2 offered (VP8, VP9, AV1 and HEVC are not taken)".into(),
            }));
        }
        let wanted = match role {
            Role::Viewer => [Direction::RecvOnly, Direction::SendRecv],
            Role::Publisher => [Direction::SendOnly, Direction::SendRecv],
        };
        if !summary.media.iter().any(|m| {
            let codecs = match role {
                Role::Viewer => &m.usable,
                Role::Publisher => &m.receivable,
            };
            !codecs.is_empty() && wanted.contains(&m.direction)
        }) {
            return Err(Error::Direction(match role {
                Role::Viewer => "a WHEP offer must receive (recvonly or sendrecv)".into(),
                Role::Publisher => "a WHIP offer must send (sendonly or sendrecv)".into(),
            }));
        }

        // The server sends to viewers and receives from publishers.
        let (mut pc, feedback) = build_connection(now, config, true, role == Role::Publisher)?;
        let sender_ids = if role == Role::Viewer {
            add_send_tracks(&mut pc, config, video, audio)?
        } else {
            Vec::new()
        };

        let offer_desc = RTCSessionDescription::offer(sdp::normalize_offer(offer).into_owned())
            .map_err(Error::stack)?;
        pc.set_remote_description(now, offer_desc)
            .map_err(Error::offer)?;
        add_local_candidates(&mut pc, config)?;
        let answer = pc.create_answer(None).map_err(Error::stack)?;
        pc.set_local_description(now, answer)
            .map_err(Error::stack)?;
        let answer_sdp = pc
            .local_description()
            .map(|d| d.sdp.clone())
            .ok_or(Error::Usage("the stack made no local description"))?;

        let payload_types = sdp::payload_types(&answer_sdp);
        if !payload_types
            .values()
            .any(|(_, c)| matches!(c, Codec::H264 | Codec::Opus))
        {
            return Err(Error::NoUsableCodec("no codec survived negotiation".into()));
        }
        let peer = Self::from_parts(
            now,
            pc,
            role,
            config,
            feedback,
            sender_ids,
            payload_types,
            false,
        );
        Ok((peer, answer_sdp))
    }

    #[allow(clippy::too_many_arguments)]
    fn from_parts(
        now: Instant,
        mut pc: RTCPeerConnection,
        role: Role,
        config: &Config,
        feedback: Arc<Mutex<Feedback>>,
        sender_ids: Vec<(MediaKind, RTCRtpSenderId, u32)>,
        payload_types: BTreeMap<u8, (MediaKind, Codec)>,
        awaiting_answer: bool,
    ) -> Self {
        let (senders, pending_senders) = if awaiting_answer {
            (BTreeMap::new(), sender_ids)
        } else {
            (resolve_senders(&mut pc, &sender_ids), Vec::new())
        };
        let receivers = pc.get_receivers().collect();
        let history = video_history(&senders);
        let ufrag = local_credentials(&pc)
            .map(|c| c.ufrag)
            .unwrap_or_else(|| config.ice_ufrag.clone());
        Self {
            pc,
            role,
            local_addr: config.local_addr,
            local_tcp: config.tcp_candidates.first().copied(),
            ufrag,
            feedback,
            history,
            senders,
            receivers,
            payload_types,
            events: VecDeque::new(),
            stats: Stats::default(),
            out: VecDeque::new(),
            guard: FlightGuard::new(now),
            nomination: Nomination::default(),
            last_alive: now,
            idle_timeout: config.idle_timeout,
            stats_interval: config.stats_interval,
            next_stats: now.checked_add(config.stats_interval).unwrap_or(now),
            connected: false,
            closed: false,
            clock: now,
            sender_clock: SenderClock::default(),
            wall: WallClock::new(now),
            next_report: now.checked_add(sync::INTERVAL).unwrap_or(now),
            left_sources: Vec::new(),
            rtp_seen: false,
            resend_later: VecDeque::new(),
            pending_senders,
            awaiting_answer,
            is_client: awaiting_answer,
        }
    }

    /// The client side (a WHEP player or WHIP publisher): makes an offer.
    /// Returns the peer and the offer SDP to POST; apply the server's
    /// answer with [`Peer::accept_answer`].
    ///
    /// `role` is, as for [`Peer::accept`], what the *remote* does:
    /// [`Role::Publisher`] to play (WHEP: the server sends, we receive
    /// H.264 and Opus, `recvonly`), [`Role::Viewer`] to publish (WHIP: we
    /// send H.264 and Opus with the configured SSRCs, `sendrecv` as
    /// browsers offer it). The offer: full ICE, controlling (RFC 8445 6.1.1)
    /// with the configured host candidates, `a=setup:actpass` so a passive
    /// answer makes us the DTLS client (RFC 8842 5), the certificate's
    /// SHA-256 fingerprint, rtcp-mux, BUNDLE, the same codecs and feedback
    /// as the server side. The idle timeout runs from `now`.
    ///
    /// ```no_run
    /// # use std::time::{Duration, Instant};
    /// # use rts_webrtc::{Certificate, Codec, Config, Event, MediaKind, Peer, Role};
    /// # fn post_offer(_: &str) -> String { String::new() }
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let local = socket.local_addr()?;
    /// let config = Config {
    ///     local_addr: local,
    ///     candidates: vec![local],
    ///     certificate: Certificate::generate()?,
    ///     ice_ufrag: "random-ufrag".into(),
    ///     ice_pwd: "random-password-of-24-chars".into(),
    ///     video_ssrc: 1, // used only when publishing
    ///     audio_ssrc: 2,
    ///     idle_timeout: Duration::from_secs(10),
    ///     stats_interval: Duration::from_secs(1),
    ///     tcp_candidates: Vec::new(),
    /// };
    /// // Play (WHEP): the server sends, so the remote's role is Publisher.
    /// let (mut peer, offer) = Peer::offer(Instant::now(), Role::Publisher, &config)?;
    /// let answer = post_offer(&offer); // POST application/sdp, 201 + answer
    /// peer.accept_answer(Instant::now(), &answer)?;
    /// let mut buf = [0u8; 2048];
    /// loop {
    ///     while let Some(t) = peer.poll_transmit() {
    ///         socket.send_to(&t.contents, t.destination)?;
    ///     }
    ///     while let Some(event) = peer.poll_event() {
    ///         match event {
    ///             Event::Rtp { kind: MediaKind::Video, codec: Codec::H264, packet } => {
    ///                 // depacketize (rts_rtp::h264::Depacketizer)
    ///             }
    ///             Event::Disconnected { .. } => return Ok(()),
    ///             _ => {}
    ///         }
    ///     }
    ///     socket.set_read_timeout(Some(Duration::from_millis(10)))?;
    ///     if let Ok((n, from)) = socket.recv_from(&mut buf) {
    ///         peer.handle_receive(Instant::now(), from, &buf[..n])?;
    ///     }
    ///     peer.handle_timeout(Instant::now())?;
    /// }
    /// # }
    /// ```
    pub fn offer(now: Instant, role: Role, config: &Config) -> Result<(Self, String), Error> {
        // A client plays (receives) when the remote publishes.
        let (mut pc, feedback) = build_connection(now, config, false, role == Role::Publisher)?;
        let sender_ids = match role {
            Role::Viewer => add_send_tracks(&mut pc, config, true, true)?,
            Role::Publisher => {
                for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
                    pc.add_transceiver_from_kind(
                        kind,
                        Some(RTCRtpTransceiverInit {
                            direction: RTCRtpTransceiverDirection::Recvonly,
                            streams: vec![],
                            send_encodings: vec![],
                        }),
                    )
                    .map_err(Error::stack)?;
                }
                Vec::new()
            }
        };
        let offer = pc.create_offer(None).map_err(Error::stack)?;
        pc.set_local_description(now, offer).map_err(Error::stack)?;
        add_local_candidates(&mut pc, config)?;
        let offer_sdp = pc
            .local_description()
            .map(|d| d.sdp.clone())
            .ok_or(Error::Usage("the stack made no local description"))?;
        let payload_types = sdp::payload_types(&offer_sdp);
        let peer = Self::from_parts(
            now,
            pc,
            role,
            config,
            feedback,
            sender_ids,
            payload_types,
            true,
        );
        Ok((peer, offer_sdp))
    }

    /// Applies the server's answer to our [`Peer::offer`] (client side).
    /// ICE checks to the answer's candidates start at the next
    /// [`Peer::handle_timeout`]; [`Event::Connected`] follows ICE and DTLS.
    pub fn accept_answer(&mut self, now: Instant, answer: &str) -> Result<(), Error> {
        if !self.awaiting_answer {
            return Err(Error::Usage(
                "accept_answer is for a peer made by Peer::offer, once",
            ));
        }
        if answer.len() > sdp::MAX_OFFER_LEN {
            return Err(Error::MalformedAnswer(
                "answer larger than the SDP limit".into(),
            ));
        }
        let desc = RTCSessionDescription::answer(answer.to_owned()).map_err(Error::answer)?;
        self.pc
            .set_remote_description(now, desc)
            .map_err(Error::answer)?;
        self.awaiting_answer = false;
        let payload_types = sdp::payload_types(answer);
        if !payload_types
            .values()
            .any(|(_, c)| matches!(c, Codec::H264 | Codec::Opus))
        {
            return Err(Error::MalformedAnswer(
                "neither H.264 nor Opus was accepted".into(),
            ));
        }
        self.payload_types = payload_types;
        let ids = std::mem::take(&mut self.pending_senders);
        self.senders = resolve_senders(&mut self.pc, &ids);
        self.history = video_history(&self.senders);
        self.receivers = self.pc.get_receivers().collect();
        self.pump();
        Ok(())
    }

    /// Our ICE username fragment (it changes at an ICE restart).
    pub fn ice_ufrag(&self) -> &str {
        &self.ufrag
    }

    /// Our current ICE credentials.
    pub fn ice_credentials(&self) -> Option<IceCredentials> {
        local_credentials(&self.pc)
    }

    /// Server side: restarts ICE (RFC 8445 9, RFC 8839 4.4.1.1.1) with the
    /// remote's new credentials, as a WHIP/WHEP PATCH
    /// `application/trickle-ice-sdpfrag` signals them (RFC 9725 4.3).
    ///
    /// The remote offer is applied again with the new `ice-ufrag` and
    /// `ice-pwd`; the stack discards the candidate pairs and the selected
    /// pair, connectivity checks start again, and checks with the old
    /// username are refused. DTLS and SRTP continue: media flows again as
    /// soon as a check with the new credentials selects a pair. Returns our
    /// credentials after the restart (new random ones when the peer was
    /// built with empty [`Config::ice_ufrag`]); register the new
    /// [`Peer::ice_ufrag`] with the [`crate::Router`].
    pub fn restart_ice(
        &mut self,
        now: Instant,
        remote_ufrag: &str,
        remote_pwd: &str,
    ) -> Result<IceCredentials, Error> {
        check_remote_credentials(remote_ufrag, remote_pwd)?;
        if self.closed {
            return Err(Error::Usage("the session is closed"));
        }
        if self.is_client {
            return Err(Error::Usage(
                "a client restarts with restart_ice_offer and restart_ice_answer",
            ));
        }
        let remote = self
            .pc
            .remote_description()
            .map(|d| d.sdp.clone())
            .ok_or(Error::Usage("no remote description"))?;
        let offer = sdp::with_ice_credentials(&remote, remote_ufrag, remote_pwd);
        let desc = RTCSessionDescription::offer(offer).map_err(Error::stack)?;
        self.pc
            .set_remote_description(now, desc)
            .map_err(Error::offer)?;
        let answer = self.pc.create_answer(None).map_err(Error::stack)?;
        self.pc
            .set_local_description(now, answer)
            .map_err(Error::stack)?;
        let creds = local_credentials(&self.pc)
            .ok_or(Error::Usage("the stack made no local description"))?;
        self.ufrag.clone_from(&creds.ufrag);
        self.pump();
        Ok(creds)
    }

    /// Client side: starts an ICE restart (RFC 8445 9): new local
    /// credentials (random when the peer was built with empty
    /// [`Config::ice_ufrag`]), returned for the PATCH to the server. Finish
    /// with [`Peer::restart_ice_answer`] and the server's credentials.
    pub fn restart_ice_offer(&mut self, now: Instant) -> Result<IceCredentials, Error> {
        if self.closed {
            return Err(Error::Usage("the session is closed"));
        }
        if !self.is_client || self.awaiting_answer {
            return Err(Error::Usage(
                "restart_ice_offer is for a connected client made by Peer::offer",
            ));
        }
        self.pc.restart_ice();
        let offer = self.pc.create_offer(None).map_err(Error::stack)?;
        self.pc
            .set_local_description(now, offer)
            .map_err(Error::stack)?;
        let creds = local_credentials(&self.pc)
            .ok_or(Error::Usage("the stack made no local description"))?;
        self.ufrag.clone_from(&creds.ufrag);
        self.pump();
        Ok(creds)
    }

    /// Client side: completes an ICE restart with the server's new
    /// credentials (the sdpfrag of the PATCH response); the checks with the
    /// new credentials start at the next [`Peer::handle_timeout`].
    pub fn restart_ice_answer(
        &mut self,
        now: Instant,
        remote_ufrag: &str,
        remote_pwd: &str,
    ) -> Result<(), Error> {
        check_remote_credentials(remote_ufrag, remote_pwd)?;
        if self.closed {
            return Err(Error::Usage("the session is closed"));
        }
        if !self.is_client {
            return Err(Error::Usage("restart_ice_answer is for a client"));
        }
        let remote = self
            .pc
            .remote_description()
            .map(|d| d.sdp.clone())
            .ok_or(Error::Usage("no remote description"))?;
        let answer = sdp::with_ice_credentials(&remote, remote_ufrag, remote_pwd);
        let desc = RTCSessionDescription::answer(answer).map_err(Error::stack)?;
        self.pc
            .set_remote_description(now, desc)
            .map_err(Error::answer)?;
        self.pump();
        Ok(())
    }

    /// Viewer or publisher.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether ICE and DTLS completed.
    pub fn is_connected(&self) -> bool {
        self.connected && !self.closed
    }

    /// Whether the session is over.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The negotiated payload type and our SSRC for `kind`, when we send it.
    pub fn send_params(&self, kind: MediaKind) -> Option<(u8, u32)> {
        self.senders
            .get(&key(kind))
            .map(|(_, pt, ssrc)| (*pt, *ssrc))
    }

    /// Feeds one datagram received from `from`.
    ///
    /// This does not count as a sign of life by itself: only SRTP/SRTCP
    /// that decrypts does, and STUN checks the caller authenticated
    /// ([`Peer::mark_alive`]; the [`crate::Router`] checks MESSAGE-INTEGRITY).
    pub fn handle_receive(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), Error> {
        self.handle_receive_on(now, from, Transport::Udp, datagram)
    }

    /// Like [`Peer::handle_receive`] for a datagram that came over
    /// `transport` (an ICE-TCP frame, RFC 4571, without its length).
    pub fn handle_receive_on(
        &mut self,
        now: Instant,
        from: SocketAddr,
        transport: Transport,
        datagram: &[u8],
    ) -> Result<(), Error> {
        if self.closed {
            return Ok(());
        }
        self.clock = self.clock.max(now);
        self.stats.datagrams_received = self.stats.datagrams_received.saturating_add(1);
        self.stats.bytes_received = self
            .stats
            .bytes_received
            .saturating_add(datagram.len() as u64);
        let class = demux::classify(datagram);
        if class == Class::Dtls {
            self.guard.received(now);
        }
        let first = self.out.len();
        let res = self.read(now, from, transport, datagram);
        // A handshake datagram the stack did not answer: the remote is
        // retransmitting its flight; ours must go again (RFC 6347 4.2.4).
        if class == Class::Dtls
            && handshake::is_handshake(datagram)
            && !self
                .out
                .range(first..)
                .any(|t| handshake::is_handshake(&t.contents))
        {
            let again = self.guard.unanswered(now);
            self.out.extend(again);
        }
        if class == Class::Stun
            && !self.is_client
            && let Some(view) = StunView::parse(datagram)
        {
            self.retry_nomination(now, from, transport, &view, datagram, first);
        }
        if self.take_alive() {
            self.last_alive = now;
            if class == Class::Rtp {
                self.guard.finish();
            }
        }
        self.answer_nacks(now);
        res
    }

    /// ICE-lite: keeps a USE-CANDIDATE check the stack did not answer, and
    /// hands it back after a success response from the same address (by
    /// then the stack's own check of the pair has succeeded).
    #[allow(clippy::too_many_arguments)]
    fn retry_nomination(
        &mut self,
        now: Instant,
        from: SocketAddr,
        transport: Transport,
        view: &StunView<'_>,
        datagram: &[u8],
        first: usize,
    ) {
        if view.is_binding_request() {
            let answered = handshake::answers(self.out.range(first..), from, &view.transaction_id);
            self.nomination
                .after_request(from, view, datagram, answered);
        } else if view.is_binding_success()
            && let Some(request) = self.nomination.retry(from)
        {
            let first = self.out.len();
            let _ = self.read(now, from, transport, &request);
            if let Some(v) = StunView::parse(&request) {
                let answered = handshake::answers(self.out.range(first..), from, &v.transaction_id);
                self.nomination.after_request(from, &v, &request, answered);
            }
        }
    }

    /// The stack reads one datagram; what it sends in answer is queued.
    fn read(
        &mut self,
        now: Instant,
        from: SocketAddr,
        transport: Transport,
        datagram: &[u8],
    ) -> Result<(), Error> {
        let (local_addr, transport_protocol) = match (transport, self.local_tcp) {
            (Transport::Tcp, Some(tcp)) => (tcp, TransportProtocol::TCP),
            _ => (self.local_addr, TransportProtocol::UDP),
        };
        let res = self.pc.handle_read(TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr,
                peer_addr: from,
                ecn: None,
                transport_protocol,
            },
            message: BytesMut::from(datagram),
        });
        self.pump();
        self.drain_stack(now);
        res.map_err(Error::stack)
    }

    /// Moves what the stack has to send into our queue; its DTLS handshake
    /// datagrams become the flight the guard keeps.
    fn drain_stack(&mut self, now: Instant) {
        let first = self.out.len();
        while let Some(msg) = self.pc.poll_write() {
            self.out.push_back(Transmit {
                destination: msg.transport.peer_addr,
                transport: transport_of(&msg.transport),
                contents: msg.message,
            });
        }
        if self.out.len() > first {
            self.guard.sent(now, self.out.range(first..));
        }
    }

    /// The remote proved it is there (an authenticated STUN check, as the
    /// [`crate::Router`] reports it): its idle timer starts again.
    pub fn mark_alive(&mut self, now: Instant) {
        self.last_alive = self.last_alive.max(now);
    }

    /// Whether SRTP or SRTCP from the remote decrypted since the last call.
    fn take_alive(&mut self) -> bool {
        let rtcp = self
            .feedback
            .lock()
            .map(|mut f| std::mem::take(&mut f.rtcp_seen))
            .unwrap_or(false);
        rtcp | std::mem::take(&mut self.rtp_seen)
    }

    /// Resends what NACKs (RFC 4585 6.2.1) ask for, from the send history.
    fn answer_nacks(&mut self, now: Instant) {
        let nacks: Vec<TransportLayerNack> = match self.feedback.lock() {
            Ok(mut f) => f.nack_list.drain(..).collect(),
            Err(_) => return,
        };
        let Some(history) = self.history.as_mut() else {
            return;
        };
        let Some((id, _, _)) = self.senders.get(&MediaKindKey::Video).copied() else {
            return;
        };
        for nack in &nacks {
            history.on_nack(now, nack);
        }
        while let Some(p) = history.poll_transmit() {
            if let Some(mut sender) = self.pc.rtp_sender(id) {
                let _ = sender.write_rtp(now, p.to_rtc());
            }
            // A retransmission lost too costs the receiver a whole NACK
            // round (libwebrtc waits its RTT estimate, 100 ms when it has
            // none, as a receive-only peer does): send a second copy a
            // little later. Free without loss: nothing is NACKed then.
            if self.resend_later.len() < MAX_RESEND_LATER {
                let at = now.checked_add(RESEND_AGAIN_AFTER).unwrap_or(now);
                self.resend_later.push_back((at, p));
            }
        }
    }

    /// Sends the second copies of retransmissions that are due.
    fn resend_due(&mut self, now: Instant) {
        let Some((id, _, _)) = self.senders.get(&MediaKindKey::Video).copied() else {
            self.resend_later.clear();
            return;
        };
        while self.resend_later.front().is_some_and(|(t, _)| *t <= now) {
            let Some((_, p)) = self.resend_later.pop_front() else {
                break;
            };
            if let Some(mut sender) = self.pc.rtp_sender(id) {
                let _ = sender.write_rtp(now, p.to_rtc());
            }
        }
    }

    /// Tells the peer that `now` has come (call at [`Peer::poll_timeout`]).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        if self.closed {
            return Ok(());
        }
        self.clock = self.clock.max(now);
        if now.saturating_duration_since(self.last_alive) >= self.idle_timeout {
            self.close_with("no packet from the peer within the idle timeout");
            return Ok(());
        }
        if now >= self.next_stats {
            self.next_stats = now.checked_add(self.stats_interval).unwrap_or(now);
            self.events.push_back(Event::Stats(self.stats));
        }
        let again = self.guard.handle_timeout(now);
        self.out.extend(again);
        self.resend_due(now);
        if now >= self.next_report {
            self.next_report = now.checked_add(sync::INTERVAL).unwrap_or(now);
            self.send_reports(now);
        }
        let res = self.pc.handle_timeout(now);
        self.pump();
        self.drain_stack(now);
        res.map_err(Error::stack)
    }

    /// The next instant [`Peer::handle_timeout`] should be called.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let idle = self.last_alive.checked_add(self.idle_timeout);
        [
            self.pc.poll_timeout(),
            idle,
            Some(self.next_stats),
            self.guard.poll_timeout(),
            self.resend_later.front().map(|(t, _)| *t),
            (self.connected && !self.senders.is_empty()).then_some(self.next_report),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = match self.out.pop_front() {
            Some(t) => t,
            None => {
                // Media and RTCP (never part of the handshake) come
                // straight from the stack.
                let msg = self.pc.poll_write()?;
                Transmit {
                    destination: msg.transport.peer_addr,
                    transport: transport_of(&msg.transport),
                    contents: msg.message,
                }
            }
        };
        self.stats.datagrams_sent = self.stats.datagrams_sent.saturating_add(1);
        self.stats.bytes_sent = self
            .stats
            .bytes_sent
            .saturating_add(t.contents.len() as u64);
        Some(t)
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.pump();
        self.events.pop_front()
    }

    /// Sends one RTP packet of `kind` (viewers). Its payload type and SSRC
    /// are rewritten to the negotiated ones; sequence numbers and
    /// timestamps are kept, so one packetized stream serves every viewer.
    /// Packets before the peer is connected are dropped (`Ok(false)`).
    pub fn send_rtp(
        &mut self,
        now: Instant,
        kind: MediaKind,
        packet: &rts_rtp::Packet,
    ) -> Result<bool, Error> {
        self.send_rtc_rtp(now, kind, packet.to_rtc())
    }

    /// Like [`Peer::send_rtp`] for an `rtc-rtp` packet.
    pub fn send_rtc_rtp(
        &mut self,
        now: Instant,
        kind: MediaKind,
        mut packet: rtc::rtp::Packet,
    ) -> Result<bool, Error> {
        if !self.is_connected() {
            return Ok(false);
        }
        let Some((id, pt, ssrc)) = self.senders.get(&key(kind)).copied() else {
            return Err(Error::Usage("this peer does not send that kind of media"));
        };
        packet.header.payload_type = pt;
        packet.header.ssrc = ssrc;
        if kind == MediaKind::Video
            && let Some(h) = self.history.as_mut()
        {
            h.record(
                now,
                &rts_rtp::Packet {
                    marker: packet.header.marker,
                    payload_type: pt,
                    sequence_number: packet.header.sequence_number,
                    timestamp: packet.header.timestamp,
                    ssrc,
                    payload: rts_rtp::Payload::from_bytes(packet.payload.clone()),
                },
            );
        }
        let mut sender = self
            .pc
            .rtp_sender(id)
            .ok_or(Error::Usage("sender vanished"))?;
        let (ts, len) = (packet.header.timestamp, packet.payload.len());
        sender.write_rtp(now, packet).map_err(Error::stack)?;
        self.sender_clock.on_send(now, kind, ts, len);
        self.stats.rtp_sent = self.stats.rtp_sent.saturating_add(1);
        Ok(true)
    }

    /// One RTCP sender report per sending track, on the shared media
    /// clock.
    fn send_reports(&mut self, now: Instant) {
        if !self.connected {
            return;
        }
        let senders: Vec<(MediaKind, RTCRtpSenderId, u32)> = [MediaKind::Video, MediaKind::Audio]
            .into_iter()
            .filter_map(|k| {
                self.senders
                    .get(&key(k))
                    .map(|(id, _, ssrc)| (k, *id, *ssrc))
            })
            .collect();
        for (kind, id, ssrc) in senders {
            let Some(r) = self.sender_clock.report(now, kind, &self.wall) else {
                continue;
            };
            if let Some(mut sender) = self.pc.rtp_sender(id) {
                let sr = SenderReport {
                    ssrc,
                    ntp_time: r.ntp_time,
                    rtp_time: r.rtp_time,
                    packet_count: r.packet_count,
                    octet_count: r.octet_count,
                    ..Default::default()
                };
                let _ = sender.write_rtcp(now, vec![Box::new(sr)]);
            }
        }
    }

    /// Asks the publisher for a keyframe (PLI on every incoming video
    /// stream).
    pub fn request_keyframe(&mut self, now: Instant) -> Result<(), Error> {
        if !self.is_connected() {
            return Ok(());
        }
        let ids = self.receivers.clone();
        for id in ids {
            let Some(mut r) = self.pc.rtp_receiver(id) else {
                continue;
            };
            if r.track().kind() != RtpCodecKind::Video {
                continue;
            }
            let ssrcs: Vec<u32> = r.track().ssrcs().collect();
            for media_ssrc in ssrcs {
                r.write_rtcp(
                    now,
                    vec![Box::new(PictureLossIndication {
                        sender_ssrc: 0,
                        media_ssrc,
                    })],
                )
                .map_err(Error::stack)?;
            }
        }
        Ok(())
    }

    /// Ends the session (a WHIP/WHEP DELETE, a server shutdown): a
    /// connected peer is sent an RTCP BYE (RFC 3550 6.6) for each of our
    /// SSRCs and a DTLS close_notify, so it stops at once rather than at
    /// its consent timeout. Emits `Disconnected`.
    pub fn close(&mut self) {
        if self.connected && !self.closed {
            let now = self.clock;
            let senders: Vec<(RTCRtpSenderId, u32)> = self
                .senders
                .values()
                .map(|(id, _, ssrc)| (*id, *ssrc))
                .collect();
            for (id, ssrc) in senders {
                if let Some(mut sender) = self.pc.rtp_sender(id) {
                    let bye = Goodbye {
                        sources: vec![ssrc],
                        reason: bytes::Bytes::from_static(b"session closed"),
                    };
                    let _ = sender.write_rtcp(now, vec![Box::new(bye)]);
                }
            }
        }
        self.close_with("closed locally");
    }

    fn close_with(&mut self, reason: &'static str) {
        if self.closed {
            return;
        }
        self.closed = true;
        let _ = self.pc.close();
        self.events.push_back(Event::Disconnected { reason });
    }

    fn pump(&mut self) {
        while let Some(ev) = self.pc.poll_event() {
            match ev {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) => match s {
                    RTCPeerConnectionState::Connected if !self.connected => {
                        self.connected = true;
                        self.events.push_back(Event::Connected);
                    }
                    RTCPeerConnectionState::Failed => self.close_with("connection failed"),
                    RTCPeerConnectionState::Closed => self.close_with("connection closed"),
                    _ => {}
                },
                RTCPeerConnectionEvent::OnTrack(_) => {
                    self.receivers = self.pc.get_receivers().collect();
                }
                _ => {}
            }
        }
        while let Some(msg) = self.pc.poll_read() {
            if let RTCMessage::RtpPacket(_, packet) = msg.message {
                self.rtp_seen = true;
                self.stats.rtp_received = self.stats.rtp_received.saturating_add(1);
                let pt = packet.header.payload_type;
                let (kind, codec) = self
                    .payload_types
                    .get(&pt)
                    .copied()
                    .unwrap_or((MediaKind::Video, Codec::Other));
                self.events.push_back(Event::Rtp {
                    kind,
                    codec,
                    packet,
                });
            }
        }
        let mut said_bye = false;
        if let Ok(mut f) = self.feedback.lock() {
            self.stats.nacks_received = f.nacks;
            self.stats.byes_received = f.byes;
            while let Some(r) = f.requests.pop_front() {
                self.stats.keyframe_requests = self.stats.keyframe_requests.saturating_add(1);
                self.events.push_back(Event::KeyframeRequested(r));
            }
            while let Some((ssrc, ntp_time, rtp_time)) = f.sender_reports.pop_front() {
                self.events.push_back(Event::SenderReport {
                    ssrc,
                    ntp_time,
                    rtp_time,
                });
            }
            for src in std::mem::take(&mut f.bye_sources) {
                said_bye = true;
                if self.left_sources.len() < 16 && !self.left_sources.contains(&src) {
                    self.left_sources.push(src);
                }
            }
        }
        if said_bye && self.all_remote_sources_left() {
            self.close_with(ENDED_BY_REMOTE);
        }
    }

    /// Whether every source we receive has sent a BYE (RFC 3550 6.6): the
    /// remote ended the session.
    fn all_remote_sources_left(&mut self) -> bool {
        let ids = self.receivers.clone();
        let mut any = false;
        for id in ids {
            let Some(r) = self.pc.rtp_receiver(id) else {
                continue;
            };
            for ssrc in r.track().ssrcs() {
                any = true;
                if !self.left_sources.contains(&ssrc) {
                    return false;
                }
            }
        }
        any
    }
}
