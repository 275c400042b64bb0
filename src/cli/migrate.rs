//! `devx migrate ...` (placeholder: being written).

use std::process::ExitCode;

use clap::Args;

use crate::config::Config;

#[derive(Args)]
#[command(about = "Apply, revert and inspect schema migrations")]
pub struct MigrateArgs {}

pub async fn run(_config: &Config, _args: MigrateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("devx migrate is not built yet")
}
