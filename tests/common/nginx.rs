//! A real nginx for HTTP tests: unprivileged, in a temporary prefix,
//! stopped (with nothing left behind) when dropped.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nginx {
    child: Child,
    http: SocketAddr,
    h2c: SocketAddr,
    dir: tempfile::TempDir,
}

/// The nginx binary, or a panic that says how to install it.
pub fn nginx_binary() -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let path = Path::new(dir).join("nginx");
        if path.exists() {
            return path;
        }
    }
    panic!("nginx is not installed: apt-get install -y nginx-light");
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether something listens on 127.0.0.1:`port` (read from /proc, so no
/// probe connection shows up in anyone's events). Some servers (grpcio)
/// bind 127.0.0.1 on an IPv6 socket, as the v4-mapped `::ffff:127.0.0.1`.
pub fn listening(port: u16) -> bool {
    let in_table = |path: &str, local: String| {
        let table = std::fs::read_to_string(path).unwrap_or_default();
        table.lines().skip(1).any(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            fields.len() > 3 && fields[1] == local && fields[3] == "0A"
        })
    };
    in_table("/proc/net/tcp", format!("0100007F:{port:04X}"))
        || in_table(
            "/proc/net/tcp6",
            format!("0000000000000000FFFF00000100007F:{port:04X}"),
        )
}

impl Nginx {
    /// Serves, on a free loopback port:
    /// `/index.html`, `/small.txt` (1000 × `a`), `/large.bin` (1 MiB),
    /// `/missing` (404), `/echo-query` (the query string and a newline),
    /// `/upload` (reads the whole body, then 201 `created\n`).
    /// It speaks HTTP/1.1 on [`Nginx::http_addr`] and HTTP/2 with prior
    /// knowledge (h2c) on [`Nginx::h2c_addr`].
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("html");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("index.html"), "hello from nginx\n").unwrap();
        std::fs::write(root.join("small.txt"), "a".repeat(1000)).unwrap();
        let mut x: u32 = 0x9E37_79B9;
        let large: Vec<u8> = (0..1 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        std::fs::write(root.join("large.bin"), large).unwrap();

        let port = free_port();
        let h2c_port = free_port();
        let prefix = dir.path().display();
        // /upload goes through proxy_pass to this same server so nginx reads
        // (and buffers) the whole request body, sending 100 Continue when
        // asked, before answering; a bare `return` answers first and the
        // client would stop uploading.
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 1000;
    keepalive_timeout 60s;
    default_type application/octet-stream;
    types {{ text/plain txt; text/html html; }}
    # Only for clients that ask (curl --compressed); the others get bytes as stored.
    gzip on;
    gzip_types text/plain;
    gzip_min_length 1;
    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.1:{h2c_port} http2;
        root {prefix}/html;
        location = /echo-query {{ default_type text/plain; return 200 "$args\n"; }}
        location = /upload {{
            client_max_body_size 100m;
            client_body_buffer_size 1m;
            proxy_pass http://127.0.0.1:{port}/uploaded;
        }}
        location = /uploaded {{ default_type text/plain; return 201 "created\n"; }}
    }}
}}
"#
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nginx");
        let mut nginx = Nginx {
            child,
            http: SocketAddr::from(([127, 0, 0, 1], port)),
            h2c: SocketAddr::from(([127, 0, 0, 1], h2c_port)),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !listening(port) || !listening(h2c_port) {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                panic!("nginx exited ({status}): {}", nginx.error_log());
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen: {}",
                nginx.error_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    pub fn h2c_addr(&self) -> SocketAddr {
        self.h2c
    }

    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
