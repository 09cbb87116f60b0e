//! (being written)
#[derive(clap::Args)]
pub struct TestArgs {}
pub fn run(_: TestArgs) -> anyhow::Result<std::process::ExitCode> { anyhow::bail!("not yet") }
