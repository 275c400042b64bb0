//! `devx config check`: the effective configuration, secrets masked, the
//! database it leads to and why, and the warnings (misspelt names, settings
//! that override each other).

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::config::Config;

#[derive(Args)]
#[command(
    about = "Show the effective configuration",
    after_help = "Examples:\n  DB_POOL_MAX=40 devx config check\n  devx config example > .env.example"
)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

impl ConfigArgs {
    /// `config example` needs no valid configuration to run.
    pub fn is_example(&self) -> bool {
        matches!(self.command, ConfigCommand::Example)
    }
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the environment (and .env) and print every setting with its
    /// effective value (passwords masked), which database would be used and
    /// why, and warnings (a misspelt name, settings that override each
    /// other). Invalid settings are all reported at once and exit with code 2.
    #[command(after_help = "Example:\n  devx config check")]
    Check,
    /// Print every variable with its default and meaning, in .env format.
    #[command(after_help = "Example:\n  devx config example > .env")]
    Example,
}

pub async fn run(config: &Config, args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ConfigCommand::Example => {
            print!("{}", crate::config::env_example());
            Ok(ExitCode::SUCCESS)
        }
        ConfigCommand::Check => {
            let width = config.describe().keys().map(|k| k.len()).max().unwrap_or(0);
            for (key, value) in config.describe() {
                println!("{key:width$}  {value}");
            }
            println!("\ndatabase: {}", crate::embedded::explain(config).await);
            if !config.warnings.is_empty() {
                println!("\nwarnings:");
                for warning in &config.warnings {
                    println!("  - {warning}");
                }
            }
            match config.warnings.len() {
                0 => println!("\nconfiguration is valid"),
                n => println!("\nconfiguration is valid, with {n} warning(s)"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
