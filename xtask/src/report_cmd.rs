//! (being written)
#[derive(clap::Args)]
pub struct ReportArgs {}
#[derive(clap::Args)]
pub struct CompareArgs {}
pub fn report(_: ReportArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("not yet")
}
pub fn compare(_: CompareArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("not yet")
}
