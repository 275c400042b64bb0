//! The command line: one module per command group. Each command reads the
//! configuration once, finds its database (`db::embedded::resolve`), does its
//! work, and maps the outcome to an exit code:
//! 0 success, 1 failure, 2 bad usage or configuration, 3 a check found problems.

mod config;
mod db;
mod migrate;
mod retention;
mod seed;
mod serve;
mod users;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat};
use crate::embedded::{self, ResolvedDatabase};

/// Exit code of a check (`migrate check`, `db check`, `db health`) that ran
/// and found problems.
pub const EXIT_CHECK_FAILED: u8 = 3;
/// Exit code for bad usage or configuration.
pub const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "devx",
    version,
    about = "The data service of an AI developer platform: REST API, CLI and dashboard on PostgreSQL",
    long_about = "devx keeps the state of a platform that builds, runs and ships software with AI agents.\n\n\
        With no DATABASE_URL (or DB_*) set it uses a PostgreSQL server on this machine if one answers,\n\
        and otherwise starts a private one from the system's PostgreSQL binaries in .devx/postgres.",
    after_help = "Examples:\n  devx serve\n  devx migrate status\n  DATABASE_URL=postgres://devx@db/devx devx migrate up\n  devx db health\n  devx users create --email admin@example.com --admin\n  devx config check\n  devx retention run --dry-run"
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
    Retention(retention::RetentionArgs),
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
            eprintln!("{e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    init_tracing(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(&config, args).await,
            Command::Migrate(args) => migrate::run(&config, args).await,
            Command::Db(args) => db::run(&config, args).await,
            Command::Config(args) => config::run(&config, &args),
            Command::Users(args) => users::run(&config, args).await,
            Command::Retention(args) => retention::run(&config, args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
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
}
