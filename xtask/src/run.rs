//! (being written)
#[derive(clap::Args)]
pub struct RunArgs {}
pub fn run(_: RunArgs) -> anyhow::Result<std::process::ExitCode> { anyhow::bail!("not yet") }
