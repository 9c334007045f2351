//! `tapmesh fault add|list|clear ENV …`: an environment's faults, through
//! the daemon's (or `tapmesh up`'s web view's) `/environments/{id}/faults`.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{json, Map, Value};

use super::source::{block_on, resolve, send_json};

#[derive(Debug, Args)]
pub struct FaultArgs {
    #[command(subcommand)]
    command: FaultCommand,
}

#[derive(Debug, Subcommand)]
enum FaultCommand {
    /// Add a fault to an edge: `tapmesh fault add ENV orders->inventory
    /// abort -a http_status=503 --match 'http.path == "/reserve"' --first 2`.
    Add(AddArgs),
    /// Every edge's faults.
    List(EnvArg),
    /// Remove faults: one (`--name`), an edge's, or all of them.
    Clear(ClearArgs),
}

#[derive(Debug, Args)]
struct EnvArg {
    /// The environment: an id on the daemon at 127.0.0.1:7411, or an
    /// `http://HOST:PORT/environments/ID` address (the daemon's, or the
    /// web view's address `tapmesh up` printed).
    #[arg(value_name = "ENV")]
    environment: String,
}

#[derive(Debug, Args)]
struct AddArgs {
    #[command(flatten)]
    env: EnvArg,
    /// The edge, `source->target`.
    edge: String,
    /// latency, bandwidth, slow_close, timeout, reset_peer, slicer,
    /// limit_data, down (connections); delay, abort, drop (requests).
    #[arg(value_name = "TYPE")]
    kind: String,
    /// An attribute, `name=value` (numbers as numbers): `-a latency=100
    /// -a jitter=10`, `-a http_status=503 -a body='try later'`.
    #[arg(short = 'a', long = "attribute", value_name = "NAME=VALUE")]
    attributes: Vec<String>,
    /// Its name on the edge (default: its type).
    #[arg(long)]
    name: Option<String>,
    /// `upstream` (client → target) or `downstream` (the default).
    #[arg(long)]
    stream: Option<String>,
    /// The chance it applies, 0 to 1.
    #[arg(long)]
    toxicity: Option<f64>,
    /// Request faults: the requests it picks, in the query language.
    #[arg(long = "match", value_name = "QUERY")]
    when: Option<String>,
    /// Request faults: only the first N it matches.
    #[arg(long)]
    first: Option<u64>,
    /// Request faults: only every Nth it matches.
    #[arg(long)]
    every: Option<u64>,
}

#[derive(Debug, Args)]
struct ClearArgs {
    #[command(flatten)]
    env: EnvArg,
    /// Only this edge's faults.
    edge: Option<String>,
    /// Only the fault of this name (with EDGE).
    #[arg(long)]
    name: Option<String>,
}

pub fn run(args: FaultArgs) -> Result<bool> {
    match args.command {
        FaultCommand::Add(add) => {
            let body = fault_json(&add)?;
            let answer = call(&add.env, Method::POST, "", Some(&body))?;
            println!("added to {}: {}", add.edge, one_line(&answer));
        }
        FaultCommand::List(env) => {
            let answer = call(&env, Method::GET, "", None)?;
            let Value::Object(edges) = answer else {
                bail!("the daemon answered no list of edges");
            };
            for (edge, faults) in edges {
                let faults = faults.as_array().cloned().unwrap_or_default();
                if faults.is_empty() {
                    println!("{edge}: no faults");
                }
                for fault in faults {
                    println!("{edge}: {}", one_line(&fault));
                }
            }
        }
        FaultCommand::Clear(clear) => {
            if clear.name.is_some() && clear.edge.is_none() {
                bail!("--name needs the fault's EDGE too");
            }
            let mut query = Vec::new();
            if let Some(edge) = &clear.edge {
                query.push(format!("edge={}", encode(edge)));
            }
            if let Some(name) = &clear.name {
                query.push(format!("name={}", encode(name)));
            }
            let suffix = if query.is_empty() {
                String::new()
            } else {
                format!("?{}", query.join("&"))
            };
            let answer = call(&clear.env, Method::DELETE, &suffix, None)?;
            println!("removed {} fault(s)", answer["removed"]);
        }
    }
    Ok(true)
}

fn call(env: &EnvArg, method: Method, suffix: &str, body: Option<&Value>) -> Result<Value> {
    let (authority, environment) = super::control::where_is(&env.environment)?;
    block_on(async {
        let id = resolve(&authority, environment.as_deref()).await?;
        let path = format!("/environments/{id}/faults{suffix}");
        send_json(&authority, method, &path, body).await
    })
}

/// The fault as the daemon takes it.
fn fault_json(add: &AddArgs) -> Result<Value> {
    let mut attributes = Map::new();
    for pair in &add.attributes {
        let Some((name, value)) = pair.split_once('=') else {
            bail!("-a {pair:?}: write NAME=VALUE");
        };
        let value = match serde_json::from_str::<Value>(value) {
            Ok(number @ Value::Number(_)) => number,
            _ => Value::String(value.to_string()),
        };
        attributes.insert(name.to_string(), value);
    }
    let mut fault = json!({"edge": add.edge, "type": add.kind, "attributes": attributes});
    let options = [
        ("name", add.name.as_ref().map(|v| json!(v))),
        ("stream", add.stream.as_ref().map(|v| json!(v))),
        ("toxicity", add.toxicity.map(|v| json!(v))),
        ("match", add.when.as_ref().map(|v| json!(v))),
        ("first", add.first.map(|v| json!(v))),
        ("every", add.every.map(|v| json!(v))),
    ];
    for (key, value) in options {
        if let Some(value) = value {
            fault[key] = value;
        }
    }
    Ok(fault)
}

/// `name (type) key=value …` for one fault.
fn one_line(fault: &Value) -> String {
    let mut line = format!(
        "{} ({})",
        fault["name"].as_str().unwrap_or("?"),
        fault["type"].as_str().unwrap_or("?")
    );
    if let Some(Value::Object(attributes)) = fault.get("attributes") {
        for (k, v) in attributes {
            line.push_str(&format!(" {k}={v}"));
        }
    }
    for key in ["stream", "toxicity", "match", "first", "every"] {
        if let Some(v) = fault.get(key) {
            line.push_str(&format!(" {key}={v}"));
        }
    }
    line
}

/// Percent-encodes what a query value cannot hold as is (`->` stays).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
