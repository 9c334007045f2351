//! Redis through `tapmesh proxy --protocol redis`: a real server (Debian's
//! `redis-server`, with a password), real clients (`redis-cli` plain, with
//! `--pipe` and subscribed; Python `redis` speaking RESP3 with a pipeline
//! and a transaction), and every command checked field by field in the
//! events. The password appears nowhere in them.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::ProxyProcess;
use serde_json::Value;

const PASSWORD: &str = "rd-Xk4-never-in-events";

/// A redis-server of the test's own on 127.0.0.1, no persistence.
struct RedisServer {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = common::free_port_below_ephemeral();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--requirepass", PASSWORD])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server: {e} (apt-get install redis-server; scripts/test.sh does)")
            });
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut server = Self {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(addr).is_err() {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("redis-server exited with {status} before listening on {addr}");
            }
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proxy(server: &RedisServer) -> ProxyProcess {
    ProxyProcess::start(
        server.addr,
        &[
            "--protocol",
            "redis",
            "--source",
            "api",
            "--target-name",
            "cache",
        ],
    )
}

fn cli(proxy: SocketAddr) -> Command {
    let mut c = Command::new("redis-cli");
    c.args(["-h", "127.0.0.1", "-p", &proxy.port().to_string()])
        .args(["--no-auth-warning", "-a", PASSWORD]);
    c
}

fn run(mut command: Command) -> Output {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{command:?}: {out:?}");
    out
}

fn commands(events: &[Value]) -> Vec<&Value> {
    common::of_type(events, "redis.command.completed")
        .into_iter()
        .map(|e| &e["command"])
        .collect()
}

fn find<'a>(all: &[&'a Value], command: &str, first_arg: &str) -> &'a Value {
    all.iter()
        .find(|c| c["command"] == command && c["args"][0] == first_arg)
        .unwrap_or_else(|| panic!("no {command} {first_arg} in {all:#?}"))
}

fn assert_no_secret(events: &[Value]) {
    let text: String = events.iter().map(|e| e.to_string()).collect();
    assert!(!text.contains(PASSWORD), "the password is in the events");
}

#[test]
fn redis_cli_commands_replies_and_errors_field_by_field() {
    let server = RedisServer::start();
    let proxy = proxy(&server);
    run({
        let mut c = cli(proxy.addr);
        c.args(["SET", "item:A-7", "anvil"]);
        c
    });
    run({
        let mut c = cli(proxy.addr);
        c.args(["GET", "item:A-7"]);
        c
    });
    // redis-cli prints an error reply and exits 0 for it.
    let out = run({
        let mut c = cli(proxy.addr);
        c.args(["INCR", "item:A-7"]);
        c
    });
    assert!(String::from_utf8_lossy(&out.stdout).contains("not an integer"));
    let events = proxy.stop();
    let all = commands(&events);

    // redis-cli authenticates first: AUTH's argument never reaches an event.
    let auth = all
        .iter()
        .find(|c| c["command"] == "AUTH")
        .expect("an AUTH");
    assert_eq!(auth["args"], serde_json::json!(["[redacted]"]));
    assert_eq!(auth["reply"]["type"], "simple_string");
    assert_eq!(auth["reply"]["value"], "\"OK\"");

    let set = find(&all, "SET", "item:A-7");
    assert_eq!(set["source"], "api");
    assert_eq!(set["target"], "cache");
    assert_eq!(set["args"], serde_json::json!(["item:A-7", "anvil"]));
    assert_eq!(set["arg_count"], 2);
    assert_eq!(set["reply"]["type"], "simple_string");
    assert_eq!(set["reply"]["value"], "\"OK\"");
    assert_eq!(set["error"], Value::Null);
    assert!(set["latency_ms"].as_f64().unwrap() >= 0.0);
    // *3\r\n $3\r\nSET\r\n $8\r\nitem:A-7\r\n $5\r\nanvil\r\n: 4 + 9 + 14 + 11
    assert_eq!(set["request_size"], 38);
    assert_eq!(set["response_size"], 5);

    let get = find(&all, "GET", "item:A-7");
    assert_eq!(get["reply"]["type"], "bulk");
    assert_eq!(get["reply"]["value"], "\"anvil\"");

    let incr = find(&all, "INCR", "item:A-7");
    assert_eq!(incr["reply"]["type"], "error");
    assert_eq!(incr["error"]["code"], "ERR");
    assert_eq!(
        incr["error"]["message"],
        "value is not an integer or out of range"
    );
    assert!(common::of_type(&events, "decode.error").is_empty());
    assert_no_secret(&events);
}

#[test]
fn redis_cli_pipe_mode_reports_every_pipelined_command() {
    let server = RedisServer::start();
    let proxy = proxy(&server);
    // Mass insertion as redis.io documents it: raw RESP on stdin.
    let mut input = Vec::new();
    for i in 0..500 {
        let (key, value) = (format!("key:{i}"), format!("value-{i}"));
        write!(
            input,
            "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
            key.len(),
            value.len()
        )
        .unwrap();
    }
    let mut pipe = cli(proxy.addr);
    pipe.arg("--pipe")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = pipe.spawn().unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("errors: 0, replies: 500"), "{stdout}");
    let events = proxy.stop();
    let all = commands(&events);

    let sets: Vec<&&Value> = all.iter().filter(|c| c["command"] == "SET").collect();
    assert_eq!(sets.len(), 500);
    // In the order sent, each paired with its own reply.
    for (i, set) in sets.iter().enumerate() {
        assert_eq!(set["args"][0], format!("key:{i}"));
        assert_eq!(set["args"][1], format!("value-{i}"));
        assert_eq!(set["reply"]["value"], "\"OK\"");
    }
    // --pipe ends with an ECHO of 20 random bytes to know it has every
    // reply; it is reported like any command, its argument in base64 where
    // the bytes are not UTF-8.
    let echo = all
        .iter()
        .find(|c| c["command"] == "ECHO")
        .expect("the closing ECHO");
    let arg = echo["args"][0].as_str().unwrap();
    match echo["binary_args"].as_array() {
        Some(binary) => {
            assert_eq!(binary, &[Value::from(0)]);
            assert_eq!(arg.len(), 28, "20 bytes in base64: {arg}");
        }
        None => assert_eq!(arg.len(), 20),
    }
    assert_eq!(echo["reply"]["type"], "bulk");
    assert!(common::of_type(&events, "decode.error").is_empty());
    assert_no_secret(&events);
}

#[test]
fn a_subscriber_sees_each_published_message_as_a_push_event() {
    let server = RedisServer::start();
    let proxy = proxy(&server);
    let mut subscriber = cli(proxy.addr)
        .args(["SUBSCRIBE", "orders"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // redis-cli prints the subscribe confirmation once subscribed.
    let mut lines = BufReader::new(subscriber.stdout.take().unwrap()).lines();
    let confirmed = lines
        .by_ref()
        .take(3)
        .map(|l| l.unwrap())
        .collect::<Vec<_>>();
    assert_eq!(confirmed, ["subscribe", "orders", "1"]);
    for n in 1..=3 {
        let out = run({
            let mut c = cli(proxy.addr);
            c.args(["PUBLISH", "orders", &format!("order-{n}")]);
            c
        });
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    }
    proxy.wait_for_event("the third message pushed", |e| {
        e["type"] == "redis.push" && e["push"]["payload"] == "order-3"
    });
    let _ = subscriber.kill();
    let _ = subscriber.wait();
    let events = proxy.stop();

    let pushes: Vec<&Value> = common::of_type(&events, "redis.push")
        .into_iter()
        .map(|e| &e["push"])
        .collect();
    let payloads: Vec<&str> = pushes
        .iter()
        .map(|p| p["payload"].as_str().unwrap())
        .collect();
    assert_eq!(payloads, ["order-1", "order-2", "order-3"]);
    for p in &pushes {
        assert_eq!(p["kind"], "message");
        assert_eq!(p["channel"], "orders");
        assert_eq!(p["source"], "api");
        assert_eq!(p["target"], "cache");
        assert!(p["size"].as_u64().unwrap() > 0);
    }
    let all = commands(&events);
    let subscribe = find(&all, "SUBSCRIBE", "orders");
    assert_eq!(subscribe["reply"]["type"], "array");
    assert_eq!(subscribe["reply"]["value"], r#"["subscribe","orders",1]"#);
    let publish = find(&all, "PUBLISH", "orders");
    assert_eq!(publish["args"][1], "order-1");
    assert_eq!(publish["reply"]["type"], "integer");
    assert_eq!(publish["reply"]["value"], "1");
    assert_no_secret(&events);
}

#[test]
fn redis_py_resp3_pipeline_and_transaction_field_by_field() {
    let server = RedisServer::start();
    let proxy = proxy(&server);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/redis_client.py");
    let out = run({
        let mut c = Command::new(common::peer_python());
        c.arg(script)
            .arg("127.0.0.1")
            .arg(proxy.addr.port().to_string())
            .arg(PASSWORD);
        c
    });
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["get"], "hello");
    assert_eq!(seen["transaction"], serde_json::json!([5, 4]));
    let events = proxy.stop();
    let all = commands(&events);

    // HELLO 3 with the credentials: the password is redacted, the reply is
    // the server's RESP3 map, and every later command on it is RESP3.
    let hello = all
        .iter()
        .find(|c| c["command"] == "HELLO")
        .expect("a HELLO");
    assert_eq!(
        hello["args"],
        serde_json::json!(["3", "AUTH", "default", "[redacted]"])
    );
    assert_eq!(hello["reply"]["type"], "map");
    assert!(hello["reply"]["value"]
        .as_str()
        .unwrap()
        .contains(r#""proto":3"#));

    let setname = find(&all, "CLIENT SETNAME", "shop-py");
    assert_eq!(setname["resp3"], true);
    assert_eq!(setname["reply"]["value"], "\"OK\"");

    let hgetall = find(&all, "HGETALL", "item:A-7");
    assert_eq!(hgetall["resp3"], true);
    assert_eq!(hgetall["reply"]["type"], "map");
    let map: Value = serde_json::from_str(hgetall["reply"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(map, serde_json::json!({"name": "anvil", "stock": "3"}));

    // The pipeline's three commands, each with its own reply.
    let p1 = find(&all, "SET", "p:1");
    assert_eq!(p1["reply"]["value"], "\"OK\"");
    // redis-py sends incr() as INCRBY key 1.
    let counter = find(&all, "INCRBY", "counter");
    assert_eq!(counter["args"][1], "1");
    assert_eq!(
        (&counter["reply"]["type"], &counter["reply"]["value"]),
        (&Value::from("integer"), &Value::from("1"))
    );
    let missing = find(&all, "LRANGE", "missing");
    assert_eq!(missing["reply"]["value"], "[]");

    // The transaction: MULTI, the queued commands (each with its element
    // of EXEC's reply), EXEC with the whole array.
    let incrby = find(&all, "INCRBY", "stock:A-7");
    assert_eq!(incrby["transaction"], true);
    assert_eq!(incrby["reply"]["value"], "5");
    let decr = find(&all, "DECRBY", "stock:A-7");
    assert_eq!(decr["transaction"], true);
    assert_eq!(decr["reply"]["value"], "4");
    let exec = all
        .iter()
        .find(|c| c["command"] == "EXEC")
        .expect("an EXEC");
    assert_eq!(exec["reply"]["type"], "array");
    assert_eq!(exec["reply"]["value"], "[5,4]");
    assert!(all.iter().any(|c| c["command"] == "MULTI"));

    // An error reply, its code apart.
    let wrong = all
        .iter()
        .find(|c| c["command"] == "INCRBY" && c["args"][0] == "greeting")
        .expect("INCRBY greeting");
    assert_eq!(wrong["error"]["code"], "ERR");
    assert!(seen["error"].as_str().unwrap().contains("not an integer"));

    // Client-side caching: the invalidation the server pushed to the
    // tracking connection is its own event.
    let tracking = find(&all, "CLIENT TRACKING", "ON");
    assert_eq!(tracking["reply"]["value"], "\"OK\"");
    let invalidate = common::of_type(&events, "redis.push")
        .into_iter()
        .map(|e| &e["push"])
        .find(|p| p["kind"] == "invalidate")
        .expect("an invalidation push");
    assert_eq!(invalidate["resp3"], true);
    assert!(invalidate["payload"].as_str().unwrap().contains("watched"));
    assert!(common::of_type(&events, "decode.error").is_empty());
    assert_no_secret(&events);
}

/// What a raw client gets back on one connection until the server closes
/// it (or 2 s pass with nothing more).
fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    got
}

/// A command, then a bulk length no client sends: Redis answers the
/// command, then a protocol error, and closes. Through the proxy the client
/// gets exactly that, every byte is counted, the command is an event and
/// the decoder gives up once, at the bad byte. A command cut short by the
/// client going away is counted and reported as nothing else.
#[test]
fn malformed_and_truncated_input_is_forwarded_and_reported_once() {
    let server = RedisServer::start();
    let proxy = proxy(&server);
    let auth = format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{PASSWORD}\r\n", PASSWORD.len());
    let bad = [auth.as_bytes(), b"*2\r\n$3\r\nGET\r\n$-5\r\nnope\r\n"].concat();
    let direct = exchange(server.addr, &bad);
    assert!(
        String::from_utf8_lossy(&direct).contains("-ERR Protocol error"),
        "{direct:?}"
    );
    let proxied = exchange(proxy.addr, &bad);
    assert_eq!(proxied, direct, "the server's answer, unchanged");

    let cut = [auth.as_bytes(), b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nhal"].concat();
    {
        let mut stream = std::net::TcpStream::connect(proxy.addr).unwrap();
        stream.write_all(&cut).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stream, &mut rest);
    }
    proxy.wait_for_event("both connections closed", |_| {
        common::of_type(&proxy.events(), "connection.closed").len() == 2
    });
    let events = proxy.stop();
    let mut closed: Vec<&Value> = common::of_type(&events, "connection.closed")
        .into_iter()
        .map(|e| &e["connection"])
        .collect();
    // In the order the connections were made: a connection's close may be
    // logged after the next one's.
    closed.sort_by_key(|c| c["id"].as_u64());
    assert_eq!(closed[0]["bytes_in"], bad.len() as u64);
    assert_eq!(closed[0]["bytes_out"], direct.len() as u64);
    assert_eq!(closed[1]["bytes_in"], cut.len() as u64);

    let errors: Vec<&Value> = common::of_type(&events, "decode.error")
        .into_iter()
        .map(|e| &e["decode_error"])
        .collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["protocol"], "redis");
    assert_eq!(errors[0]["connection"], closed[0]["id"]);
    assert_eq!(errors[0]["kind"], "malformed");
    assert_eq!(errors[0]["direction"], "client_to_target");
    // At the `-` of `$-5` in the second command.
    let at = auth.len() + "*2\r\n$3\r\nGET\r\n$".len();
    assert_eq!(errors[0]["offset"], at as u64);
    // The second connection's AUTH was answered and reported; its cut SET
    // was not. On the first, the AUTH still awaited its reply when the
    // decoder gave up (both came in one chunk), so it went with it.
    let all = commands(&events);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["command"], "AUTH");
    assert_eq!(all[0]["connection"], closed[1]["id"]);
    assert_eq!(all[0]["reply"]["value"], "\"OK\"");
    assert_no_secret(&events);
}
