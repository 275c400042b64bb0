//! The command line: one module per command group. Each command reads the
//! configuration once, finds its database (`db::embedded::resolve`), does its
//! work, and maps the outcome to an exit code:
//! 0 success, 1 failure, 2 bad usage or configuration, 3 a check found problems.
//! A failure is printed once, each of its causes once (text), or as one JSON
//! line under `DEVX_LOG_FORMAT=json`.

mod catalog;
mod config;
mod db;
mod logging;
mod migrate;
mod retention;
mod secrets;
mod seed;
mod serve;
mod users;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError, LogFormat};
use crate::embedded::{self, ResolvedDatabase};
use crate::migrate::MigrateError;

/// Exit code of a check (`migrate check`, `db check`, `db health`) that ran
/// and found problems.
pub const EXIT_CHECK_FAILED: u8 = 3;
/// Exit code for bad usage or configuration.
pub const EXIT_USAGE: u8 = 2;

/// Bad usage that a command finds itself (clap finds the rest): an argument
/// that names nothing, a value that cannot be used. Exits 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A [`UsageError`] as the commands return it.
pub(crate) fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

#[derive(Parser)]
#[command(
    name = "devx",
    version,
    about = "The data service of an AI developer platform: REST API, CLI and dashboard on PostgreSQL",
    long_about = "devx keeps the state of a platform that builds, runs and ships software with AI agents.\n\n\
        With no DATABASE_URL (or DB_*) set it uses a PostgreSQL server on this machine if one answers,\n\
        and otherwise starts a private one from the system's PostgreSQL binaries in .devx/postgres.",
    after_help = "Exit codes: 0 success, 1 failure, 2 bad usage or configuration, 3 a check found problems.\n\n\
        Examples:\n  devx serve\n  devx migrate status\n  DATABASE_URL=postgres://devx@db/devx devx migrate up\n  devx db health\n  devx users create --email admin@example.com --admin\n  devx catalog categories list\n  devx config check\n  devx retention run --dry-run\n  devx secrets check"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Serve(serve::ServeArgs),
    Migrate(migrate::MigrateArgs),
    Db(db::DbArgs),
    Config(config::ConfigArgs),
    Users(users::UsersArgs),
    Catalog(catalog::CatalogArgs),
    Retention(retention::RetentionArgs),
    Secrets(secrets::SecretsArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Config(args) = &cli.command
        && args.is_example()
    {
        print!("{}", crate::config::env_example());
        return ExitCode::SUCCESS;
    }
    let config = match Config::from_process_env() {
        Ok(c) => c,
        Err(e) => {
            logging::init(e.log_format, "info", false, logging::Writer::Direct);
            fatal(e.log_format, &e.to_string(), EXIT_USAGE);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let writer =
        if matches!(cli.command, Command::Serve(_)) { logging::Writer::Background } else { logging::Writer::Direct };
    let log_guard = logging::init(config.log_format, &config.log_filter, config.no_color, writer);
    // `config check` prints its warnings itself.
    if !matches!(cli.command, Command::Config(_)) {
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads())
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            fatal(config.log_format, &format!("cannot start the async runtime: {e}"), 1);
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(&config, args).await,
            Command::Migrate(args) => migrate::run(&config, args).await,
            Command::Db(args) => db::run(&config, args).await,
            Command::Config(args) => config::run(&config, &args).await,
            Command::Users(args) => users::run(&config, args).await,
            Command::Catalog(args) => catalog::run(&config, args).await,
            Command::Retention(args) => retention::run(&config, args).await,
            Command::Secrets(args) => secrets::run(&config, args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = exit_code(&e);
            // The last line comes last: a text one is printed directly, so
            // the log's queue is flushed first; a JSON one goes through it.
            let mut log_guard = log_guard;
            if config.log_format == LogFormat::Text {
                log_guard = None;
            }
            fatal(config.log_format, &render(&e), code);
            drop(log_guard);
            ExitCode::from(code)
        }
    }
}

/// Reports what ended the command: `error: ...` on stderr, or one JSON
/// line in the log's format.
fn fatal(format: LogFormat, message: &str, exit_code: u8) {
    match format {
        LogFormat::Text => eprintln!("error: {message}"),
        LogFormat::Json => tracing::error!(exit_code, "{message}"),
    }
}

/// 2 for bad usage or configuration anywhere in the chain, else 1.
fn exit_code(e: &anyhow::Error) -> u8 {
    let is_usage = |cause: &(dyn std::error::Error + 'static)| {
        cause.is::<UsageError>()
            || cause.is::<ConfigError>()
            || cause.downcast_ref::<MigrateError>().is_some_and(MigrateError::is_usage)
    };
    if e.chain().any(is_usage) { EXIT_USAGE } else { 1 }
}

/// The error and its causes, each said once: a cause whose text an outer
/// one already includes is left out.
fn render(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || out.contains(text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(text);
    }
    out
}

/// Runs `f` against the command's database, then stops the private server if
/// one was started for it, whatever `f` returned.
pub(crate) async fn with_database<T>(
    config: &Config,
    f: impl AsyncFnOnce(&ResolvedDatabase) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let database = embedded::resolve(config).await?;
    let out = f(&database).await;
    database.shutdown().await;
    out
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// clap's own consistency checks over every command and argument
    /// (duplicate names, conflicting flags, bad defaults...), which it
    /// otherwise runs only when a command is parsed in a debug build.
    #[test]
    fn the_command_line_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_cause_already_said_is_not_said_again() {
        let e = anyhow::anyhow!("Connection refused (os error 111)")
            .context("database unavailable: error connecting to server: Connection refused (os error 111)")
            .context("cannot connect to the database to migrate it");
        assert_eq!(
            super::render(&e),
            "cannot connect to the database to migrate it: database unavailable: error connecting to server: \
             Connection refused (os error 111)"
        );
    }

    #[test]
    fn usage_errors_exit_2_wherever_they_are_in_the_chain() {
        assert_eq!(super::exit_code(&super::usage("no such id").context("migrate up")), 2);
        assert_eq!(super::exit_code(&anyhow::anyhow!("the server went away")), 1);
    }
}
