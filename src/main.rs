fn main() -> std::process::ExitCode {
    // Rust ignores SIGPIPE, so a write to a closed pipe (`mig status | head`) fails, and
    // `println!` panics on it with a backtrace. A command-line tool ends quietly there;
    // a run cut so stops as a killed one does, every committed batch whole.
    // SAFETY: first thing in the process, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    mig::cli::main()
}
