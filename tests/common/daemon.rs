//! `tapmesh serve` run by a test: started on a free port with its own
//! state directory, called with curl, terminated when dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    pub state_dir: tempfile::TempDir,
}

impl Daemon {
    pub fn start(extra: &[&str]) -> Self {
        let state_dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tapmesh"))
            .args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state_dir.path())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("tapmesh serve: listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .parse()
            .unwrap();
        Self {
            child,
            addr,
            state_dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `curl -X METHOD`; the status and the body as JSON (or a string).
    pub fn call(&self, method: &str, path: &str, body: Option<(&str, &str)>) -> (u16, Value) {
        match body {
            Some((content_type, data)) => self.request(
                method,
                path,
                &[&format!("content-type: {content_type}")],
                Some(data),
            ),
            None => self.request(method, path, &[], None),
        }
    }

    /// `curl -X METHOD` with `headers` (`name: value`); the status and the
    /// body as JSON (or a string).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[&str],
        body: Option<&str>,
    ) -> (u16, Value) {
        let mut args: Vec<String> = vec![
            "-sS".into(),
            "--max-time".into(),
            "60".into(),
            "-X".into(),
            method.into(),
            "-w".into(),
            "\n%{http_code}".into(),
        ];
        for header in headers {
            args.extend(["-H".into(), header.to_string()]);
        }
        if let Some(body) = body {
            args.extend(["--data-binary".into(), body.into()]);
        }
        args.push(self.url(path));
        let out = Command::new("curl").args(&args).output().unwrap();
        assert!(out.status.success(), "curl {args:?}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, status) = text.rsplit_once('\n').unwrap();
        let body = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.into()));
        (status.parse().unwrap(), body)
    }

    /// The environment's events logged so far (NDJSON, `follow=false`).
    pub fn events(&self, id: &str) -> Vec<Value> {
        let text = super::curl(&[
            "-H",
            "accept: application/x-ndjson",
            &self.url(&format!("/environments/{id}/events?follow=false")),
        ]);
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        super::wait_exit(&mut self.child, within, || "the daemon".into())
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        super::terminate(&mut self.child, Duration::from_secs(30), || {
            "the daemon".into()
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
    }
}

/// `GET path` as Server-Sent Events on a connection of its own (so a test
/// decides exactly when it goes away), resuming after `last_event_id`:
/// the reader, past the response's headers, at the (chunked) body.
pub fn open_sse(addr: SocketAddr, path: &str, last_event_id: Option<u64>) -> BufReader<TcpStream> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let resume = last_event_id
        .map(|id| format!("Last-Event-ID: {id}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{resume}\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut chunked = false;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header.trim().is_empty() {
            break;
        }
        chunked |= header
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
    }
    assert!(chunked, "SSE comes chunked");
    reader
}
