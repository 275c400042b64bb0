//! `devx migrate ...`: the migration engine (`crate::migrate`) from the
//! terminal. Every command but `create` works on the configured database.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{EXIT_CHECK_FAILED, usage, with_database};
use crate::config::{Config, masked_target};
use crate::migrate::{self, AppliedMigration, DownSource, EntryState, MigrationSet, Migrator, Status};

#[derive(Args)]
#[command(
    about = "Apply, revert and inspect schema migrations",
    long_about = "Apply, revert and inspect schema migrations.\n\n\
        Migrations are the files migrations/<14-digit id>_<name>.up.sql and .down.sql, embedded in devx\n\
        at build time (or read from --dir). Each runs in its own transaction together with its ledger\n\
        row in devx_meta.schema_migrations, unless its first line is `-- devx:no-transaction`.\n\
        An advisory lock makes concurrent runs wait (DEVX_MIGRATION_WAIT) instead of racing.",
    after_help = "Examples:\n  devx migrate status\n  devx migrate up\n  devx migrate down --steps 2\n  \
        devx migrate create add_project_tags\n  devx migrate check && echo up to date\n  \
        devx migrate --dir ./migrations status"
)]
pub struct MigrateArgs {
    /// Read migrations from this directory instead of the set embedded in
    /// devx (for `create`: where to write, default ./migrations).
    #[arg(long, global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    command: MigrateCommand,
}

#[derive(Subcommand)]
enum MigrateCommand {
    /// Show applied and pending migrations, and problems (changed or unknown applied ones)
    #[command(after_help = "Examples:\n  devx migrate status\n  devx migrate status --json | jq '.pending'")]
    Status {
        /// Print the status as JSON (the document of GET /api/database/migrations).
        #[arg(long)]
        json: bool,
    },
    /// Apply pending migrations (all, or up to and including --to)
    #[command(
        after_help = "Examples:\n  devx migrate up\n  devx migrate up --to 20261124000100\n  devx migrate up --dry-run"
    )]
    Up {
        /// Stop after this migration id.
        #[arg(long, value_name = "ID")]
        to: Option<String>,
        /// Print the SQL that would run, in order, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Revert the last applied migrations with their down scripts
    #[command(after_help = "Examples:\n  devx migrate down\n  devx migrate down --steps 3\n  \
        devx migrate down --to 20261124000200\n  devx migrate down --all --dry-run")]
    Down {
        /// Print the down scripts that would run, in order, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// How many to revert, newest first.
        #[arg(long, default_value_t = 1, value_name = "N", conflicts_with_all = ["to", "all"])]
        steps: usize,
        /// Revert every migration applied after ID (ID itself stays applied).
        #[arg(long, value_name = "ID", conflicts_with = "all")]
        to: Option<String>,
        /// Revert every applied migration: the database is left without devx's schema.
        #[arg(long)]
        all: bool,
    },
    /// Write a new pair of migration files with the next id (no database needed)
    #[command(after_help = "Examples:\n  devx migrate create add_project_tags\n  \
        devx migrate create \"index chat by session\" --dir ./migrations")]
    Create {
        /// What the migration does, in snake_case (other characters become `_`).
        name: String,
    },
    /// List applied migrations with when, by whom and how long they took
    #[command(after_help = "Example:\n  devx migrate history")]
    History,
    /// Print the last applied migration
    #[command(after_help = "Example:\n  devx migrate current")]
    Current,
    /// Record migrations up to and including ID as applied, without running them
    #[command(
        long_about = "Record every pending migration up to and including ID as applied, without running it:\n\
            for a database whose schema already has those changes (restored from a dump, built by hand).",
        after_help = "Example:\n  devx migrate stamp 20261124000100"
    )]
    Stamp {
        /// The last migration id to record.
        id: String,
    },
    /// Exit 3 when migrations are pending or the database does not match (for CI and readiness)
    #[command(after_help = "Example:\n  devx migrate check || echo \"run devx migrate up\"")]
    Check,
}

pub async fn run(config: &Config, args: MigrateArgs) -> anyhow::Result<ExitCode> {
    if let MigrateCommand::Create { name } = &args.command {
        let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("migrations"));
        let created = migrate::create(&dir, name)?;
        println!("Created {}", created.up_path.display());
        println!("Created {}", created.down_path.display());
        if args.dir.is_none() {
            println!("Rebuild devx to embed it, or run with --dir {} meanwhile.", dir.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let set = load_set(args.dir.as_deref())?;
    // How to name this set in a hint: `devx migrate --dir X up`.
    let command = match &args.dir {
        Some(dir) => format!("devx migrate --dir {}", dir.display()),
        None => "devx migrate".to_string(),
    };
    with_database(config, async |database| {
        let mut migrator = Migrator::connect(config, &database.target, set).await?;
        let target = config.database.migration_source.as_deref().unwrap_or(&database.target);
        let header = format!("Database:   {}\nMigrations: {}", masked_target(target), migrator.set().origin());
        match args.command {
            MigrateCommand::Status { json: true } => {
                let status = migrator.status().await?;
                let report = crate::health::MigrationsReport::new(migrator.set(), &status);
                println!("{}", serde_json::to_string_pretty(&report)?);
                Ok(ExitCode::SUCCESS)
            }
            MigrateCommand::Status { json: false } => {
                let status = migrator.status().await?;
                println!("{header}\n");
                print_status(migrator.set(), &status, &command);
                Ok(ExitCode::SUCCESS)
            }
            MigrateCommand::Check => {
                let status = migrator.status().await?;
                if status.is_clean() {
                    println!("Up to date: {} migration(s) applied, none pending.", status.applied.len());
                    Ok(ExitCode::SUCCESS)
                } else {
                    print_status(migrator.set(), &status, &command);
                    Ok(ExitCode::from(EXIT_CHECK_FAILED))
                }
            }
            MigrateCommand::Up { to, dry_run: true } => {
                let status = migrator.status().await?;
                if !status.problems.is_empty() {
                    print_status(migrator.set(), &status, &command);
                    return Ok(ExitCode::from(EXIT_CHECK_FAILED));
                }
                if let Some(to) = &to
                    && migrator.set().get(to).is_none()
                {
                    return Err(usage(format!(
                        "no migration {to} in {}: see `{command} status`",
                        migrator.set().origin()
                    )));
                }
                let mut shown = 0;
                for pending in &status.pending {
                    if to.as_deref().is_some_and(|to| pending.id.as_str() > to) {
                        break;
                    }
                    let Some(m) = migrator.set().get(&pending.id) else { continue };
                    if crate::migrate::split::split(&m.up).is_empty() {
                        return Err(crate::migrate::MigrateError::NoStatements { file: m.up_file() }.into());
                    }
                    let how =
                        if m.no_transaction { "statement by statement, no transaction" } else { "in one transaction" };
                    println!("-- {} ({how})\n{}\n", m.up_file(), m.up.trim_end());
                    shown += 1;
                }
                println!("-- dry run: {shown} migration(s) would be applied; nothing was changed.");
                Ok(ExitCode::SUCCESS)
            }
            MigrateCommand::Up { to, dry_run: false } => {
                let report = migrator.up(to.as_deref()).await?;
                if report.applied.is_empty() {
                    println!("Nothing to apply: the database is up to date.");
                } else {
                    let rows = report
                        .applied
                        .iter()
                        .map(|s| vec![s.id.clone(), s.name.clone(), format!("{} ms", s.execution_ms)])
                        .collect::<Vec<_>>();
                    print_table(&["APPLIED", "NAME", "TIME"], &rows);
                    println!("\n{} migration(s) applied.", report.applied.len());
                }
                Ok(ExitCode::SUCCESS)
            }
            MigrateCommand::Down { dry_run, steps, to, all } => {
                let applied = migrator.history().await?;
                let steps = if all {
                    applied.len()
                } else if let Some(to) = &to {
                    match applied.iter().position(|m| &m.id == to) {
                        Some(i) => applied.len() - i - 1,
                        None => {
                            return Err(usage(format!("{to} is not applied: `{command} history` lists what is")));
                        }
                    }
                } else {
                    steps
                };
                if steps == 0 || applied.is_empty() {
                    match (applied.len(), &to) {
                        (0, _) => println!("Nothing to revert: no migration is applied."),
                        (n, Some(to)) => {
                            println!("Nothing to revert: {to} is the last applied migration ({n} applied).");
                        }
                        (n, None) => println!("Nothing to revert: --steps 0 reverts none ({n} migration(s) applied)."),
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                if dry_run {
                    let plan = migrator.down_plan(steps).await?;
                    for step in &plan {
                        let how = if crate::migrate::source::is_no_transaction(&step.sql) {
                            "statement by statement, no transaction"
                        } else {
                            "in one transaction"
                        };
                        println!("-- {} ({how})\n{}\n", step.file, step.sql.trim_end());
                    }
                    println!("-- dry run: {} migration(s) would be reverted; nothing was changed.", plan.len());
                    return Ok(ExitCode::SUCCESS);
                }
                let report = migrator.down(steps).await?;
                if report.reverted.is_empty() {
                    println!("Nothing to revert: no migration is applied.");
                } else {
                    let rows = report
                        .reverted
                        .iter()
                        .map(|r| {
                            let source = match r.source {
                                DownSource::File => "down file",
                                DownSource::Ledger => "stored in ledger",
                            };
                            vec![r.id.clone(), r.name.clone(), format!("{} ms", r.execution_ms), source.into()]
                        })
                        .collect::<Vec<_>>();
                    print_table(&["REVERTED", "NAME", "TIME", "DOWN SCRIPT"], &rows);
                    println!("\n{} migration(s) reverted.", report.reverted.len());
                }
                Ok(ExitCode::SUCCESS)
            }
            MigrateCommand::Stamp { id } => {
                let stamped = migrator.stamp(&id).await?;
                if stamped.is_empty() {
                    println!("Nothing to stamp: every migration up to {id} is applied already.");
                } else {
                    let rows = stamped.iter().map(|s| vec![s.id.clone(), s.name.clone()]).collect::<Vec<_>>();
                    print_table(&["STAMPED", "NAME"], &rows);
                    println!("\n{} migration(s) recorded as applied without running them.", stamped.len());
                }
                Ok(ExitCode::SUCCESS)
            }
            MigrateCommand::History => {
                let history = migrator.history().await?;
                if history.is_empty() {
                    println!("No migration applied yet.");
                } else {
                    print_table(
                        &["ID", "NAME", "APPLIED AT", "TIME", "BY"],
                        &history.iter().map(history_row).collect::<Vec<_>>(),
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            MigrateCommand::Current => {
                match migrator.current().await? {
                    Some(m) => println!("{}_{} (applied {})", m.id, m.name, when(&m)),
                    None => println!("No migration applied yet."),
                }
                Ok(ExitCode::SUCCESS)
            }
            MigrateCommand::Create { .. } => unreachable!("handled above"),
        }
    })
    .await
}

/// The embedded set, or the one in `--dir`: a directory that cannot be
/// read or holds a malformed migration file is bad usage.
fn load_set(dir: Option<&Path>) -> anyhow::Result<MigrationSet> {
    Ok(match dir {
        Some(dir) => MigrationSet::from_dir(dir).map_err(|e| usage(format!("--dir {}: {e}", dir.display())))?,
        None => MigrationSet::embedded()?,
    })
}

fn when(m: &AppliedMigration) -> String {
    m.applied_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn history_row(m: &AppliedMigration) -> Vec<String> {
    let time = match m.execution_ms {
        Some(ms) => format!("{ms} ms"),
        None => "stamped".into(),
    };
    vec![m.id.clone(), m.name.clone(), when(m), time, m.applied_by.clone()]
}

/// One table: every known migration in id order, then applied ones this
/// devx does not know; then the problems.
fn print_status(set: &MigrationSet, status: &Status, command: &str) {
    let rows: Vec<Vec<String>> = status
        .entries(set)
        .into_iter()
        .map(|e| {
            let state = match e.state {
                EntryState::Applied => "applied",
                EntryState::Modified => "MODIFIED",
                EntryState::Pending if e.no_transaction => "pending (no transaction)",
                EntryState::Pending => "pending",
                EntryState::Unknown => "UNKNOWN (newer)",
            };
            vec![e.id.to_string(), e.name.to_string(), state.into(), e.applied.map(when).unwrap_or_default()]
        })
        .collect();
    if rows.is_empty() {
        println!("No migrations.");
    } else {
        print_table(&["ID", "NAME", "STATE", "APPLIED AT"], &rows);
    }
    println!(
        "\n{} applied, {} pending, {} problem(s).",
        status.applied.len(),
        status.pending.len(),
        status.problems.len()
    );
    if !status.pending.is_empty() && status.problems.is_empty() {
        println!("Run `{command} up` to apply the pending ones.");
    }
    for index in &status.invalid_indexes {
        println!("  - index {index} is invalid (an interrupted CREATE INDEX CONCURRENTLY): `{command} up` rebuilds it");
    }
    for p in &status.problems {
        println!("  - {p}");
    }
}

fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
