//! H.264 packetization throughput: rts-rtp against webrtc-rs's
//! `rtc_rtp::codec::h264::H264Payloader` on the same access units
//! (IDR ~100 KB with SPS/PPS in-band, P ~10 KB), MTU 1200.
//!
//! `cargo bench -p rts-rtp --bench packetize`

use std::hint::black_box;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rts_rtp::ext::Extensions;
use rts_rtp::h264::{Format, Packetizer};
use rts_rtp::rtc_rtp::packetizer::Payloader;

const MTU: usize = 1200;

fn nal(header: u8, size: usize, seed: u32) -> Vec<u8> {
    // Non-zero pseudo-random bytes: no accidental start codes.
    let mut x = seed | 1;
    let mut v = vec![header];
    v.extend((1..size).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        (x as u8) | 1
    }));
    v
}

fn access_unit(nals: &[Vec<u8>]) -> (Bytes, Bytes) {
    let (mut avcc, mut annexb) = (BytesMut::new(), BytesMut::new());
    for n in nals {
        avcc.put_u32(n.len() as u32);
        avcc.put_slice(n);
        annexb.put_slice(&[0, 0, 0, 1]);
        annexb.put_slice(n);
    }
    (avcc.freeze(), annexb.freeze())
}

fn bench(c: &mut Criterion) {
    let sps = nal(0x67, 12, 1);
    let pps = nal(0x68, 4, 2);
    let cases = [
        ("idr_100k", access_unit(&[sps, pps, nal(0x65, 100_000, 3)])),
        ("p_10k", access_unit(&[nal(0x41, 10_000, 4)])),
    ];
    let mut g = c.benchmark_group("h264_packetize");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    for (name, (avcc, annexb)) in &cases {
        g.throughput(Throughput::Bytes(avcc.len() as u64));
        let mut pk = Packetizer::new(rts_rtp::h264::Config {
            mtu: MTU,
            ..Default::default()
        })
        .unwrap();
        let mut out = Vec::with_capacity(128);
        g.bench_function(format!("rts-rtp/avcc/{name}"), |b| {
            b.iter(|| {
                out.clear();
                pk.packetize(
                    black_box(avcc),
                    Format::Avcc { length_size: 4 },
                    0,
                    &mut out,
                )
                .unwrap();
                black_box(out.len())
            })
        });
        g.bench_function(format!("rts-rtp/annexb/{name}"), |b| {
            b.iter(|| {
                out.clear();
                pk.packetize(black_box(annexb), Format::AnnexB, 0, &mut out)
                    .unwrap();
                black_box(out.len())
            })
        });
        // The send path: packetize and serialise every packet (RTP header
        // included) into a caller-owned buffer.
        let mut wire = BytesMut::with_capacity(256 << 10);
        g.bench_function(format!("rts-rtp/annexb+wire/{name}"), |b| {
            b.iter(|| {
                out.clear();
                wire.clear();
                pk.packetize(black_box(annexb), Format::AnnexB, 0, &mut out)
                    .unwrap();
                for p in &out {
                    p.encode(&Extensions::new(), &mut wire);
                }
                black_box(wire.len())
            })
        });
        // The same, converted to rtc-rtp packets (contiguous payloads: the
        // FU-A header forces one copy per packet) - what zero-copy saves.
        let mut rtc = Vec::with_capacity(128);
        g.bench_function(format!("rts-rtp/annexb+to_rtc/{name}"), |b| {
            b.iter(|| {
                out.clear();
                rtc.clear();
                pk.packetize(black_box(annexb), Format::AnnexB, 0, &mut out)
                    .unwrap();
                rtc.extend(out.iter().map(|p| p.to_rtc()));
                black_box(rtc.len())
            })
        });
        // webrtc-rs: payloads only (no RTP header), MTU is the payload size.
        let mut theirs = rts_rtp::rtc_rtp::codec::h264::H264Payloader::default();
        g.bench_function(format!("webrtc-rs/H264Payloader/{name}"), |b| {
            b.iter(|| black_box(theirs.payload(MTU - 12, black_box(annexb)).unwrap().len()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
