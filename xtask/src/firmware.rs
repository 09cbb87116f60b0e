//! (being written)
#[derive(clap::Args)]
pub struct BuildArgs {}
pub fn run(_: BuildArgs) -> anyhow::Result<()> { anyhow::bail!("not yet") }
