//! The `supermq` command: parse the command line, load the configuration, set up logging and
//! signal handling, then run the broker until SIGINT or SIGTERM (SIGHUP reloads the password
//! and ACL files and the TLS certificates). Under systemd (`Type=notify`) it reports
//! readiness once serving and the start of a shutdown. `supermq passwd` manages password files instead, and `supermq store check`
//! / `repair` a durable store directory.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use supermq::config::Config;

// mimalloc: the hot path allocates and frees many small objects (messages, queue entries)
// across threads, where it is markedly cheaper than the system allocator and returns large
// buffers without the mmap/munmap churn seen with glibc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A clustered MQTT 5, 3.1.1 and 3.1 broker.
#[derive(Debug, Parser)]
#[command(name = "supermq", version, about)]
struct Cli {
    /// Configuration file (TOML). Without it the embedded defaults are used (0.0.0.0:1883).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the configuration (and the certificate, key, password and ACL files it names),
    /// then exit.
    #[arg(short = 't', long = "test-config")]
    test_config: bool,
    /// Port of the plain TCP listener, overriding the configuration (as `mosquitto -p`).
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    port: Option<u16>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Add or update a user in a password file (Mosquitto's format, like mosquitto_passwd).
    Passwd(PasswdArgs),
    /// Check or repair a durable store directory (no broker may be running on it).
    #[command(subcommand)]
    Store(StoreCommand),
    /// GET a health endpoint of the HTTP API; exit 0 on a 2xx answer, 1 otherwise (for a
    /// container HEALTHCHECK).
    Healthcheck(HealthArgs),
}

#[derive(Debug, Args)]
struct HealthArgs {
    /// The endpoint (http:// only).
    #[arg(long, default_value = "http://127.0.0.1:18083/readyz")]
    url: String,
    /// API key as KEY:SECRET, sent with HTTP Basic auth (not needed with
    /// http.anonymous_read = true). Also read from SUPERMQ_HEALTHCHECK_USER.
    #[arg(long, env = "SUPERMQ_HEALTHCHECK_USER", hide_env_values = true)]
    user: Option<String>,
    /// How long to wait for the answer.
    #[arg(long, default_value = "5", value_name = "SECONDS")]
    timeout: u64,
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Read every record and report what cannot be read; exit 1 if anything is wrong.
    Check {
        /// The store directory (`[persistence] dir`).
        dir: PathBuf,
    },
    /// Move every record that cannot be read aside (into the store's quarantine, never
    /// deleting it), so the rest opens.
    Repair {
        /// The store directory (`[persistence] dir`).
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
struct PasswdArgs {
    /// Create the file, overwriting it if it exists.
    #[arg(short = 'c')]
    create: bool,
    /// Take the password from the command line instead of one line of standard input.
    #[arg(short = 'b', requires = "password")]
    batch: bool,
    /// The password file.
    file: PathBuf,
    /// The username.
    user: String,
    /// The password (with -b only).
    password: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Passwd(args)) => return passwd(args),
        Some(Command::Store(cmd)) => return store(cmd),
        Some(Command::Healthcheck(args)) => return healthcheck(args),
        None => {}
    }
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
        // Also load the files the config points at (certificates, keys, passwords, ACL).
        if let Err(e) = supermq::preflight(&config) {
            eprintln!("supermq: {e}");
            return ExitCode::from(2);
        }
        println!("supermq: configuration ok");
        return ExitCode::SUCCESS;
    }
    // RUST_LOG, when set, overrides the configured level.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.level));
    // Logs go to standard error (systemd and containers collect it), coloured only on a
    // terminal.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    // Before the runtime and the connection threads allocate their memory.
    if let Err(e) = supermq::engine::set_huge_pages(config.engine.transparent_huge_pages) {
        tracing::warn!("cannot set engine.transparent_huge_pages: {e}");
    }
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
        // Installed before the broker starts: SIGHUP's default action ends the process.
        let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
        let broker = supermq::Broker::start(config, shutdown.clone()).await?;
        match hup {
            Ok(hup) => drop(tokio::spawn(reload_on_hup(hup, broker.reloader()))),
            Err(e) => tracing::error!("cannot install the SIGHUP handler: {e}"),
        }
        // Listeners are bound, the store is open and recovered, routes listen.
        tell_systemd(supermq::readiness::READY);
        tokio::spawn(async move {
            shutdown.cancelled().await;
            tell_systemd(supermq::readiness::STOPPING);
        });
        broker.stopped().await;
        Ok::<(), supermq::StartError>(())
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

/// Sends a state to systemd when run with `Type=notify`; a failure is logged, not fatal.
fn tell_systemd(state: &str) {
    if let Err(e) = supermq::readiness::notify(state) {
        tracing::warn!("cannot notify systemd ({state}) through NOTIFY_SOCKET: {e}");
    }
}

/// Reloads the password and ACL files and the TLS certificates on each SIGHUP; a part whose
/// files are bad keeps its previous state, the others take effect.
async fn reload_on_hup(mut hup: tokio::signal::unix::Signal, reloader: supermq::reload::Reloader) {
    while hup.recv().await.is_some() {
        // File reads and certificate parsing: off the runtime's worker threads.
        let r = reloader.clone();
        let outcome = match tokio::task::spawn_blocking(move || r.reload()).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::error!("SIGHUP: reload task failed: {e}");
                continue;
            }
        };
        match outcome {
            Ok(()) => tracing::info!("SIGHUP: reloaded {}", reloader.describe()),
            Err(errors) => {
                for e in &errors.0 {
                    tracing::error!("SIGHUP: reload failed, keeping the previous one: {e}");
                }
            }
        }
    }
}

/// `supermq passwd [-c] [-b] FILE USER [PASSWORD]`.
fn passwd(args: PasswdArgs) -> ExitCode {
    let password = match (args.batch, args.password) {
        (true, Some(p)) => p,
        (false, Some(_)) => {
            eprintln!("supermq passwd: a password on the command line needs -b");
            return ExitCode::from(2);
        }
        (_, None) => {
            let mut line = String::new();
            if let Err(e) = std::io::stdin().read_line(&mut line) {
                eprintln!("supermq passwd: cannot read the password: {e}");
                return ExitCode::FAILURE;
            }
            line.trim_end_matches(['\n', '\r']).to_owned()
        }
    };
    match supermq::auth::passwd::set_password(&args.file, &args.user, &password, args.create) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("supermq passwd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `supermq healthcheck [--url URL] [--user KEY:SECRET] [--timeout SECONDS]`.
fn healthcheck(args: HealthArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("supermq healthcheck: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let timeout = std::time::Duration::from_secs(args.timeout.max(1));
    match rt.block_on(supermq::healthcheck::check(
        &args.url,
        args.user.as_deref(),
        timeout,
    )) {
        Ok(status) => {
            println!("supermq healthcheck: {} {status}", args.url);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("supermq healthcheck: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `supermq store check|repair DIR`.
fn store(cmd: StoreCommand) -> ExitCode {
    use supermq::store::durable;
    match cmd {
        StoreCommand::Check { dir } => match durable::check(&dir) {
            Ok(report) => {
                println!("{report}");
                if report.is_clean() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("supermq: {e}");
                ExitCode::from(2)
            }
        },
        StoreCommand::Repair { dir } => match durable::repair(&dir) {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("supermq: {e}");
                ExitCode::from(2)
            }
        },
    }
}
