//! The connection threads: one single-threaded tokio runtime per worker thread, each with
//! its own I/O driver and timers. A plain TCP connection is handed to one of them
//! (round-robin) when it is accepted and stays on that thread for its whole life.
//!
//! Why not one work-stealing runtime: on a machine whose cores are shared with the clients
//! (the benchmarks, a gateway box), a work-stealing runtime wakes its idle workers to look
//! for work every time a connection wakes another (a subscriber it published to): measured,
//! about one futex/eventfd wake-up per two socket writes, and the context switches that
//! follow. Here a connection wakes another thread only when the session it delivered to lives
//! there and was idle; connections on one thread never wake anyone.
//!
//! Shutdown is passed in: each thread stops taking work when the token is cancelled, lets its
//! connections finish (they are kicked by the broker) for at most the drain deadline, then
//! ends.
//!
//! Also here: the one process-wide memory setting of `[engine]`, transparent huge pages
//! ([`set_huge_pages`]), which the binary applies before any thread starts.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Applies `engine.transparent_huge_pages` to the whole process (the kernel keeps the flag
/// on the address space, and fork and exec inherit it). Called by the binary only: a program
/// that embeds the broker decides this for itself.
///
/// Why off by default: with THP the allocator's arenas are backed by 2 MB pages, and the
/// first touch of one stalls the touching thread while the kernel (and, in a VM, the host)
/// provides it. Measured at 10,000 msgs/s 1:1 (6 runs each, `supermq-load`): p99.9 went from
/// 5.5-17.8 ms with THP to 0.26-0.47 ms without, p99 from 233 to 174 us; throughput within
/// noise. The system-wide setting is left alone.
#[cfg(target_os = "linux")]
pub fn set_huge_pages(allowed: bool) -> std::io::Result<()> {
    rustix::thread::disable_transparent_huge_pages(!allowed).map_err(std::io::Error::from)
}

/// Elsewhere there is nothing to set.
#[cfg(not(target_os = "linux"))]
pub fn set_huge_pages(_allowed: bool) -> std::io::Result<()> {
    Ok(())
}

/// The pool of connection threads.
#[derive(Debug)]
pub struct ConnThreads {
    threads: Vec<ConnThread>,
    next: AtomicUsize,
}

/// Work handed to a connection thread: it builds and spawns the connection's task there, so
/// the task and everything the connection allocates belong to that thread's allocator heap
/// (allocating on the accepting thread and freeing on another left memory stranded in the
/// accepting thread's heap: about 400 bytes per idle connection, measured).
type Job = Box<dyn FnOnce(&TaskTracker) + Send>;

#[derive(Debug)]
struct ConnThread {
    jobs: mpsc::UnboundedSender<Job>,
}

impl ConnThreads {
    /// Starts `n` threads (at least one). They end after `shutdown`, once their connections
    /// have closed or `drain` has passed; `done` tracks them so the broker can wait for them.
    pub fn start(
        n: usize,
        shutdown: &CancellationToken,
        drain: Duration,
        done: &TaskTracker,
    ) -> std::io::Result<ConnThreads> {
        let mut threads = Vec::with_capacity(n.max(1));
        for i in 0..n.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            // Unbounded, yet bounded in practice: one job per accepted connection, and
            // `limits.max_connections` bounds those.
            let (jobs, mut rx) = mpsc::unbounded_channel::<Job>();
            let stop = shutdown.clone();
            // The broker's tracker hears when this thread has finished.
            let (tx, finished) = tokio::sync::oneshot::channel::<()>();
            done.spawn(async move {
                let _ = finished.await;
            });
            std::thread::Builder::new()
                .name(format!("supermq-conn-{i}"))
                .spawn(move || {
                    rt.block_on(async {
                        // The connections running on this thread, to wait for at shutdown.
                        let tasks = TaskTracker::new();
                        loop {
                            tokio::select! {
                                _ = stop.cancelled() => break,
                                job = rx.recv() => match job {
                                    Some(job) => job(&tasks),
                                    None => break,
                                },
                            }
                        }
                        tasks.close();
                        let _ = tokio::time::timeout(drain, tasks.wait()).await;
                    });
                    // Whatever did not close in time is dropped with the runtime.
                    rt.shutdown_timeout(Duration::ZERO);
                    let _ = tx.send(());
                })?;
            threads.push(ConnThread { jobs });
        }
        Ok(ConnThreads {
            threads,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs the task `make` builds on the next thread in turn; `make` runs on that thread,
    /// so I/O objects the task creates (a `TcpStream::from_std`) register with its driver.
    /// After shutdown the task is not started (`make` is dropped).
    pub fn spawn<F, Fut>(&self, make: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.threads.len();
        let job: Job = Box::new(move |tasks: &TaskTracker| {
            tokio::spawn(tasks.track_future(make()));
        });
        let _ = self.threads[i].jobs.send(job);
    }
}
