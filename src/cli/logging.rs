//! Logging for every command: one subscriber on stderr, text or one JSON
//! object per line (`DEVX_LOG_FORMAT`), filtered by `DEVX_LOG`. Colours
//! only when stderr is a terminal and `NO_COLOR` is not set. Records of the
//! `log` crate (tokio-postgres's) join the same stream, with PostgreSQL's
//! NOTICEs (`IF NOT EXISTS ... skipping`) moved from info to debug: they
//! are the server talking about a statement that did what it should.

use std::io::IsTerminal;

use crate::config::LogFormat;

/// Installs the subscriber (once per process; later calls do nothing).
pub fn init(format: LogFormat, filter: &str, no_color: bool) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = !no_color && std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    // `set_global_default`, not `try_init`: that would also install the
    // plain log bridge, and the one below could not replace it.
    let installed = match format {
        LogFormat::Json => tracing::subscriber::set_global_default(builder.json().flatten_event(true).finish()),
        LogFormat::Text => tracing::subscriber::set_global_default(builder.finish()),
    };
    if installed.is_ok() && log::set_boxed_logger(Box::new(Bridge(tracing_log::LogTracer::new()))).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
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
