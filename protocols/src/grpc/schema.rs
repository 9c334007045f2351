//! Where message schemas come from: a registry of protobuf descriptors.
//!
//! One [`prost_reflect::DescriptorPool`] holds every file the registry was
//! given, and each file remembers how it arrived ([`SchemaSource`]), which is
//! what `decoded_with` reports. Files arrive three ways:
//!
//! - a `FileDescriptorSet` (`protoc --descriptor_set_out --include_imports`,
//!   or `buf build -o`) with [`SchemaRegistry::add_descriptor_set`];
//! - `.proto` files compiled in-process by `protox`, with
//!   [`SchemaRegistry::add_proto_files`] — the only function here that reads
//!   the disk, an explicit loader the runtime calls at start-up;
//! - `FileDescriptorProto` bytes as gRPC server reflection returns them, with
//!   [`SchemaRegistry::add_reflection_files`]: a file whose imports have not
//!   arrived yet waits until they do, so answers can be fed as they come.
//!
//! Lookups ([`SchemaRegistry::method`]) never do I/O. The registry is cheap
//! to clone (the pool is shared, copied only when a clone is added to), so a
//! runtime can publish a snapshot to decoding threads and swap in a new one
//! after reflection has taught it more.

use std::collections::HashMap;
use std::path::Path;

use prost::Message;
use prost_reflect::{DescriptorPool, MessageDescriptor};
use prost_types::{FileDescriptorProto, FileDescriptorSet};

/// How a schema reached the registry, as `decoded_with` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaSource {
    /// A descriptor set or `.proto` files given in the environment's spec.
    DescriptorSet,
    /// The service's own gRPC server reflection.
    Reflection,
}

/// Which source decoded a call's messages (`decoded_with` in the event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodedWith {
    /// A descriptor set or `.proto` files given in the environment's spec.
    DescriptorSet,
    /// The service's own gRPC server reflection.
    Reflection,
    /// No schema knew the method: see [`super::decode_schemaless`].
    Schemaless,
}

impl DecodedWith {
    /// `descriptor_set`, `reflection` or `schemaless`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DescriptorSet => "descriptor_set",
            Self::Reflection => "reflection",
            Self::Schemaless => "schemaless",
        }
    }
}

impl From<SchemaSource> for DecodedWith {
    fn from(source: SchemaSource) -> Self {
        match source {
            SchemaSource::DescriptorSet => Self::DescriptorSet,
            SchemaSource::Reflection => Self::Reflection,
        }
    }
}

/// Why schemas could not be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError(pub String);

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SchemaError {}

/// The request and response types of one method, and where they came from.
#[derive(Debug, Clone)]
pub struct MethodSchema {
    /// The request message type.
    pub input: MessageDescriptor,
    /// The response message type.
    pub output: MessageDescriptor,
    /// Where the descriptors came from.
    pub source: SchemaSource,
}

/// What feeding reflection answers achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReflectionProgress {
    /// Files now in the registry, by name.
    pub added: Vec<String>,
    /// Imports still missing (sorted, deduplicated): ask reflection for
    /// these (`file_by_filename`); the files that need them wait.
    pub missing: Vec<String>,
    /// Files that could not be used, each `name: reason`.
    pub refused: Vec<String>,
}

/// Reflection files kept waiting for their imports, at most. A server that
/// keeps sending files that never resolve cannot grow the registry further.
pub const MAX_WAITING_FILES: usize = 4096;

/// Protobuf descriptors by full name, for decoding messages.
#[derive(Debug, Clone, Default)]
pub struct SchemaRegistry {
    pool: DescriptorPool,
    /// Each file's source, by file name.
    sources: HashMap<String, SchemaSource>,
    /// Reflection files waiting for their imports, by file name.
    waiting: HashMap<String, FileDescriptorProto>,
}

impl SchemaRegistry {
    /// An empty registry: every call decodes schema-less until schemas are
    /// added.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding one encoded `FileDescriptorSet`.
    pub fn from_descriptor_set(bytes: &[u8]) -> Result<Self, SchemaError> {
        let mut registry = Self::new();
        registry.add_descriptor_set(bytes)?;
        Ok(registry)
    }

    /// A registry of `.proto` files compiled with `protox`; see
    /// [`Self::add_proto_files`].
    pub fn from_proto_files(
        files: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<Self, SchemaError> {
        let mut registry = Self::new();
        registry.add_proto_files(files, includes)?;
        Ok(registry)
    }

    /// Adds an encoded `FileDescriptorSet` (it must hold every file its
    /// files import, or those must already be here). A file already in the
    /// registry under the same name is kept as it was.
    pub fn add_descriptor_set(&mut self, bytes: &[u8]) -> Result<(), SchemaError> {
        let set = FileDescriptorSet::decode(bytes)
            .map_err(|e| SchemaError(format!("not a FileDescriptorSet: {e}")))?;
        self.add_files(set.file, SchemaSource::DescriptorSet)
    }

    /// Compiles `.proto` files with `protox` and adds them with everything
    /// they import. Files are found as `protoc` finds them: relative to an
    /// include directory (or a path inside one); `google/protobuf/*.proto`
    /// are built in. This reads the files from disk.
    pub fn add_proto_files(
        &mut self,
        files: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<(), SchemaError> {
        let set = protox::Compiler::new(includes)
            .and_then(|mut compiler| {
                compiler.include_imports(true).open_files(files)?;
                Ok(compiler.file_descriptor_set())
            })
            .map_err(|e| SchemaError(format!("cannot compile .proto files: {}", describe(&e))))?;
        self.add_files(set.file, SchemaSource::DescriptorSet)
    }

    /// Adds encoded `FileDescriptorProto`s as gRPC reflection returns them
    /// (`file_descriptor_response.file_descriptor_proto`), in any order,
    /// across any number of calls. A file whose imports are neither here nor
    /// in the same batch waits (up to [`MAX_WAITING_FILES`]); the imports it
    /// lacks are listed in the result. Files already here are skipped. A
    /// file that cannot be used (undecodable, invalid) is refused alone, and
    /// named with its reason: the others still go in.
    pub fn add_reflection_files<B: AsRef<[u8]>>(
        &mut self,
        files: impl IntoIterator<Item = B>,
    ) -> ReflectionProgress {
        let mut progress = ReflectionProgress::default();
        for (index, bytes) in files.into_iter().enumerate() {
            let file = match FileDescriptorProto::decode(bytes.as_ref()) {
                Ok(file) => file,
                Err(e) => {
                    progress
                        .refused
                        .push(format!("file {index}: not a FileDescriptorProto: {e}"));
                    continue;
                }
            };
            let name = file.name().to_string();
            if self.pool.get_file_by_name(&name).is_some() || self.waiting.contains_key(&name) {
                continue;
            }
            if self.waiting.len() >= MAX_WAITING_FILES {
                progress.refused.push(format!(
                    "{name}: more than {MAX_WAITING_FILES} files already wait for imports"
                ));
                continue;
            }
            self.waiting.insert(name, file);
        }
        // Level by level of the import graph: the waiting files whose
        // imports are all here go in together, until none can.
        loop {
            let mut level: Vec<String> = self
                .waiting
                .iter()
                .filter(|(_, file)| {
                    file.dependency
                        .iter()
                        .all(|dep| self.pool.get_file_by_name(dep).is_some())
                })
                .map(|(name, _)| name.clone())
                .collect();
            if level.is_empty() {
                break;
            }
            level.sort();
            let files: Vec<FileDescriptorProto> = level
                .iter()
                .filter_map(|name| self.waiting.remove(name))
                .collect();
            if self
                .add_files(files.clone(), SchemaSource::Reflection)
                .is_ok()
            {
                progress.added.extend(level);
                continue;
            }
            // Something in the level is invalid: find out what, file by file.
            for file in files {
                let name = file.name().to_string();
                match self.add_files(vec![file], SchemaSource::Reflection) {
                    Ok(()) => progress.added.push(name),
                    Err(e) => progress.refused.push(format!("{name}: {e}")),
                }
            }
        }
        progress.missing = self
            .waiting
            .values()
            .flat_map(|file| file.dependency.iter())
            .filter(|dep| {
                self.pool.get_file_by_name(dep).is_none() && !self.waiting.contains_key(*dep)
            })
            .cloned()
            .collect();
        progress.missing.sort();
        progress.missing.dedup();
        progress.added.sort();
        progress
    }

    fn add_files(
        &mut self,
        files: Vec<FileDescriptorProto>,
        source: SchemaSource,
    ) -> Result<(), SchemaError> {
        let names: Vec<String> = files
            .iter()
            .map(|f| f.name().to_string())
            .filter(|name| self.pool.get_file_by_name(name).is_none())
            .collect();
        self.pool
            .add_file_descriptor_protos(files)
            .map_err(|e| SchemaError(format!("invalid descriptors: {e}")))?;
        for name in names {
            self.sources.entry(name).or_insert(source);
        }
        Ok(())
    }

    /// The schema of `method` of `service` (`pkg.Service`), if any file here
    /// defines the service and that method.
    pub fn method(&self, service: &str, method: &str) -> Option<MethodSchema> {
        let service = self.pool.get_service_by_name(service)?;
        let method = service.methods().find(|m| m.name() == method)?;
        let source = self
            .sources
            .get(service.parent_file().name())
            .copied()
            .unwrap_or(SchemaSource::DescriptorSet);
        Some(MethodSchema {
            input: method.input(),
            output: method.output(),
            source,
        })
    }

    /// Whether a service of that full name is known (the runtime asks
    /// reflection about those that are not).
    pub fn knows_service(&self, service: &str) -> bool {
        self.pool.get_service_by_name(service).is_some()
    }

    /// The underlying pool, for callers that want to look further.
    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }
}

/// A compile error that names the file and the place but never quotes the
/// file: a parse error's text can be any file's content (a spec may name
/// a file that is not a `.proto` at all), and errors reach API clients.
fn describe(error: &protox::Error) -> String {
    use miette::Diagnostic;
    if !error.is_parse() {
        return error.to_string();
    }
    let file = error.file().unwrap_or("a file");
    let place = error
        .labels()
        .and_then(|mut labels| labels.next())
        .and_then(|label| {
            let source = error.source_code()?;
            let span = source.read_span(label.inner(), 0, 0).ok()?;
            Some(format!(
                " at line {}, column {}",
                span.line() + 1,
                span.column() + 1
            ))
        })
        .unwrap_or_default();
    format!("{file} is not valid protobuf source{place}")
}

#[cfg(test)]
mod compile_error_tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_protobuf_is_named_but_never_quoted() {
        let dir = std::env::temp_dir().join(format!("tapmesh-schema-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("passwd");
        std::fs::write(&file, "root:x:0:0:root:/root:/bin/bash\nsecret-line\n").unwrap();
        let err = SchemaRegistry::new()
            .add_proto_files(&[&file], &[&dir])
            .unwrap_err()
            .to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            err.contains("passwd is not valid protobuf source at line 1"),
            "{err}"
        );
        for secret in ["root", "bash", "secret"] {
            assert!(!err.contains(secret), "{secret:?} quoted in {err:?}");
        }
    }
}
