//! A proxy node of the running graph as a [`ProxyConfig`]: its decoder by
//! the target ingress's protocol, and for HTTP the gRPC schemas its
//! `.proto` files and descriptor sets give.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::ProxyConfig;
use crate::graph::ProxyNode;
use crate::spec::Protocol;

impl ProxyConfig {
    /// The configuration of `node`'s proxy, forwarding to `target`; files
    /// are resolved against `base_dir`. An unreadable or invalid schema is
    /// an error saying which.
    pub fn for_node(node: &ProxyNode, base_dir: &Path, target: SocketAddr) -> Result<Self, String> {
        let source = node.source.as_str();
        let name = node.target.as_str();
        let mut config = match node.protocol {
            Protocol::Tcp => ProxyConfig::tcp(source, name, target),
            Protocol::Http | Protocol::Grpc => {
                let registry = schemas(node, base_dir)?;
                ProxyConfig::http(source, name, target, node.capture_limit)
                    .with_grpc(registry, true)
            }
            Protocol::Kafka => ProxyConfig::kafka(source, name, target, node.capture_limit),
            Protocol::Postgres => ProxyConfig::postgres(source, name, target, node.capture_limit),
            Protocol::Redis => ProxyConfig::redis(source, name, target, node.capture_limit),
        };
        config.ingress = node.ingress.as_str().into();
        Ok(config)
    }
}

fn schemas(
    node: &ProxyNode,
    base_dir: &Path,
) -> Result<tapmesh_protocols::grpc::SchemaRegistry, String> {
    let mut registry = tapmesh_protocols::grpc::SchemaRegistry::new();
    let resolve = |p: &PathBuf| base_dir.join(p);
    for set in &node.proto.descriptor_sets {
        let bytes = std::fs::read(resolve(set))
            .map_err(|e| format!("reading {}: {e}", resolve(set).display()))?;
        registry
            .add_descriptor_set(&bytes)
            .map_err(|e| format!("{}: {e}", set.display()))?;
    }
    if !node.proto.files.is_empty() {
        let files: Vec<PathBuf> = node.proto.files.iter().map(resolve).collect();
        let mut includes: Vec<PathBuf> = node.proto.include.iter().map(resolve).collect();
        if includes.is_empty() {
            includes = files
                .iter()
                .filter_map(|f| f.parent().map(Path::to_path_buf))
                .collect();
        }
        registry
            .add_proto_files(&files, &includes)
            .map_err(|e| format!("compiling the .proto files of {}: {e}", node.target))?;
    }
    Ok(registry)
}
