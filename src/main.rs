fn main() -> std::process::ExitCode {
    tapmesh::cli::main()
}
