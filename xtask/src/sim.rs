//! (being written)
#[derive(clap::Args)]
pub struct SimArgs {}
pub fn run(_: SimArgs) -> anyhow::Result<std::process::ExitCode> { anyhow::bail!("not yet") }
