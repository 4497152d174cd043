//! `passerelle audit`.

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum AuditCommand {}

pub(crate) fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
