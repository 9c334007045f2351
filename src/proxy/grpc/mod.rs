//! gRPC on HTTP/2 edges: schemas from files or from the target's
//! reflection service, and calls turned into `grpc.call.completed`.

pub mod reflection;
