//! Logging for every command: one subscriber on stderr, text or one JSON
//! object per line (`DEVX_LOG_FORMAT`), filtered by `DEVX_LOG`. Colours
//! only when stderr is a terminal and `NO_COLOR` is not set. Records of the
//! `log` crate (tokio-postgres's) join the same stream, with PostgreSQL's
//! NOTICEs (`IF NOT EXISTS ... skipping`) moved from info to debug: they
//! are the server talking about a statement that did what it should.
//! `serve` writes its lines from a worker thread (see [`Writer`]).

use std::io::IsTerminal;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::config::LogFormat;

/// How log lines reach stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// Written by the thread that logs, in order with everything else the
    /// command prints: for short commands.
    Direct,
    /// Handed to a worker thread, so that a request's line costs it a copy
    /// into a queue instead of a locked write to stderr: for `serve`. The
    /// queue never drops a line (a full queue makes the logger wait).
    Background,
}

/// Installs the subscriber (once per process; later calls do nothing). With
/// [`Writer::Background`], lines are flushed when the returned guard drops:
/// keep it until the process ends.
pub fn init(format: LogFormat, filter: &str, no_color: bool, writer: Writer) -> Option<WorkerGuard> {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = !no_color && std::io::stderr().is_terminal();
    let (make_writer, guard) = match writer {
        Writer::Direct => (BoxMakeWriter::new(std::io::stderr), None),
        Writer::Background => {
            let (worker, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .thread_name("devx-log")
                .finish(std::io::stderr());
            (BoxMakeWriter::new(worker), Some(guard))
        }
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
