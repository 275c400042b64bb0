//! `devx catalog`: list, add, change and remove the catalog's categories and
//! technologies from the terminal, with the same checks as the API (the
//! writes are `catalog::admin`'s, in one transaction audited as
//! `system:cli <user>`).

use std::process::ExitCode;

use anyhow::anyhow;
use clap::{Args, Subcommand};

use super::users::whoami;
use super::{usage, with_database};
use crate::catalog::admin as ops;
use crate::catalog::model::{CategoryInput, CategoryPatch, TechnologyInput, TechnologyKind, TechnologyPatch};
use crate::catalog::queries;
use crate::config::Config;
use crate::db::{Db, PgTx};
use crate::http::ApiError;

#[derive(Args)]
#[command(
    about = "Manage the catalog's categories and technologies",
    after_help = "Examples:\n  devx catalog categories list\n  \
        devx catalog categories add --slug microservice --name Microservices --sort-order 25\n  \
        devx catalog technologies add --slug kotlin --name Kotlin --kind language\n  \
        devx catalog technologies remove kotlin"
)]
pub struct CatalogArgs {
    #[command(subcommand)]
    command: CatalogCommand,
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Template categories (`GET /api/templates/categories`).
    #[command(subcommand)]
    Categories(CategoryCommand),
    /// Technologies templates name in their tech_stack (`GET /api/templates/technologies`).
    #[command(subcommand)]
    Technologies(TechnologyCommand),
}

#[derive(Subcommand)]
enum CategoryCommand {
    /// Every category: slug, sort order, public templates, name.
    List,
    /// Add a category.
    #[command(after_help = "Example:\n  devx catalog categories add --slug microservice --name Microservices")]
    Add {
        /// Lowercase letters and digits, words joined by single dashes.
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Lists are ordered by it, then by slug.
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        sort_order: i32,
    },
    /// Change a category: only the options given change (`--slug` renames it).
    #[command(after_help = "Example:\n  devx catalog categories update microservice --name \"Micro-services\"")]
    Update {
        /// The category to change.
        category: String,
        #[arg(long)]
        slug: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long, allow_negative_numbers = true)]
        sort_order: Option<i32>,
    },
    /// Remove a category no template is in (one in use is refused, naming the templates).
    #[command(after_help = "Example:\n  devx catalog categories remove microservice")]
    Remove {
        /// The category to remove.
        category: String,
    },
}

#[derive(Subcommand)]
enum TechnologyCommand {
    /// Every technology: slug, kind, public templates, name.
    List,
    /// Add a technology.
    #[command(after_help = "Example:\n  devx catalog technologies add --slug kotlin --name Kotlin --kind language")]
    Add {
        /// Lowercase letters and digits, words joined by single dashes.
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = kinds())]
        kind: String,
    },
    /// Change a technology: only the options given change (`--slug` renames
    /// it, in the templates that name it too).
    #[command(after_help = "Example:\n  devx catalog technologies update kotlin --kind language")]
    Update {
        /// The technology to change.
        technology: String,
        #[arg(long)]
        slug: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, value_parser = kinds())]
        kind: Option<String>,
    },
    /// Remove a technology no template names (one in use is refused, naming the templates).
    #[command(after_help = "Example:\n  devx catalog technologies remove kotlin")]
    Remove {
        /// The technology to remove.
        technology: String,
    },
}

fn kinds() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(TechnologyKind::ALL.iter().map(|k| k.as_str()))
}

fn kind(s: &str) -> anyhow::Result<TechnologyKind> {
    TechnologyKind::parse(s).ok_or_else(|| usage(format!("--kind {s} is not a technology kind")))
}

/// The API's refusal in the terminal's words: invalid fields are bad usage
/// (exit 2, naming the options), the rest a failure with the API's detail.
fn refusal(e: ApiError) -> anyhow::Error {
    match e {
        ApiError::Invalid(errors) => {
            let lines: Vec<String> =
                errors.iter().map(|e| format!("--{} {}", e.field.replace('_', "-"), e.message)).collect();
            usage(lines.join("; "))
        }
        ApiError::NoSuch { detail, .. } | ApiError::Conflict { detail, .. } => anyhow!(detail),
        other => anyhow!(other),
    }
}

/// Runs `f` in one transaction as `system:cli <user>`, and commits it.
async fn in_transaction<T>(
    config: &Config,
    f: impl AsyncFnOnce(&PgTx<'_>) -> Result<T, ApiError>,
) -> anyhow::Result<T> {
    with_database(config, async |database| {
        let db = Db::connect(&config.database, &database.target).await?;
        let mut client = db.client().await?;
        let tx = client.transaction_as(&format!("system:cli {}", whoami())).await?;
        let out = f(&tx).await.map_err(refusal)?;
        tx.commit().await?;
        drop(client);
        db.close();
        Ok(out)
    })
    .await
}

pub async fn run(config: &Config, args: CatalogArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        CatalogCommand::Categories(command) => categories(config, command).await,
        CatalogCommand::Technologies(command) => technologies(config, command).await,
    }
}

async fn categories(config: &Config, command: CategoryCommand) -> anyhow::Result<ExitCode> {
    match command {
        CategoryCommand::List => {
            let list = in_transaction(config, async |tx| Ok(queries::list_categories(tx).await?)).await?;
            println!("{:<24} {:>10} {:>9}  name", "slug", "sort_order", "templates");
            for c in list {
                println!("{:<24} {:>10} {:>9}  {}", c.slug, c.sort_order, c.template_count, c.name);
            }
        }
        CategoryCommand::Add { slug, name, description, sort_order } => {
            let input = CategoryInput { slug, name, description, sort_order };
            input.validate().map_err(refusal)?;
            let c = in_transaction(config, async |tx| ops::add_category(tx, &input).await).await?;
            println!("added category {} ({})", c.category.slug, c.category.name);
        }
        CategoryCommand::Update { category, slug, name, description, sort_order } => {
            let patch = CategoryPatch { slug, name, description, sort_order };
            let unconditional = crate::http::IfMatch::default();
            let c = in_transaction(config, async |tx| ops::change_category(tx, &category, patch, &unconditional).await)
                .await?;
            println!(
                "changed category {category}: now {} ({}, sort order {})",
                c.category.slug, c.category.name, c.category.sort_order
            );
        }
        CategoryCommand::Remove { category } => {
            in_transaction(config, async |tx| ops::remove_category(tx, &category).await).await?;
            println!("removed category {category}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn technologies(config: &Config, command: TechnologyCommand) -> anyhow::Result<ExitCode> {
    match command {
        TechnologyCommand::List => {
            let list = in_transaction(config, async |tx| Ok(queries::list_technologies(tx).await?)).await?;
            println!("{:<24} {:<10} {:>9}  name", "slug", "kind", "templates");
            for t in list {
                println!("{:<24} {:<10} {:>9}  {}", t.slug, t.kind, t.template_count, t.name);
            }
        }
        TechnologyCommand::Add { slug, name, kind: k } => {
            let input = TechnologyInput { slug, name, kind: kind(&k)? };
            input.validate().map_err(refusal)?;
            let t = in_transaction(config, async |tx| ops::add_technology(tx, &input).await).await?;
            println!("added technology {} ({}, {})", t.technology.slug, t.technology.name, t.technology.kind);
        }
        TechnologyCommand::Update { technology, slug, name, kind: k } => {
            let kind = k.as_deref().map(kind).transpose()?;
            let patch = TechnologyPatch { slug, name, kind };
            let unconditional = crate::http::IfMatch::default();
            let t =
                in_transaction(config, async |tx| ops::change_technology(tx, &technology, patch, &unconditional).await)
                    .await?;
            println!(
                "changed technology {technology}: now {} ({}, {})",
                t.technology.slug, t.technology.name, t.technology.kind
            );
        }
        TechnologyCommand::Remove { technology } => {
            in_transaction(config, async |tx| ops::remove_technology(tx, &technology).await).await?;
            println!("removed technology {technology}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
