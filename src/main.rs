fn main() -> std::process::ExitCode {
    mig::cli::main()
}
