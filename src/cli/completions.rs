//! `dqwatch completions bash|zsh|fish`: the shell completion script, generated from the clap
//! definition (clap_complete), on stdout.

use super::args::{Args, Shell};
use super::exit::{Exit, Stdout};
use clap::CommandFactory;

/// Writes the completion script for `shell` to stdout.
pub fn cmd(shell: Shell) -> Exit {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut command = Args::command();
    clap_complete::generate(shell, &mut command, "dqwatch", &mut Stdout);
    Exit::Clean
}
