//! (being written)
#[derive(clap::Args)]
pub struct TraceArgs {}
pub fn run(_: TraceArgs) -> anyhow::Result<std::process::ExitCode> { anyhow::bail!("not yet") }
