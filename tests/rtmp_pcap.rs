//! The capture of ffmpeg 5.1 publishing H.264 High (3 B-frames) + AAC
//! (the fixture `rtmp/ffmpeg_x264_high_bf3_aac.pcap`, docs/testing.md), client to
//! server bytes replayed into `ServerSession` in random splits: the events
//! are the same every time, and what the capture holds.

use std::collections::BTreeMap;
use std::time::Instant;

use rts::rtmp::session::{Config, MediaKind, ServerEvent, ServerSession};

/// The client-to-server TCP payload of the first connection to `port`, in
/// sequence order. Classic pcap, Ethernet or Linux cooked link types, IPv4.
fn client_to_server(pcap: &[u8], port: u16) -> Vec<u8> {
    let le = match pcap.get(..4) {
        Some([0xd4, 0xc3, 0xb2, 0xa1]) | Some([0x4d, 0x3c, 0xb2, 0xa1]) => true,
        Some([0xa1, 0xb2, 0xc3, 0xd4]) | Some([0xa1, 0xb2, 0x3c, 0x4d]) => false,
        _ => panic!("not a classic pcap file"),
    };
    let u32_at = |b: &[u8], at: usize| {
        let a: [u8; 4] = b[at..at + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let be16 = |b: &[u8], at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
    let be32 = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap());
    let link = u32_at(pcap, 20);
    let mut segments: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut isn = None;
    let mut client_port = None;
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let incl = u32_at(pcap, at + 8) as usize;
        let pkt = &pcap[at + 16..at + 16 + incl];
        at += 16 + incl;
        let (ethertype, ip) = match link {
            1 => (be16(pkt, 12), &pkt[14..]),
            113 => (be16(pkt, 14), &pkt[16..]),
            _ => (0x0800, pkt),
        };
        if ethertype != 0x0800 || ip[0] >> 4 != 4 || ip[9] != 6 {
            continue;
        }
        let ihl = usize::from(ip[0] & 15) * 4;
        let total = usize::from(be16(ip, 2));
        let tcp = &ip[ihl..total];
        let (sport, dport) = (be16(tcp, 0), be16(tcp, 2));
        if dport != port || client_port.is_some_and(|p| p != sport) {
            continue;
        }
        client_port = Some(sport);
        let seq = be32(tcp, 4);
        if tcp[13] & 0x02 != 0 {
            isn = Some(seq.wrapping_add(1));
        }
        let payload = &tcp[usize::from(tcp[12] >> 4) * 4..];
        if !payload.is_empty() {
            segments.entry(seq).or_insert_with(|| payload.to_vec());
        }
    }
    let isn = isn.expect("the capture has the SYN");
    let mut ordered: Vec<(u32, Vec<u8>)> = segments
        .into_iter()
        .map(|(seq, p)| (seq.wrapping_sub(isn), p))
        .collect();
    ordered.sort_by_key(|(off, _)| *off);
    let mut out = Vec::new();
    for (off, p) in ordered {
        let off = off as usize;
        if off + p.len() <= out.len() {
            continue; // retransmission
        }
        assert!(off <= out.len(), "gap in the capture at {off}");
        out.extend_from_slice(&p[out.len() - off..]);
    }
    out
}

/// Replays `bytes` split at the given sizes; accepts connect and publish.
fn replay(bytes: &[u8], splits: &mut impl FnMut() -> usize) -> Vec<ServerEvent> {
    let mut s = ServerSession::new(Config::default(), &[9; 1528]);
    let now = Instant::now();
    let mut events = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = splits().clamp(1, rest.len());
        s.handle_input(now, &rest[..n]);
        rest = &rest[n..];
        while s.poll_transmit().is_some() {}
        while let Some(e) = s.poll_event() {
            match &e {
                ServerEvent::ConnectRequested { .. } => s.accept_connect().unwrap(),
                ServerEvent::PublishRequested { stream_id, .. } => {
                    s.accept_publish(*stream_id).unwrap()
                }
                _ => {}
            }
            events.push(e);
        }
    }
    events
}

#[test]
fn pcap_replay_gives_the_same_events_in_any_split() {
    let Some(path) = rts_testkit::fixture("rtmp/ffmpeg_x264_high_bf3_aac.pcap") else {
        return;
    };
    let bytes = client_to_server(&std::fs::read(path).unwrap(), 1935);
    assert_eq!(bytes.len(), 677_558, "reassembled client bytes");
    let reference = replay(&bytes, &mut || usize::MAX);

    // What rtmp_pcap_summary.py reports for this capture.
    let count = |kind| {
        reference
            .iter()
            .filter(|e| matches!(e, ServerEvent::Media { kind: k, .. } if *k == kind))
            .count()
    };
    assert_eq!(
        (count(MediaKind::Video), count(MediaKind::Audio)),
        (92, 143)
    );
    assert!(
        matches!(&reference[0], ServerEvent::ConnectRequested { app, tc_url: Some(t), .. }
        if app == "live" && t == "rtmp://127.0.0.1:1935/live")
    );
    assert!(
        matches!(&reference[1], ServerEvent::PublishRequested { stream_id: 1, stream, query, .. }
        if stream == "test" && query.is_empty())
    );
    assert!(
        matches!(&reference[2], ServerEvent::Metadata { metadata, .. }
        if metadata.get("width").and_then(|v| v.as_f64()) == Some(1280.0))
    );
    assert!(
        matches!(reference.last(), Some(ServerEvent::Unpublished { stream, .. }) if stream == "test")
    );
    // Composition times survive: the second video message is a frame with
    // cts 67 (bytes 2..5 of the AVC video tag body).
    let video: Vec<_> = reference
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Media {
                kind: MediaKind::Video,
                payload,
                timestamp,
                ..
            } => Some((*timestamp, payload.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(video[1].1[2..5], [0, 0, 67]);
    assert_eq!(video[2].0, 34);

    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rng = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..12 {
        let max = [1usize, 7, 100, 1500, 4096, 70_000][round % 6];
        let mut r = rng;
        let got = replay(&bytes, &mut || (r() as usize % max) + 1);
        rng = r;
        assert_eq!(got, reference, "round {round}, splits up to {max} bytes");
    }
}
