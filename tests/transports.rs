//! Network transports end to end against real receivers: rsyslog and Redis started with the
//! shared service scripts (SENSOR_SERVICES_DIR, else ../shared/services), Unix listeners and
//! a rustls server inside the test. Every wait has a deadline.

use cloudtap::output::transport::redis::{encode_command, parse_reply, Reply};
use cloudtap::output::transport::syslog::{format_5424, machine_hostname, Params};
use cloudtap::output::transport::{self, Kind, Out, OutMeta, Partial, SendError, Transport};
use cloudtap::output::url::parse;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- services

fn services_dir() -> PathBuf {
    match std::env::var_os("SENSOR_SERVICES_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/services"),
    }
}

/// True (after saying so) when the run asked to skip tests that need a server.
fn skip(what: &str) -> bool {
    if std::env::var("SENSOR_NO_SERVICES").as_deref() == Ok("1") {
        println!("skipped: SENSOR_NO_SERVICES=1 (needs {what})");
        true
    } else {
        false
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A throwaway server: started by its script, stopped on drop.
struct Service {
    script: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Service {
    fn start(name: &str) -> Service {
        let script = services_dir().join(format!("{name}.sh"));
        let mut last = String::new();
        // A lost race for a free port just fails "already in use": try a few ports.
        for _ in 0..5 {
            let svc = Service {
                script: script.clone(),
                dir: tempfile::tempdir().expect("tempdir"),
                port: free_port(),
            };
            match svc.run_start() {
                Ok(()) => return svc,
                Err(e) => last = e,
            }
        }
        panic!("{name}.sh start failed: {last}");
    }

    fn run_start(&self) -> Result<(), String> {
        let o = Command::new("bash")
            .arg(&self.script)
            .arg("start")
            .arg(self.port.to_string())
            .arg(self.dir.path())
            .output()
            .map_err(|e| format!("running {}: {e}", self.script.display()))?;
        if o.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&o.stderr).into_owned())
        }
    }

    fn stop(&self) {
        let o = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(self.dir.path())
            .output()
            .expect("run stop");
        assert!(
            o.status.success(),
            "stop failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        match Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(self.dir.path())
            .output()
        {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!("stop: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => eprintln!("stop: {e}"),
        }
    }
}

// ---------------------------------------------------------------- events

fn ev(i: usize, kind: Kind, severity: u8, pad: usize) -> Out {
    let line = format!(
        r#"{{"timestamp":"2024-05-01T10:00:00.000000+0000","event_type":"{}","i":{i},"note":"q\"uote \\ é","pad":"{}"}}"#,
        kind.name(),
        "x".repeat(pad)
    );
    Out {
        line: Arc::from(line.into_bytes().into_boxed_slice()),
        meta: OutMeta {
            kind,
            severity,
            flow_id: i as u64,
            src: None,
            ts_ns: 1_714_557_600_000_000_000 + i as u64 * 1_001_000,
        },
    }
}

/// `n` events cycling through kinds and alert severities.
fn events(n: usize) -> Vec<Out> {
    (0..n)
        .map(|i| {
            let kind = Kind::ALL[i % Kind::ALL.len()];
            let sev = if kind == Kind::Alert {
                (i % 4) as u8
            } else {
                0
            };
            ev(i, kind, sev, i % 50)
        })
        .collect()
}

fn open(url: &str) -> Box<dyn Transport> {
    transport::open(&parse(url).expect("url")).expect("open")
}

fn send_all(t: &mut dyn Transport, evs: &[Out], per_batch: usize) {
    for b in evs.chunks(per_batch) {
        t.send(b).expect("send");
    }
}

/// Lines of `path` once it holds at least `n`, waiting at most 10 s.
fn wait_lines(path: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_down(r: &Result<(), SendError>) -> bool {
    matches!(r, Err(SendError::Down(_)))
}

// ---------------------------------------------------------------- unix

#[test]
fn unix_dgram_delivers_each_event_as_a_datagram() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eve.sock");
    let rx = UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let evs = events(1000);
    // The receiver reads while the transport sends: more datagrams than the kernel queues
    // (net.unix.max_dgram_qlen) make the sender wait for room, not fail.
    let n = evs.len();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 70_000];
        for _ in 0..n {
            let k = rx.recv(&mut buf).expect("datagram");
            got.push(buf[..k].to_vec());
        }
        got
    });
    let mut t = open(&format!("unix+dgram:{}", path.display()));
    t.connect().expect("connect");
    send_all(t.as_mut(), &evs, 64);
    assert_eq!(reader.join().unwrap(), lines(&evs));
}

#[test]
fn unix_dgram_oversized_is_rejected_and_missing_listener_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eve.sock");
    let rx = UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut t = open(&format!("unix+dgram:{}?timeout_ms=200", path.display()));
    t.connect().expect("connect");
    // Above the socket's send buffer (net.core.wmem_default, ~208 KiB): EMSGSIZE.
    let batch = vec![
        ev(0, Kind::Dns, 0, 10),
        ev(1, Kind::Dns, 0, 4 << 20),
        ev(2, Kind::Dns, 0, 10),
    ];
    match t.send(&batch) {
        Err(Partial {
            delivered: 1,
            error: SendError::Rejected(_),
        }) => {}
        other => panic!("{other:?}"),
    }
    t.send(&batch[2..]).expect("rest goes through");
    let mut buf = vec![0u8; 1024];
    for e in [&batch[0], &batch[2]] {
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &e.line[..]);
    }
    // The listener goes away (path left behind): ECONNREFUSED -> Down.
    drop(rx);
    match t.send(&batch[..1]) {
        Err(Partial {
            delivered: 0,
            error: SendError::Down(_),
        }) => {}
        other => panic!("{other:?}"),
    }
    std::fs::remove_file(&path).unwrap();
    assert!(is_down(&t.connect()), "no socket file: Down");
}

#[test]
fn unix_stream_delivers_ndjson_and_sees_a_closed_peer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eve.sock");
    let l = UnixListener::bind(&path).unwrap();
    let l1 = l.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = l1.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        all
    });
    let mut t = open(&format!("unix+stream:{}", path.display()));
    t.connect().expect("connect");
    let evs = events(500);
    send_all(t.as_mut(), &evs, 64);
    drop(t);
    let got = reader_join(reader);
    let mut want = Vec::new();
    for e in &evs {
        want.extend_from_slice(&e.line);
        want.push(b'\n');
    }
    assert_eq!(got.len(), want.len());
    assert!(got == want, "byte-for-byte NDJSON");

    // The listener accepts and closes at once: the next send sees the closed peer.
    let mut t = open(&format!("unix+stream:{}", path.display()));
    t.connect().expect("connect");
    let (s2, _) = l.accept().unwrap();
    drop(s2);
    match t.send(&evs[..1]) {
        Err(Partial {
            delivered: 0,
            error: SendError::Down(_),
        }) => {}
        other => panic!("closed peer: {other:?}"),
    }
}

fn reader_join(h: std::thread::JoinHandle<Vec<u8>>) -> Vec<u8> {
    h.join().expect("reader thread")
}

// ---------------------------------------------------------------- syslog

fn params(facility: u8, app: &str, host: &str) -> Params {
    Params {
        facility,
        app_name: app.into(),
        hostname: host.into(),
        procid: std::process::id().to_string(),
    }
}

fn expected_5424(evs: &[Out], p: &Params) -> Vec<Vec<u8>> {
    evs.iter()
        .map(|e| {
            let mut v = Vec::new();
            format_5424(&e.meta, &e.line, p, &mut v);
            v
        })
        .collect()
}

fn sev_of(e: &Out) -> u64 {
    match (e.meta.kind, e.meta.severity) {
        (Kind::Alert, 1) => 2,
        (Kind::Alert, 2) => 3,
        (Kind::Alert, _) => 4,
        _ => 6,
    }
}

fn num(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().expect("number string"),
        Value::Number(n) => n.as_u64().expect("u64"),
        o => panic!("{o:?}"),
    }
}

/// rsyslog's parse of every message matches what was sent, and the raw message is exactly
/// the RFC 5424 text.
fn check_rsyslog(svc: &Service, evs: &[Out], p: &Params, input: &str) {
    let raw = wait_lines(&svc.file("messages.raw"), evs.len());
    let json = wait_lines(&svc.file("messages.jsonl"), evs.len());
    assert_eq!(raw.len(), evs.len(), "raw messages");
    assert_eq!(json.len(), evs.len(), "parsed messages");
    let want = expected_5424(evs, p);
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(raw[i].as_bytes(), &want[i][..], "raw message {i}");
        let v: Value = serde_json::from_str(&json[i]).expect("jsonmesg");
        assert_eq!(
            v["msg"].as_str().unwrap().as_bytes(),
            &e.line[..],
            "msg {i}"
        );
        assert_eq!(v["app-name"], p.app_name.as_str());
        assert_eq!(v["hostname"], p.hostname.as_str());
        assert_eq!(v["procid"], p.procid.as_str());
        assert_eq!(v["msgid"], e.meta.kind.name());
        assert_eq!(num(&v["syslogseverity"]), sev_of(e), "severity of {i}");
        assert_eq!(num(&v["syslogfacility"]), u64::from(p.facility));
        assert_eq!(v["inputname"], input);
    }
}

#[test]
fn syslog_udp_delivers_and_rejects_oversized() {
    if skip("rsyslog") {
        return;
    }
    let svc = Service::start("syslog");
    let mut t = open(&format!(
        "syslog+udp://127.0.0.1:{}?facility=local3&app_name=ctap-test&hostname=sensor-x&max_udp=4000",
        svc.port
    ));
    t.connect().expect("connect");
    let evs = events(40);
    send_all(t.as_mut(), &evs, 8);
    check_rsyslog(&svc, &evs, &params(19, "ctap-test", "sensor-x"), "imudp");
    let big = [ev(99, Kind::Dns, 0, 5000)];
    match t.send(&big) {
        Err(Partial {
            delivered: 0,
            error: SendError::Rejected(_),
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn syslog_tcp_octet_counted_delivers_exactly() {
    if skip("rsyslog") {
        return;
    }
    let svc = Service::start("syslog");
    let mut t = open(&format!("syslog+tcp://127.0.0.1:{}", svc.port));
    t.connect().expect("connect");
    let evs = events(1000);
    send_all(t.as_mut(), &evs, 100);
    t.flush().expect("flush");
    // Defaults: local5, app cloudtap, this machine's name.
    check_rsyslog(
        &svc,
        &evs,
        &params(21, "cloudtap", &machine_hostname()),
        "imtcp",
    );
}

#[test]
fn syslog_tcp_receiver_restart_is_down_then_reconnects() {
    if skip("rsyslog") {
        return;
    }
    let svc = Service::start("syslog");
    let url = format!(
        "syslog+tcp://127.0.0.1:{}?hostname=h1&timeout_ms=2000",
        svc.port
    );
    let mut t = open(&url);
    t.connect().expect("connect");
    let a = events(20);
    t.send(&a).expect("first batch");
    let p = params(21, "cloudtap", "h1");
    check_rsyslog(&svc, &a, &p, "imtcp");
    svc.stop();
    let b: Vec<Out> = (100..130).map(|i| ev(i, Kind::Alert, 1, 3)).collect();
    match t.send(&b) {
        Err(Partial {
            delivered: 0,
            error: SendError::Down(_),
        }) => {}
        other => panic!("receiver stopped: {other:?}"),
    }
    assert!(is_down(&t.connect()), "nobody listening: Down");
    svc.run_start().expect("restart rsyslog");
    t.connect().expect("reconnect");
    t.send(&b).expect("after reconnect");
    // start truncates messages.*: only the second batch is there.
    check_rsyslog(&svc, &b, &p, "imtcp");
}

#[test]
fn tcp_closed_port_is_down() {
    let port = free_port();
    for url in [
        format!("syslog+tcp://127.0.0.1:{port}?timeout_ms=500"),
        format!("redis://127.0.0.1:{port}/k?timeout_ms=500"),
    ] {
        let mut t = open(&url);
        assert!(is_down(&t.connect()), "{url}");
        match t.send(&events(1)) {
            Err(Partial {
                delivered: 0,
                error: SendError::Down(_),
            }) => {}
            other => panic!("{url}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------- syslog over TLS

struct Pki {
    ca_pem: String,
    server_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    server_key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        server_chain: vec![cert.der().clone()],
        server_key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    }
}

/// A TLS syslog receiver on a loopback port: accepts one connection and returns the
/// octet-counted frames it read once it has `want` of them (or the peer went away).
fn tls_receiver(p: &Pki, want: usize) -> (u16, std::thread::JoinHandle<Vec<Vec<u8>>>) {
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(p.server_chain.clone(), p.server_key.clone_key())
        .unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (sock, _) = l.accept().unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let conn = rustls::ServerConnection::new(Arc::new(cfg)).unwrap();
        let mut s = rustls::StreamOwned::new(conn, sock);
        let mut data = Vec::new();
        let mut frames = Vec::new();
        let mut buf = [0u8; 16384];
        while frames.len() < want {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => data.extend_from_slice(&buf[..n]),
            }
            // Octet counting: LEN SP MSG.
            while let Some(sp) = data.iter().position(|&b| b == b' ') {
                let len: usize = std::str::from_utf8(&data[..sp]).unwrap().parse().unwrap();
                if data.len() < sp + 1 + len {
                    break;
                }
                frames.push(data[sp + 1..sp + 1 + len].to_vec());
                data.drain(..sp + 1 + len);
            }
        }
        frames
    });
    (port, h)
}

#[test]
fn syslog_tls_delivers_with_a_private_ca() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &p.ca_pem).unwrap();
    let evs = events(300);
    let (port, h) = tls_receiver(&p, evs.len());
    let mut t = open(&format!(
        "syslog+tls://127.0.0.1:{port}?ca={}&server_name=localhost&facility=user&app_name=tap",
        ca.display()
    ));
    t.connect().expect("TLS connect");
    send_all(t.as_mut(), &evs, 50);
    let frames = h.join().unwrap();
    let want = expected_5424(&evs, &params(1, "tap", &machine_hostname()));
    assert_eq!(frames.len(), want.len());
    assert!(frames == want, "byte-for-byte RFC 5424 frames over TLS");

    // A server whose certificate another CA signed: the handshake fails -> Down.
    let other = pki();
    let (port2, h2) = tls_receiver(&other, 1);
    let mut t = open(&format!(
        "syslog+tls://127.0.0.1:{port2}?ca={}&server_name=localhost&timeout_ms=2000",
        ca.display()
    ));
    assert!(is_down(&t.connect()), "untrusted certificate");
    drop(t);
    assert!(h2.join().unwrap().is_empty());
}

// ---------------------------------------------------------------- redis

/// A plain RESP client for checking what Redis holds.
struct Client {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn new(port: u16) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Client { s, buf: Vec::new() }
    }

    fn read(&mut self) -> Reply {
        loop {
            if let Ok((r, used)) = parse_reply(&self.buf) {
                self.buf.drain(..used);
                return r;
            }
            let mut b = [0u8; 65536];
            let n = self.s.read(&mut b).expect("reply");
            assert!(n > 0, "redis closed");
            self.buf.extend_from_slice(&b[..n]);
        }
    }

    fn cmd(&mut self, args: &[&str]) -> Reply {
        let mut out = Vec::new();
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        encode_command(&mut out, &a);
        self.s.write_all(&out).unwrap();
        self.read()
    }
}

fn bulks(r: Reply) -> Vec<Vec<u8>> {
    match r {
        Reply::Array(Some(v)) => v
            .into_iter()
            .map(|x| match x {
                Reply::Bulk(Some(b)) => b,
                o => panic!("{o:?}"),
            })
            .collect(),
        o => panic!("{o:?}"),
    }
}

fn lines(evs: &[Out]) -> Vec<Vec<u8>> {
    evs.iter().map(|e| e.line.to_vec()).collect()
}

/// XRANGE's entries as their `event` field values.
fn stream_events(r: Reply) -> Vec<Vec<u8>> {
    let Reply::Array(Some(entries)) = r else {
        panic!("{r:?}")
    };
    entries
        .into_iter()
        .map(|e| {
            let Reply::Array(Some(mut kv)) = e else {
                panic!("{e:?}")
            };
            let fields = bulks(kv.pop().unwrap());
            assert_eq!(fields.len(), 2);
            assert_eq!(fields[0], b"event");
            fields[1].clone()
        })
        .collect()
}

#[test]
fn redis_list_with_auth_and_db() {
    if skip("redis") {
        return;
    }
    let svc = Service::start("redis");
    let mut c = Client::new(svc.port);
    let evs = events(700);
    let mut t = open(&format!("redis://127.0.0.1:{}/eve?batch=64", svc.port));
    t.connect().expect("connect");
    send_all(t.as_mut(), &evs, 100);
    assert_eq!(bulks(c.cmd(&["LRANGE", "eve", "0", "-1"])), lines(&evs));

    assert_eq!(
        c.cmd(&["CONFIG", "SET", "requirepass", "s3cret"]),
        Reply::Simple("OK".into())
    );
    let mut bad = open(&format!("redis://127.0.0.1:{}/eve?password=nope", svc.port));
    assert!(is_down(&bad.connect()), "wrong password");
    let mut t = open(&format!(
        "redis://127.0.0.1:{}/eve3?password=s3cret&db=3",
        svc.port
    ));
    t.connect().expect("AUTH + SELECT");
    t.send(&evs[..10]).expect("send");
    let mut c = Client::new(svc.port);
    c.cmd(&["AUTH", "s3cret"]);
    c.cmd(&["SELECT", "3"]);
    assert_eq!(
        bulks(c.cmd(&["LRANGE", "eve3", "0", "-1"])),
        lines(&evs[..10])
    );
}

#[test]
fn redis_channel_publishes_to_a_subscriber() {
    if skip("redis") {
        return;
    }
    let svc = Service::start("redis");
    let mut sub = Client::new(svc.port);
    let confirm = bulks_or_mixed(sub.cmd(&["SUBSCRIBE", "alerts"]));
    assert_eq!(confirm, 3);
    let evs = events(200);
    let mut t = open(&format!(
        "redis://127.0.0.1:{}/alerts?mode=channel",
        svc.port
    ));
    t.connect().expect("connect");
    send_all(t.as_mut(), &evs, 70);
    for e in &evs {
        match sub.read() {
            Reply::Array(Some(v)) => {
                assert_eq!(v[0], Reply::Bulk(Some(b"message".to_vec())));
                assert_eq!(v[1], Reply::Bulk(Some(b"alerts".to_vec())));
                assert_eq!(v[2], Reply::Bulk(Some(e.line.to_vec())));
            }
            o => panic!("{o:?}"),
        }
    }
}

fn bulks_or_mixed(r: Reply) -> usize {
    match r {
        Reply::Array(Some(v)) => v.len(),
        o => panic!("{o:?}"),
    }
}

#[test]
fn redis_stream_xadd_and_maxlen_trimming() {
    if skip("redis") {
        return;
    }
    let svc = Service::start("redis");
    let mut c = Client::new(svc.port);
    let evs = events(300);
    let mut t = open(&format!("redis://127.0.0.1:{}/s1?mode=stream", svc.port));
    t.connect().expect("connect");
    send_all(t.as_mut(), &evs, 128);
    assert_eq!(
        stream_events(c.cmd(&["XRANGE", "s1", "-", "+"])),
        lines(&evs)
    );

    // MAXLEN ~ 50: Redis trims whole stream nodes (100 entries by default), keeping >= 50.
    let mut t = open(&format!(
        "redis://127.0.0.1:{}/s2?mode=stream&maxlen=50",
        svc.port
    ));
    t.connect().expect("connect");
    send_all(t.as_mut(), &evs, 128);
    let Reply::Integer(len) = c.cmd(&["XLEN", "s2"]) else {
        panic!()
    };
    assert!((50..300).contains(&len), "trimmed to {len}");
    let kept = stream_events(c.cmd(&["XRANGE", "s2", "-", "+"]));
    assert_eq!(
        kept,
        lines(&evs[300 - len as usize..]),
        "the newest are kept, in order"
    );
}

#[test]
fn redis_wrongtype_is_rejected_and_a_stop_is_down() {
    if skip("redis") {
        return;
    }
    let svc = Service::start("redis");
    let mut c = Client::new(svc.port);
    assert_eq!(c.cmd(&["SET", "str", "x"]), Reply::Simple("OK".into()));
    let mut t = open(&format!("redis://127.0.0.1:{}/str", svc.port));
    t.connect().expect("connect");
    let evs = events(3);
    // Each event is refused for good; the sink hands back the rest after each rejection.
    for i in 0..3 {
        match t.send(&evs[i..]) {
            Err(Partial {
                delivered: 0,
                error: SendError::Rejected(m),
            }) => assert!(m.contains("WRONGTYPE"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    // The connection stayed in step: a good key works on it.
    let mut t2 = open(&format!("redis://127.0.0.1:{}/ok", svc.port));
    t2.connect().expect("connect");
    t2.send(&evs).expect("send");
    svc.stop();
    match t2.send(&evs) {
        Err(Partial {
            delivered: 0,
            error: SendError::Down(_),
        }) => {}
        other => panic!("redis stopped: {other:?}"),
    }
    assert!(is_down(&t2.connect()));
}
