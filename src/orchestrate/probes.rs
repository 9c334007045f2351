//! Protocol-level readiness probes of the managed servers: a port that
//! accepts is not a database that answers (PostgreSQL accepts while it
//! still replays its log and says "the database system is starting up").
//!
//! Kafka's two requests are written by hand: version 0 of `ApiVersions`
//! and `Metadata`, a few fixed bytes each, every broker answers them, and
//! the runtime crate does not otherwise speak Kafka.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A login reaches ReadyForQuery on the `postgres` database.
pub async fn postgres(addr: SocketAddr, user: &str, password: &str) -> Result<(), String> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(addr.ip().to_string())
        .port(addr.port())
        .user(user)
        .password(password)
        .dbname("postgres")
        .application_name("tapmesh-ready");
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => e.to_string(),
        })?;
    let driver = tokio::spawn(connection);
    let answered = client
        .simple_query("")
        .await
        .map(drop)
        .map_err(|e| e.to_string());
    drop(client);
    let _ = driver.await;
    answered
}

/// `PING` answers `+PONG`, after `AUTH` if there is a password.
pub async fn redis(addr: SocketAddr, password: Option<&str>) -> Result<(), String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut stream = BufReader::new(stream);
    let mut request = Vec::new();
    if let Some(password) = password {
        request
            .extend_from_slice(format!("*2\r\n$4\r\nAUTH\r\n${}\r\n", password.len()).as_bytes());
        request.extend_from_slice(password.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    stream
        .get_mut()
        .write_all(&request)
        .await
        .map_err(|e| e.to_string())?;
    let expected: &[&str] = if password.is_some() {
        &["+OK", "+PONG"]
    } else {
        &["+PONG"]
    };
    for want in expected {
        let mut line = String::new();
        stream
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        let line = line.trim_end();
        if line.is_empty() {
            return Err("closed without a reply".into());
        }
        if line != *want {
            // `-LOADING`, `-WRONGPASS`: the reply says why.
            return Err(format!("answered {line:?}"));
        }
    }
    Ok(())
}

/// `ApiVersions` without an error, then `Metadata` naming a broker.
pub async fn kafka(addr: SocketAddr) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let versions = kafka_call(&mut stream, 18, 1).await?;
    let error = versions
        .get(..2)
        .map(|b| i16::from_be_bytes([b[0], b[1]]))
        .ok_or("a short ApiVersions response")?;
    if error != 0 {
        return Err(format!("ApiVersions answered error code {error}"));
    }
    // Metadata v0 with an empty topic list: every topic, and the brokers.
    let metadata = kafka_call(&mut stream, 3, 2).await?;
    let brokers = metadata
        .get(..4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or("a short Metadata response")?;
    if brokers < 1 {
        return Err("Metadata named no broker".into());
    }
    Ok(())
}

/// Sends a version-0 request of `api_key` with an empty body (for
/// Metadata v0: an empty topic array) and returns the response after its
/// correlation id.
async fn kafka_call(
    stream: &mut TcpStream,
    api_key: i16,
    correlation: i32,
) -> Result<Vec<u8>, String> {
    let client_id = b"tapmesh-ready";
    let mut body = Vec::new();
    body.extend_from_slice(&api_key.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&correlation.to_be_bytes());
    body.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    body.extend_from_slice(client_id);
    if api_key == 3 {
        body.extend_from_slice(&0i32.to_be_bytes());
    }
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await.map_err(|e| e.to_string())?;
    let mut size = [0u8; 4];
    stream
        .read_exact(&mut size)
        .await
        .map_err(|e| format!("reading a response: {e}"))?;
    let size = i32::from_be_bytes(size);
    if !(4..=1 << 20).contains(&size) {
        return Err(format!("a response of {size} bytes"));
    }
    let mut response = vec![0u8; size as usize];
    stream
        .read_exact(&mut response)
        .await
        .map_err(|e| format!("reading a response: {e}"))?;
    if response[..4] != correlation.to_be_bytes() {
        return Err("a response to another request".into());
    }
    Ok(response.split_off(4))
}
