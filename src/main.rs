//! `portier`: parse the command line and hand over to [`portier::cli::run`].

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Before anything creates a file (configuration, database and its WAL,
    // keys): owner-only, as systemd's UMask=0077 would. The runtime started
    // above creates none.
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::RWXG | rustix::fs::Mode::RWXO);
    let cli = portier::cli::Cli::parse();
    match portier::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
