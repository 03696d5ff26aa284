//! Codec micro-benchmarks: decode and encode of a 1 KB PUBLISH (QoS 0 and 1), of CONNECT, and
//! of 64 PUBLISH packets read from one buffer (what one socket read typically carries); and
//! of a 1 KB MQTT 5 PUBLISH with the properties a typical client sends (expiry, content type,
//! a user property), whole and as a forwarded header with a subscription identifier.
//!
//! Decoding consumes its input, so each decode gets a fresh copy made outside the timed
//! section (`iter_batched`); encoding reuses one cleared buffer, as the broker does.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use supermq::codec::{
    decode, encode, encode_publish_header, Connect, DecodeLimits, Packet, Properties,
    PropertyValues, ProtocolLevel, Publish, PublishHeader, QoS,
};

/// The level every packet here is read and written at.
const LEVEL: ProtocolLevel = ProtocolLevel::V311;

const PAYLOAD: usize = 1024;
const BATCH: usize = 64;

fn publish(qos: QoS) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: "site/17/dev/42/temp".into(),
        pkid: if qos == QoS::AtMostOnce { 0 } else { 7 },
        payload: Bytes::from(vec![0xA5; PAYLOAD]),
        properties: Properties::new(),
    })
}

/// A QoS 1 PUBLISH as an MQTT 5 client typically sends it.
fn publish_v5() -> Publish {
    Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "site/17/dev/42/temp".into(),
        pkid: 7,
        payload: Bytes::from(vec![0xA5; PAYLOAD]),
        properties: Properties::from(PropertyValues {
            message_expiry_interval: Some(3600),
            content_type: Some("application/json".into()),
            user_properties: vec![("trace".into(), "4bf92f3577b34da6".into())],
            ..PropertyValues::default()
        }),
    }
}

fn bench_v5(c: &mut Criterion) {
    const V5: ProtocolLevel = ProtocolLevel::V5;
    let limits = DecodeLimits::default();
    let mut g = c.benchmark_group("v5");
    let p = publish_v5();
    let packet = Packet::Publish(p.clone());
    let mut bytes = BytesMut::new();
    encode(&packet, V5, &mut bytes);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("decode_publish_1k_qos1_props", |b| {
        b.iter_batched(
            || bytes.clone(),
            |mut buf| decode(&mut buf, &limits, V5),
            BatchSize::SmallInput,
        )
    });
    let mut out = BytesMut::with_capacity(4096);
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_publish_1k_qos1_props", |b| {
        b.iter(|| {
            out.clear();
            encode(&packet, V5, &mut out);
        })
    });
    let ids = [42];
    let header = PublishHeader {
        message_expiry: Some(3599),
        subscription_ids: &ids,
        ..p.header()
    };
    g.bench_function("publish_1k_qos1_props_header_plus_payload", |b| {
        b.iter(|| {
            out.clear();
            encode_publish_header(&header, V5, &mut out);
            out.extend_from_slice(&p.payload);
        })
    });
    g.finish();
}

fn connect() -> Packet {
    Packet::from(Connect {
        level: LEVEL,
        clean_session: true,
        keep_alive: 60,
        client_id: "sensor-000123-gateway-eu".into(),
        will: None,
        username: Some("device".into()),
        password: Some(Bytes::from_static(b"correct horse battery staple")),
        properties: Properties::new(),
    })
}

fn wire(packets: &[Packet]) -> BytesMut {
    let mut b = BytesMut::new();
    for p in packets {
        encode(p, LEVEL, &mut b);
    }
    b
}

fn bench_decode(c: &mut Criterion) {
    let limits = DecodeLimits::default();
    let mut g = c.benchmark_group("decode");
    for (name, packet) in [
        ("publish_1k_qos0", publish(QoS::AtMostOnce)),
        ("publish_1k_qos1", publish(QoS::AtLeastOnce)),
        ("connect", connect()),
    ] {
        let bytes = wire(std::slice::from_ref(&packet));
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(name, |b| {
            b.iter_batched(
                || bytes.clone(),
                |mut buf| decode(&mut buf, &limits, LEVEL),
                BatchSize::SmallInput,
            )
        });
    }
    let batch = wire(&vec![publish(QoS::AtLeastOnce); BATCH]);
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("publish_1k_qos1_x64_one_buffer", |b| {
        b.iter_batched(
            || batch.clone(),
            |mut buf| {
                let mut n = 0;
                while let Ok(Some(p)) = decode(&mut buf, &limits, LEVEL) {
                    n += usize::from(matches!(p, Packet::Publish(_)));
                }
                assert_eq!(n, BATCH);
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn bench_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    for (name, packet) in [
        ("publish_1k_qos0", publish(QoS::AtMostOnce)),
        ("publish_1k_qos1", publish(QoS::AtLeastOnce)),
        ("connect", connect()),
    ] {
        let mut out = BytesMut::with_capacity(4096);
        g.throughput(Throughput::Elements(1));
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                encode(&packet, LEVEL, &mut out);
            })
        });
    }
    // The broker's forwarding path: header through the codec, shared payload appended.
    let payload = Bytes::from(vec![0xA5; PAYLOAD]);
    let mut out = BytesMut::with_capacity(4096);
    let header = PublishHeader {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "site/17/dev/42/temp",
        pkid: 7,
        payload_len: payload.len(),
        properties: supermq::codec::Properties::none(),
        message_expiry: None,
        topic_alias: None,
        subscription_ids: &[],
    };
    g.bench_function("publish_1k_qos1_header_plus_payload", |b| {
        b.iter(|| {
            out.clear();
            encode_publish_header(&header, LEVEL, &mut out);
            out.extend_from_slice(&payload);
        })
    });
    let batch = vec![publish(QoS::AtLeastOnce); BATCH];
    let mut out = BytesMut::with_capacity(BATCH * (PAYLOAD + 64));
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("publish_1k_qos1_x64_one_buffer", |b| {
        b.iter(|| {
            out.clear();
            for p in &batch {
                encode(p, LEVEL, &mut out);
            }
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_decode, bench_encode, bench_v5
}
criterion_main!(benches);
