//! The `supermq` command: parse the command line, load the configuration, set up logging and
//! signal handling, then run the broker until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use supermq::config::Config;

// mimalloc: the hot path allocates and frees many small objects (messages, queue entries)
// across threads, where it is markedly cheaper than the system allocator and returns large
// buffers without the mmap/munmap churn seen with glibc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A clustered MQTT 3.1.1 broker.
#[derive(Debug, Parser)]
#[command(name = "supermq", version, about)]
struct Cli {
    /// Configuration file (TOML). Without it the embedded defaults are used (0.0.0.0:1883).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the configuration and exit.
    #[arg(short = 't', long = "test-config")]
    test_config: bool,
    /// Port of the plain TCP listener, overriding the configuration (as `mosquitto -p`).
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    port: Option<u16>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = match &cli.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("supermq: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    if let Some(port) = cli.port {
        match config
            .listeners
            .iter_mut()
            .find(|l| l.protocol == supermq::config::ListenerProtocol::Tcp)
        {
            Some(l) => l.bind.set_port(port),
            None => {
                eprintln!("supermq: -p given but no tcp listener is configured");
                return ExitCode::from(2);
            }
        }
    }
    if cli.test_config {
        println!("supermq: configuration ok");
        return ExitCode::SUCCESS;
    }
    // RUST_LOG, when set, overrides the configured level.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();

    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if config.engine.worker_threads > 0 {
        rt.worker_threads(config.engine.worker_threads);
    }
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("supermq: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    let result = rt.block_on(async {
        tokio::spawn(watch_signals(shutdown.clone()));
        supermq::run(config, shutdown).await
    });
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("supermq: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn watch_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
    shutdown.cancel();
}
