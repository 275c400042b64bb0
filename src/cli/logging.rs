//! Logging for every command: one subscriber on stderr, text or one JSON
//! object per line (`DEVX_LOG_FORMAT`), filtered by `DEVX_LOG`. Colours
//! only when stderr is a terminal and `NO_COLOR` is not set. Records of the
//! `log` crate (tokio-postgres's) join the same stream, with PostgreSQL's
//! NOTICEs (`IF NOT EXISTS ... skipping`) moved from info to debug: they
//! are the server talking about a statement that did what it should.
//! `serve` batches its lines and writes them from a thread (see [`Writer`]).

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::config::LogFormat;

/// How log lines reach stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// Written by the thread that logs, in order with everything else the
    /// command prints: for short commands.
    Direct,
    /// Appended to a buffer that a thread writes to stderr at most
    /// [`BATCH_WINDOW`] after its first line, so that a request's line
    /// costs it a lock and a copy: no system call, and no wake-up of
    /// another thread but the first of a batch. For `serve`: a busy server
    /// writes hundreds of lines per `write`. No line is dropped (a writer
    /// that finds [`BATCH_LIMIT`] bytes waiting writes them itself).
    ///
    /// The queue-and-worker writer of `tracing-appender` measured at a sixth
    /// of the server's CPU under load, most of it its worker spinning and
    /// yielding between lines that came too often for it to sleep.
    Background,
}

/// How long a line may wait in the buffer before it is written.
const BATCH_WINDOW: Duration = Duration::from_millis(20);

/// Bytes in the buffer past which the line's writer writes them itself.
const BATCH_LIMIT: usize = 1 << 20;

/// Lines waiting for the [`Writer::Background`] thread, and where they go.
struct Batch {
    lines: Mutex<Batched>,
    wake: Condvar,
    /// Taken before `lines` is let go of, so that batches are written in
    /// the order they were filled.
    sink: Mutex<Box<dyn Write + Send>>,
}

#[derive(Default)]
struct Batched {
    bytes: Vec<u8>,
    closing: bool,
}

impl Batch {
    fn lock(&self) -> MutexGuard<'_, Batched> {
        // A thread that panicked holding the lock left whole lines behind.
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sink(&self) -> MutexGuard<'_, Box<dyn Write + Send>> {
        self.sink.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The thread: sleeps until a line comes, lets the batch window fill,
    /// then writes everything waiting in one go.
    fn run(&self) {
        let mut spare = Vec::new();
        loop {
            let mut batched = self.lock();
            while batched.bytes.is_empty() && !batched.closing {
                batched = self.wake.wait(batched).unwrap_or_else(PoisonError::into_inner);
            }
            let closing = batched.closing;
            if !closing {
                drop(batched);
                std::thread::sleep(BATCH_WINDOW);
                batched = self.lock();
            }
            std::mem::swap(&mut batched.bytes, &mut spare);
            let mut sink = self.sink();
            drop(batched);
            write_out(&mut sink, &spare);
            drop(sink);
            spare.clear();
            if closing {
                return;
            }
        }
    }
}

fn write_out(sink: &mut Box<dyn Write + Send>, bytes: &[u8]) {
    if !bytes.is_empty() {
        // Nowhere left to report a failure to write the log.
        let _ = sink.write_all(bytes).and_then(|()| sink.flush());
    }
}

/// What the subscriber writes a line to, for [`Writer::Background`]: the
/// subscriber hands it each line whole, in one `write`.
struct BatchWriter(Arc<Batch>);

impl Write for BatchWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut batched = self.0.lock();
        if batched.bytes.is_empty() {
            self.0.wake.notify_one();
        }
        batched.bytes.extend_from_slice(buf);
        if batched.bytes.len() >= BATCH_LIMIT {
            write_out(&mut self.0.sink(), &batched.bytes);
            batched.bytes.clear();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes the lines still waiting and stops the [`Writer::Background`]
/// thread when dropped: keep it until the process ends.
pub struct LogGuard {
    batch: Arc<Batch>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.batch.lock().closing = true;
        self.batch.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A [`Writer::Background`] writer of `sink` (a writer per line, the
/// guard), or `None` when no thread can be started for it.
fn batched(sink: Box<dyn Write + Send>) -> Option<(impl Fn() -> BatchWriter + Send + Sync + 'static, LogGuard)> {
    let batch = Arc::new(Batch { lines: Mutex::new(Batched::default()), wake: Condvar::new(), sink: Mutex::new(sink) });
    let thread = std::thread::Builder::new()
        .name("devx-log".into())
        .spawn({
            let batch = batch.clone();
            move || batch.run()
        })
        .ok()?;
    let make = {
        let batch = batch.clone();
        move || BatchWriter(batch.clone())
    };
    Some((make, LogGuard { batch, thread: Some(thread) }))
}

fn background() -> (BoxMakeWriter, Option<LogGuard>) {
    match batched(Box::new(std::io::stderr())) {
        Some((make, guard)) => (BoxMakeWriter::new(make), Some(guard)),
        // No thread for it: each line is written where it is logged.
        None => (BoxMakeWriter::new(std::io::stderr), None),
    }
}

/// Installs the subscriber (once per process; later calls do nothing). With
/// [`Writer::Background`], the lines still waiting are written when the
/// returned guard drops: keep it until the process ends.
pub fn init(format: LogFormat, filter: &str, no_color: bool, writer: Writer) -> Option<LogGuard> {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = !no_color && std::io::stderr().is_terminal();
    let (make_writer, guard) = match writer {
        Writer::Direct => (BoxMakeWriter::new(std::io::stderr), None),
        Writer::Background => background(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(make_writer).with_ansi(ansi);
    // `set_global_default`, not `try_init`: that would also install the
    // plain log bridge, and the one below could not replace it.
    let installed = match format {
        LogFormat::Json => tracing::subscriber::set_global_default(builder.json().flatten_event(true).finish()),
        LogFormat::Text => tracing::subscriber::set_global_default(builder.finish()),
    };
    if installed.is_ok() && log::set_boxed_logger(Box::new(Bridge(tracing_log::LogTracer::new()))).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
    guard
}

/// Forwards `log` records to tracing, a NOTICE from tokio-postgres's
/// connection at debug instead of info.
struct Bridge(tracing_log::LogTracer);

/// Where tokio-postgres logs the server's notices (and only them, at info).
const NOTICES: &str = "tokio_postgres::connection";

impl log::Log for Bridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        if metadata.target() == NOTICES && metadata.level() == log::Level::Info {
            let lowered = log::Metadata::builder().level(log::Level::Debug).target(metadata.target()).build();
            return self.0.enabled(&lowered);
        }
        self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if record.target() == NOTICES && record.level() == log::Level::Info {
            let lowered = log::Record::builder()
                .args(*record.args())
                .level(log::Level::Debug)
                .target(record.target())
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build();
            if self.0.enabled(lowered.metadata()) {
                self.0.log(&lowered);
            }
            return;
        }
        if self.0.enabled(record.metadata()) {
            self.0.log(record);
        }
    }

    fn flush(&self) {
        self.0.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// Lines from many threads come out whole, each thread's in its order,
    /// none lost, the last ones written when the guard drops.
    #[test]
    fn batched_lines_come_out_whole_in_order_and_all_of_them() {
        let out = Captured::default();
        let (make, guard) = batched(Box::new(out.clone())).unwrap();
        let make = Arc::new(make);
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let make = make.clone();
                std::thread::spawn(move || {
                    for i in 0..5000 {
                        // Lines long enough that the buffer passes its limit
                        // and a writer writes it out itself, too.
                        let line = format!("thread {t} line {i} {}\n", "x".repeat(200));
                        make().write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        drop(guard);
        let text = out.text();
        let mut next = [0usize; 4];
        for line in text.lines() {
            let mut words = line.split(' ');
            assert_eq!(words.next(), Some("thread"), "a broken line: {line:.40}");
            let t: usize = words.next().unwrap().parse().unwrap();
            assert_eq!(words.next(), Some("line"));
            let i: usize = words.next().unwrap().parse().unwrap();
            assert_eq!(i, next[t], "thread {t}'s lines out of order");
            assert_eq!(words.next().map(str::len), Some(200));
            next[t] += 1;
        }
        assert_eq!(next, [5000; 4]);
    }

    /// An idle server's line is not held back until the next one.
    #[test]
    fn a_lone_line_is_written_without_waiting_for_more() {
        let out = Captured::default();
        let (make, _guard) = batched(Box::new(out.clone())).unwrap();
        make().write_all(b"started\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while out.text().is_empty() {
            assert!(std::time::Instant::now() < deadline, "the line was never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(out.text(), "started\n");
    }
}
