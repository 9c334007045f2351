//! `tapmesh proxy --protocol tcp` as a user runs it: the real binary between
//! a real client and server, checked byte for byte and event by event.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use common::{assert_gap_free, of_type, ProxyProcess};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

const GIB: u64 = 1 << 30;
const CHUNK: usize = 1 << 20;

/// Writes `len` pseudo-random bytes from `seed`, returning their SHA-256.
fn send_random(stream: &mut TcpStream, seed: u64, len: u64) -> [u8; 32] {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        rng.fill_bytes(&mut buf[..n]);
        hash.update(&buf[..n]);
        stream.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    hash.finalize().into()
}

/// Reads exactly `len` bytes, returning their SHA-256.
fn hash_exactly(stream: &mut TcpStream, len: u64) -> [u8; 32] {
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        let want = left.min(CHUNK as u64) as usize;
        let n = stream.read(&mut buf[..want]).unwrap();
        assert!(n > 0, "stream ended {left} bytes early");
        hash.update(&buf[..n]);
        left -= n as u64;
    }
    hash.finalize().into()
}

/// Reads to EOF, returning the byte count and SHA-256.
fn hash_to_eof(stream: &mut TcpStream) -> (u64, [u8; 32]) {
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            return (total, hash.finalize().into());
        }
        hash.update(&buf[..n]);
        total += n as u64;
    }
}

fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

fn closed_events(events: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    of_type(events, "connection.closed")
}

/// Runs one full-duplex exchange: the client uploads `up` bytes and
/// half-closes; meanwhile the server streams `down` bytes and, only after
/// reading the client's EOF, the SHA-256 of what it received. Checks both
/// digests and returns nothing; the caller checks the events.
fn duplex_exchange(proxy_addr: SocketAddr, server: TcpListener, up: u64, down: u64) {
    let server = thread::spawn(move || {
        let (conn, _) = server.accept().unwrap();
        let mut reader = conn.try_clone().unwrap();
        let mut writer = conn;
        let sent = thread::spawn(move || {
            let digest = send_random(&mut writer, 2, down);
            (writer, digest)
        });
        let (received, digest_in) = hash_to_eof(&mut reader);
        let (mut writer, digest_out) = sent.join().unwrap();
        // The client's FIN arrived while this direction was still open.
        writer.write_all(&digest_in).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
        (received, digest_out)
    });

    let conn = TcpStream::connect(proxy_addr).unwrap();
    let mut reader = conn.try_clone().unwrap();
    let mut writer = conn;
    let upload = thread::spawn(move || {
        let digest = send_random(&mut writer, 1, up);
        writer.shutdown(Shutdown::Write).unwrap();
        digest
    });
    let downloaded = hash_exactly(&mut reader, down);
    let mut server_digest = [0u8; 32];
    reader.read_exact(&mut server_digest).unwrap();
    assert_eq!(
        reader.read(&mut [0u8; 1]).unwrap(),
        0,
        "EOF after the digest"
    );
    let uploaded = upload.join().unwrap();
    let (server_received, server_sent) = server.join().unwrap();

    assert_eq!(server_received, up, "the server received every byte");
    assert_eq!(
        server_digest, uploaded,
        "client → target bytes arrived unchanged"
    );
    assert_eq!(
        downloaded, server_sent,
        "target → client bytes arrived unchanged"
    );
}

#[test]
fn one_gib_each_way_arrives_byte_exact_and_is_counted() {
    let (server, target) = listener();
    let proxy = ProxyProcess::start(target, &["--source", "loader", "--target-name", "sink"]);
    duplex_exchange(proxy.addr, server, GIB, GIB);
    proxy.wait_for_event("connection.closed", |e| e["type"] == "connection.closed");
    let events = proxy.stop();

    assert_gap_free(&events);
    let opened = of_type(&events, "connection.opened");
    let closed = closed_events(&events);
    assert_eq!((opened.len(), closed.len()), (1, 1), "{events:#?}");
    let c = &closed[0]["connection"];
    assert_eq!(c["bytes_in"], GIB, "client → target bytes");
    assert_eq!(
        c["bytes_out"],
        GIB + 32,
        "target → client bytes (stream + digest)"
    );
    assert_eq!(c["source"], "loader");
    assert_eq!(c["target"], "sink");
    assert_eq!(c["ingress"], "default");
    assert_eq!(c["id"], opened[0]["connection"]["id"]);
    assert!(c.get("error").is_none(), "a clean close has no error: {c}");
    assert!(c["duration_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(closed[0]["environment"], "proxy");
}

#[test]
fn target_half_closing_first_keeps_the_other_direction_open() {
    let (server, target) = listener();
    let proxy = ProxyProcess::start(target, &[]);
    const LEN: u64 = 64 << 20;
    let server = thread::spawn(move || {
        let (mut conn, _) = server.accept().unwrap();
        let digest = send_random(&mut conn, 7, LEN);
        conn.shutdown(Shutdown::Write).unwrap();
        // The client answers after seeing our FIN, on its still-open side.
        let mut echoed = [0u8; 32];
        conn.read_exact(&mut echoed).unwrap();
        assert_eq!(conn.read(&mut [0u8; 1]).unwrap(), 0);
        (digest, echoed)
    });
    let mut client = TcpStream::connect(proxy.addr).unwrap();
    let (len, digest) = hash_to_eof(&mut client);
    assert_eq!(len, LEN);
    client.write_all(&digest).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let (sent, echoed) = server.join().unwrap();
    assert_eq!(sent, echoed, "the client saw exactly what the target sent");

    let closed = proxy.wait_for_event("connection.closed", |e| e["type"] == "connection.closed");
    assert_eq!(closed["connection"]["bytes_out"], LEN);
    assert_eq!(closed["connection"]["bytes_in"], 32);
    assert!(closed["connection"].get("error").is_none());
}

#[test]
fn refused_target_is_reported_and_the_proxy_keeps_serving() {
    // Reserve a port, then free it so nothing listens there.
    let (reserved, target) = listener();
    drop(reserved);
    let proxy = ProxyProcess::start(target, &["--connect-timeout", "2s"]);

    let mut client = TcpStream::connect(proxy.addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let outcome = client.read(&mut [0u8; 16]);
    assert!(
        matches!(&outcome, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "the client is reset, as a refused connect would fail: {outcome:?}"
    );
    let refused = proxy.wait_for_event("closed with error", |e| e["type"] == "connection.closed");
    let error = refused["connection"]["error"].as_str().unwrap();
    assert_eq!(
        error,
        format!("the target at {target} refused the connection")
    );
    assert_eq!(refused["connection"]["bytes_in"], 0);

    // The target comes up: the next connection goes through.
    let server = TcpListener::bind(target).unwrap();
    let echo = thread::spawn(move || {
        let (mut conn, _) = server.accept().unwrap();
        let mut buf = [0u8; 5];
        conn.read_exact(&mut buf).unwrap();
        conn.write_all(&buf).unwrap();
    });
    let mut client = TcpStream::connect(proxy.addr).unwrap();
    client.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    echo.join().unwrap();
    drop(client);
    // Let both FINs cross before stopping, or "the proxy stopped" is the truth.
    let first_id = refused["connection"]["id"].clone();
    proxy.wait_for_event("the second connection.closed", |e| {
        e["type"] == "connection.closed" && e["connection"]["id"] != first_id
    });

    let events = proxy.stop();
    assert_gap_free(&events);
    let closed = closed_events(&events);
    assert_eq!(closed.len(), 2);
    let ok = closed[1];
    assert!(ok["connection"].get("error").is_none(), "{ok}");
    assert_eq!(ok["connection"]["bytes_in"], 5);
    assert_eq!(ok["connection"]["bytes_out"], 5);
    assert_ne!(ok["connection"]["id"], closed[0]["connection"]["id"]);
}

/// Closes with RST rather than FIN.
fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
}

#[test]
fn a_reset_by_the_target_reaches_the_client() {
    let (server, target) = listener();
    let proxy = ProxyProcess::start(target, &[]);
    let server = thread::spawn(move || {
        let (mut conn, _) = server.accept().unwrap();
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).unwrap();
        reset(conn);
    });
    let mut client = TcpStream::connect(proxy.addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.write_all(b"ping").unwrap();
    server.join().unwrap();
    let err = client.read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);

    let closed = proxy.wait_for_event("connection.closed", |e| e["type"] == "connection.closed");
    assert_eq!(
        closed["connection"]["error"],
        "the target reset the connection"
    );
    assert_eq!(closed["connection"]["bytes_in"], 4);
}

#[test]
fn a_reset_by_the_client_reaches_the_target() {
    let (server, target) = listener();
    let proxy = ProxyProcess::start(target, &[]);
    let server = thread::spawn(move || {
        let (mut conn, _) = server.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).unwrap();
        conn.write_all(b"pong").unwrap();
        loop {
            match conn.read(&mut [0u8; 8]) {
                Ok(0) => return Err("clean EOF instead of a reset".to_string()),
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(()),
                Err(e) => return Err(e.to_string()),
            }
        }
    });
    let mut client = TcpStream::connect(proxy.addr).unwrap();
    client.write_all(b"ping").unwrap();
    client.read_exact(&mut [0u8; 4]).unwrap();
    reset(client);
    server
        .join()
        .unwrap()
        .expect("the target sees the client's reset");

    let closed = proxy.wait_for_event("connection.closed", |e| e["type"] == "connection.closed");
    assert_eq!(
        closed["connection"]["error"],
        "the client reset the connection"
    );
    assert_eq!(closed["connection"]["bytes_out"], 4);
}

#[test]
fn sigterm_closes_open_connections_and_flushes_every_event() {
    let (server, target) = listener();
    let proxy = ProxyProcess::start(target, &[]);
    let accepted = thread::spawn(move || server.accept().unwrap().0);
    let mut client = TcpStream::connect(proxy.addr).unwrap();
    client.write_all(b"abc").unwrap();
    let mut conn = accepted.join().unwrap();
    conn.read_exact(&mut [0u8; 3]).unwrap();

    let events = proxy.stop();
    assert_gap_free(&events);
    let closed = closed_events(&events);
    assert_eq!(closed.len(), 1, "{events:#?}");
    assert_eq!(closed[0]["connection"]["error"], "the proxy stopped");
    assert_eq!(closed[0]["connection"]["bytes_in"], 3);
    // Both ends see the connection end.
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0);
}

#[test]
fn events_go_to_stdout_with_dash() {
    let (server, target) = listener();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tapmesh"))
        .args([
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--target",
            &target.to_string(),
            "--events",
            "-",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let addr: SocketAddr = {
        use std::io::BufRead;
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| common::listening_address(&l))
            .expect("listening line")
    };
    let accept = thread::spawn(move || drop(server.accept().unwrap()));
    let mut client = TcpStream::connect(addr).unwrap();
    accept.join().unwrap();
    assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let types: Vec<_> = lines.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["connection.opened", "connection.closed"]);
}
