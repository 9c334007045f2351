//! Asking a gRPC server for its schemas (gRPC server reflection).
//!
//! The proxy asks the *target* directly, never through its own listener, so
//! the question never shows up among the edge's events. It asks for the file
//! that defines a service, then for any file that one imports and the answer
//! left out, until it has them all (bounded). Servers speak v1 or only the
//! older v1alpha; v1 is tried first.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use prost::Message;
use prost_types::FileDescriptorProto;
use tonic::transport::Endpoint;

/// Most files fetched for one service (a service and its imports).
const MAX_FILES: usize = 256;

/// Serialized `FileDescriptorProto`s: the file defining `service` and every
/// file it imports, dependencies first.
pub async fn fetch_service_files(
    target: SocketAddr,
    service: &str,
    timeout: Duration,
) -> Result<Vec<Vec<u8>>, String> {
    let endpoint = Endpoint::from_shared(format!("http://{target}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(timeout)
        .timeout(timeout);
    let channel = tokio::time::timeout(timeout, endpoint.connect())
        .await
        .map_err(|_| format!("connecting to {target} for reflection timed out"))?
        .map_err(|e| format!("connecting to {target} for reflection: {e}"))?;
    match fetch_with(Version::V1, channel.clone(), service).await {
        Ok(files) => Ok(files),
        Err(v1) => fetch_with(Version::V1Alpha, channel, service)
            .await
            .map_err(|alpha| format!("reflection v1: {v1}; v1alpha: {alpha}")),
    }
}

#[derive(Clone, Copy)]
enum Version {
    V1,
    V1Alpha,
}

/// What to ask for next.
enum Ask {
    Symbol(String),
    File(String),
}

async fn fetch_with(
    version: Version,
    channel: tonic::transport::Channel,
    service: &str,
) -> Result<Vec<Vec<u8>>, String> {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut queue = VecDeque::from([Ask::Symbol(service.to_string())]);
    while let Some(ask) = queue.pop_front() {
        if files.len() >= MAX_FILES {
            return Err(format!("more than {MAX_FILES} files for {service}"));
        }
        let answer = ask_once(version, channel.clone(), ask).await?;
        for raw in answer {
            let file = FileDescriptorProto::decode(&raw[..])
                .map_err(|e| format!("a malformed file descriptor: {e}"))?;
            let name = file.name.clone().unwrap_or_default();
            for dep in &file.dependency {
                if !files.contains_key(dep) {
                    queue.push_back(Ask::File(dep.clone()));
                }
            }
            files.insert(name, raw);
        }
        queue.retain(|ask| !matches!(ask, Ask::File(name) if files.contains_key(name)));
    }
    Ok(dependencies_first(files))
}

/// Orders files so each comes after the files it imports.
fn dependencies_first(files: BTreeMap<String, Vec<u8>>) -> Vec<Vec<u8>> {
    let parsed: BTreeMap<String, (Vec<String>, Vec<u8>)> = files
        .into_iter()
        .map(|(name, raw)| {
            let deps = FileDescriptorProto::decode(&raw[..])
                .map(|f| f.dependency)
                .unwrap_or_default();
            (name, (deps, raw))
        })
        .collect();
    let mut done = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    fn visit(
        name: &str,
        parsed: &BTreeMap<String, (Vec<String>, Vec<u8>)>,
        done: &mut std::collections::BTreeSet<String>,
        out: &mut Vec<Vec<u8>>,
    ) {
        if !done.insert(name.to_string()) {
            return;
        }
        if let Some((deps, raw)) = parsed.get(name) {
            for dep in deps {
                visit(dep, parsed, done, out);
            }
            out.push(raw.clone());
        }
    }
    for name in parsed.keys() {
        visit(name, &parsed, &mut done, &mut out);
    }
    out
}

/// One request on the bidirectional reflection stream; the file descriptors
/// of the answer.
async fn ask_once(
    version: Version,
    channel: tonic::transport::Channel,
    ask: Ask,
) -> Result<Vec<Vec<u8>>, String> {
    macro_rules! ask_with {
        ($pb:path) => {{
            use pb::server_reflection_request::MessageRequest;
            use pb::server_reflection_response::MessageResponse;
            use $pb as pb;
            let message_request = match ask {
                Ask::Symbol(s) => MessageRequest::FileContainingSymbol(s),
                Ask::File(f) => MessageRequest::FileByFilename(f),
            };
            let request = pb::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(message_request),
            };
            let mut client = pb::server_reflection_client::ServerReflectionClient::new(channel);
            let mut responses = client
                .server_reflection_info(tokio_stream_once(request))
                .await
                .map_err(|s| format!("{}: {}", s.code(), s.message()))?
                .into_inner();
            let response = responses
                .message()
                .await
                .map_err(|s| format!("{}: {}", s.code(), s.message()))?
                .ok_or("the reflection stream ended without an answer")?;
            match response.message_response {
                Some(MessageResponse::FileDescriptorResponse(files)) => {
                    Ok(files.file_descriptor_proto)
                }
                Some(MessageResponse::ErrorResponse(e)) => Err(format!(
                    "reflection error {}: {}",
                    e.error_code, e.error_message
                )),
                _ => Err("an unexpected reflection answer".to_string()),
            }
        }};
    }
    match version {
        Version::V1 => ask_with!(tonic_reflection::pb::v1),
        Version::V1Alpha => ask_with!(tonic_reflection::pb::v1alpha),
    }
}

/// A request stream of one message: servers answer each request on the
/// stream and end the call once the client's side is closed.
fn tokio_stream_once<T: Send + 'static>(
    item: T,
) -> impl tonic::codegen::tokio_stream::Stream<Item = T> {
    tonic::codegen::tokio_stream::iter([item])
}
