//! `devx users`: make an account (the first admin) from the terminal, import
//! existing accounts from a file, lift a sign-in lockout.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use uuid::Uuid;

use super::{usage, with_database};
use crate::accounts::import;
use crate::accounts::model::{PlanType, Role};
use crate::accounts::queries::{self, NewUser};
use crate::accounts::{secrets, throttle};
use crate::config::Config;
use crate::db::{Db, DbError};

#[derive(Args)]
#[command(
    about = "Manage accounts from the terminal",
    after_help = "Example:\n  devx users create --email admin@example.com --name Admin --admin"
)]
pub struct UsersArgs {
    #[command(subcommand)]
    command: UsersCommand,
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create an account. The password is read from a prompt (asked twice),
    /// or from the first line of standard input when it is not a terminal;
    /// never from an argument, so it stays out of shell history.
    #[command(after_help = "Examples:\n  devx users create --email admin@example.com --admin\n  \
        printf '%s\\n' \"$ADMIN_PASSWORD\" | devx users create --email admin@example.com --admin")]
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
        /// The account's plan.
        #[arg(long, default_value = "free", value_parser = ["free", "personal", "team", "enterprise"])]
        plan: String,
    },
    /// Import existing accounts from a file: JSON lines, or CSV with a
    /// header line, with the fields email, name, password_hash (bcrypt
    /// `$2a$`/`$2b$`/`$2y$` or an argon2 PHC string), plan and created_at
    /// (RFC 3339). Every record is checked before any is written; emails
    /// that already have an account are skipped. A bcrypt account's hash is
    /// replaced by argon2id at its first sign-in.
    #[command(after_help = "Examples:\n  devx users import accounts.csv\n  devx users import accounts.jsonl\n\n\
        accounts.csv:\n  email,name,password_hash,plan,created_at\n  \
        ada@example.com,Ada,$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy,team,2024-01-31T12:00:00Z")]
    Import {
        /// The file (`.csv`: CSV; `.jsonl`/`.ndjson`: JSON lines; else told by its first character).
        file: std::path::PathBuf,
    },
    /// Lift a sign-in lockout: forgets the failed sign-ins counted against
    /// an account (the audit trail records the unlock).
    #[command(after_help = "Example:\n  devx users unlock --email alice@example.com")]
    Unlock {
        #[arg(long)]
        email: String,
    },
}

fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat password: ")?;
        if first != second {
            return Err(usage("the passwords differ"));
        }
        Ok(first)
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line).context("cannot read the password from standard input")?;
        let password = line.trim_end_matches(['\n', '\r']).to_string();
        if password.is_empty() {
            return Err(usage(
                "no password was given: standard input is not a terminal, and its first line is empty. Pipe the \
                 password in (printf '%s\\n' \"$PASSWORD\" | devx users create --email ...), or run the command in a \
                 terminal to be asked for it",
            ));
        }
        Ok(password)
    }
}

pub async fn run(config: &Config, args: UsersArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        UsersCommand::Create { email, name, admin, plan } => {
            let plan =
                PlanType::parse(&plan).ok_or_else(|| usage("--plan must be free, personal, team or enterprise"))?;
            create(config, email, name, admin, plan).await
        }
        UsersCommand::Import { file } => import_file(config, &file).await,
        UsersCommand::Unlock { email } => unlock(config, email).await,
    }
}

async fn unlock(config: &Config, email: String) -> anyhow::Result<ExitCode> {
    let mut v = crate::http::validate::Validator::new();
    v.email("--email", email.trim());
    if let Err(crate::http::ApiError::Invalid(errors)) = v.finish() {
        let lines: Vec<String> = errors.iter().map(|e| format!("{} {}", e.field, e.message)).collect();
        return Err(usage(lines.join("; ")));
    }
    with_database(config, async |database| {
        let db = Db::connect(&config.database, &database.target).await?;
        let mut client = db.client().await?;
        let tx = client.transaction_as(&format!("system:cli {}", whoami())).await?;
        let cleared = throttle::clear(&tx, &throttle::Key::account(&email, &config.http)).await?;
        tx.commit().await?;
        drop(client);
        db.close();
        if cleared {
            println!("unlocked {}: its failed sign-ins are forgotten", email.trim());
        } else {
            println!("{} had no failed sign-ins counted; nothing to unlock", email.trim());
        }
        Ok(ExitCode::SUCCESS)
    })
    .await
}

async fn import_file(config: &Config, file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file).map_err(|e| usage(format!("cannot read {}: {e}", file.display())))?;
    let format = match file.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("csv") => import::Format::Csv,
        Some("jsonl" | "ndjson") => import::Format::JsonLines,
        _ => import::Format::detect(&text),
    };
    let records = match import::parse(&text, format) {
        Ok(records) => records,
        Err(crate::http::ApiError::Invalid(errors)) => {
            let lines: Vec<String> = errors.iter().map(|e| format!("{} {}", e.field, e.message)).collect();
            return Err(usage(format!("{} (nothing was imported):\n  {}", file.display(), lines.join("\n  "))));
        }
        Err(e) => return Err(e.into()),
    };
    with_database(config, async |database| {
        let db = Db::connect(&config.database, &database.target).await?;
        let mut client = db.client().await?;
        let tx = client.transaction_as(&format!("system:cli {}", whoami())).await?;
        let report = import::import(&tx, &records).await?;
        tx.commit().await?;
        drop(client);
        db.close();
        println!("imported {} accounts from {}", report.created, file.display());
        if !report.skipped.is_empty() {
            println!("skipped {} that already have an account: {}", report.skipped.len(), report.skipped.join(", "));
        }
        Ok(ExitCode::SUCCESS)
    })
    .await
}

async fn create(
    config: &Config,
    email: String,
    name: Option<String>,
    admin: bool,
    plan: PlanType,
) -> anyhow::Result<ExitCode> {
    let email = email.trim().to_string();
    let mut v = crate::http::validate::Validator::new();
    v.email("--email", &email);
    v.opt_text("--name", name.as_deref(), 1, 200);
    if let Err(crate::http::ApiError::Invalid(errors)) = v.finish() {
        let lines: Vec<String> = errors.iter().map(|e| format!("{} {}", e.field, e.message)).collect();
        return Err(usage(lines.join("; ")));
    }
    let password = read_password()?;
    if let Some(problem) = secrets::password_problem(&password) {
        return Err(usage(format!("the password {problem}")));
    }
    let hash = tokio::task::spawn_blocking(move || secrets::hash_password(&password))
        .await?
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
    with_database(config, async |database| {
        let db = Db::connect(&config.database, &database.target).await?;
        let mut client = db.client().await?;
        let actor = format!("system:cli {}", whoami());
        let tx = client.transaction_as(&actor).await?;
        let role = if admin { Role::Admin } else { Role::User };
        let new = NewUser {
            id: Uuid::new_v4(),
            email: &email,
            name: name.as_deref(),
            password_hash: Some(&hash),
            role,
            plan_type: plan,
        };
        let user = match queries::insert_user(&tx, &new).await {
            Ok(u) => u,
            Err(DbError::UniqueViolation { .. }) => bail!("an account with the email {email} already exists"),
            Err(DbError::Other(e)) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
                bail!("the database has no devx schema yet: run `devx migrate up` first")
            }
            Err(e) => return Err(e.into()),
        };
        tx.commit().await?;
        drop(client);
        db.close();
        println!("created {} {} ({}, plan {})", user.role.as_str(), user.email, user.id, user.plan_type);
        Ok(ExitCode::SUCCESS)
    })
    .await
}

/// The operating-system user running the command, from its uid (not from
/// `$USER`, which may be unset or say anything): its name, else `uid N`.
pub(super) fn whoami() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid).ok().flatten().map_or_else(|| format!("uid {uid}"), |user| user.name)
}
