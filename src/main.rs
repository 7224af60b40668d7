fn main() -> std::process::ExitCode {
    // SAFETY: first thing in the process, before any thread exists.
    unsafe { mig::store::sqlite::keep_statement_journals_in_memory() };
    mig::cli::main()
}
