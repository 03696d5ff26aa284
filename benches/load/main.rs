//! `supermq-load`: an MQTT 3.1.1 load generator for any broker, in the spirit of emqtt-bench.
//!
//! Clients speak raw MQTT over TCP through `supermq::codec` (no client library), batch every
//! read (up to 256 KB, all packets handled in place) and every write (many packets per
//! syscall), and run on a single-threaded runtime by default so that the broker under test
//! gets the other cores. Every payload carries the publisher id, a sequence number and the
//! send time, so subscribers count loss, duplicates and reordering and record end-to-end
//! latency. See `--help` for the scenarios and `benches/compare.py` for side-by-side runs.
//!
//! Modules: [`cli`] (options), [`scenario`] (topologies and the traffic run), [`idle`] (idle
//! connections), [`client`] (setup and shared state), [`reader`] / [`writer`] (the two halves
//! of a connection), [`frame`] (wire helpers), [`histogram`], [`stats`] (accounting and
//! report), [`procfs`] (broker CPU and memory).

mod cli;
mod client;
mod frame;
mod histogram;
mod idle;
mod procfs;
mod reader;
mod scenario;
mod stats;
mod writer;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Scenario};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let fds = match cli.scenario {
        Scenario::Idle => cli.conns as u64,
        _ => (cli.pub_count() + cli.sub_count() + cli.stall_subs) as u64,
    };
    procfs::ensure_nofile(fds + idle::SPARE_FDS);

    let rt = if cli.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads as usize)
            .enable_all()
            .build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => return fail(&cli, &format!("cannot start the runtime: {e}")),
    };
    let out = rt.block_on(async {
        let addr = resolve(&cli).await?;
        Ok::<_, String>(match cli.scenario {
            Scenario::Idle => {
                let r = idle::run(&cli, addr).await;
                if cli.json {
                    r.json()
                } else {
                    r.text()
                }
            }
            _ => {
                let r = scenario::run(&cli, addr).await?;
                if cli.json {
                    r.json()
                } else {
                    r.text()
                }
            }
        })
    });
    // Connections still open are closed without waiting for the broker.
    rt.shutdown_background();
    match out {
        Ok(s) => {
            println!("{}", s.trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&cli, &e),
    }
}

async fn resolve(cli: &Cli) -> Result<SocketAddr, String> {
    tokio::net::lookup_host((cli.host.as_str(), cli.port))
        .await
        .map_err(|e| format!("cannot resolve {}: {e}", cli.host))?
        .next()
        .ok_or_else(|| format!("no address for {}", cli.host))
}

/// Reports a run that produced no measurement; in `--json` mode as a JSON object too, so a
/// driving script always has one line to parse.
fn fail(cli: &Cli, msg: &str) -> ExitCode {
    if cli.json {
        let mut j = stats::Json::default();
        j.str("scenario", cli.scenario.name());
        j.str("error", msg);
        println!("{}", j.finish());
    }
    eprintln!("supermq-load: {msg}");
    ExitCode::FAILURE
}
