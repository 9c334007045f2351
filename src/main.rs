// The proxy allocates and frees small objects (an event's strings and maps)
// on one thread and frees some on another (the event writer evicts what it
// has persisted); glibc's malloc serialises such frees on the owning arena's
// lock, mimalloc hands them back without one.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tapmesh::cli::main()
}
