//! FLV demux throughput on a fixture-sized file, and AMF0 decode/encode
//! side by side with the `rml_amf0` crate (what rml_rtmp uses) on the same
//! bytes.
//!
//! `cargo bench -p rts-flv --bench demux`

use std::hint::black_box;
use std::io::Cursor;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rts_flv::amf0::{self, Value};
use rts_flv::{AudioTagHeader, Demuxer, Header, Muxer, Tag, TagType, VideoTagHeader};

/// The High-profile fixture if present, else a synthetic file of the same
/// shape (3 s, 30 fps video at ~2.5 Mbit/s, 43 AAC frames per second).
fn input() -> Bytes {
    let path = rts_testkit::fixtures_dir().join("media/high_bpyramid_aaclc44k.flv");
    if let Ok(data) = std::fs::read(&path) {
        return data.into();
    }
    eprintln!("{} missing: using a synthetic file", path.display());
    let mut out = BytesMut::new();
    let mut mux = Muxer::new(Header::new(true, true));
    for i in 0..90u32 {
        let mut body = vec![if i % 30 == 0 { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        body.resize(10_000, 0x55);
        mux.encode(&Tag::new(TagType::Video, i * 33, body.into()), &mut out)
            .unwrap();
        for k in 0..2 {
            let mut a = vec![0xaf, 1];
            a.resize(300, 0x11);
            mux.encode(
                &Tag::new(TagType::Audio, i * 33 + k * 16, a.into()),
                &mut out,
            )
            .unwrap();
        }
    }
    out.freeze()
}

fn demux_all(data: &mut BytesMut) -> usize {
    let mut d = Demuxer::new();
    let mut n = 0;
    while let Some(t) = d.decode(data).unwrap() {
        n += match t.tag_type {
            TagType::Video => VideoTagHeader::parse(&t.data).unwrap().1.len(),
            TagType::Audio => AudioTagHeader::parse(&t.data).unwrap().1.len(),
            _ => t.data.len(),
        };
    }
    n
}

fn bench_demux(c: &mut Criterion) {
    let data = input();
    let mut g = c.benchmark_group("flv_demux");
    g.measurement_time(Duration::from_secs(2));
    g.warm_up_time(Duration::from_millis(500));
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("whole_file_with_tag_headers", |b| {
        b.iter_batched(
            || BytesMut::from(&data[..]),
            |mut buf| black_box(demux_all(&mut buf)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("split_4096_with_tag_headers", |b| {
        b.iter(|| {
            let mut d = Demuxer::new();
            let mut buf = BytesMut::with_capacity(8192);
            let mut n = 0usize;
            for chunk in data.chunks(4096) {
                buf.extend_from_slice(chunk);
                while let Some(t) = d.decode(&mut buf).unwrap() {
                    n += t.data.len();
                }
            }
            black_box(n)
        })
    });
    g.finish();
}

fn metadata_body(data: &Bytes) -> Bytes {
    let mut buf = BytesMut::from(&data[..]);
    let mut d = Demuxer::new();
    while let Some(t) = d.decode(&mut buf).unwrap() {
        if t.tag_type == TagType::Script {
            return t.data;
        }
    }
    unreachable!("the input has an onMetaData tag")
}

fn connect_command() -> Bytes {
    let mut b = BytesMut::new();
    amf0::encode_all(
        &[
            Value::from("connect"),
            Value::from(1.0),
            Value::object([
                ("app", Value::from("live")),
                ("type", Value::from("nonprivate")),
                (
                    "flashVer",
                    Value::from("FMLE/3.0 (compatible; Lavf59.27.100)"),
                ),
                ("tcUrl", Value::from("rtmp://127.0.0.1:1935/live")),
                ("fpad", Value::from(false)),
                ("capabilities", Value::from(15.0)),
                ("audioCodecs", Value::from(4071.0)),
                ("videoCodecs", Value::from(252.0)),
                ("videoFunction", Value::from(1.0)),
            ]),
        ],
        &mut b,
    );
    b.freeze()
}

fn bench_amf0(c: &mut Criterion) {
    let data = input();
    for (name, bytes) in [
        ("onmetadata", metadata_body(&data)),
        ("connect", connect_command()),
    ] {
        let mut g = c.benchmark_group(format!("amf0_{name}"));
        g.measurement_time(Duration::from_secs(1));
        g.warm_up_time(Duration::from_millis(300));
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function("rts_flv_decode", |b| {
            b.iter(|| black_box(amf0::decode_all(black_box(&bytes)).unwrap()))
        });
        g.bench_function("rml_amf0_decode", |b| {
            b.iter(|| {
                black_box(rml_amf0::deserialize(&mut Cursor::new(black_box(&bytes[..]))).unwrap())
            })
        });
        let ours = amf0::decode_all(&bytes).unwrap();
        let theirs = rml_amf0::deserialize(&mut Cursor::new(&bytes[..])).unwrap();
        g.bench_function("rts_flv_encode", |b| {
            b.iter(|| {
                let mut out = BytesMut::with_capacity(bytes.len());
                amf0::encode_all(black_box(&ours), &mut out);
                black_box(out)
            })
        });
        g.bench_function("rml_amf0_encode", |b| {
            b.iter(|| black_box(rml_amf0::serialize(black_box(&theirs)).unwrap()))
        });
        g.finish();
    }
}

criterion_group!(benches, bench_demux, bench_amf0);
criterion_main!(benches);
