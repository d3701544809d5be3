//! The `dqwatch` command line: parse arguments, set up logging and the runtime, dispatch to
//! one file per command, and turn the result into an exit code.

/// `print!` for command output: a closed pipe ends output quietly ([`exit::Stdout`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::exit::print(format_args!($($arg)*), false)
    };
}

/// `println!` for command output: a closed pipe ends output quietly ([`exit::Stdout`]).
macro_rules! outln {
    () => {
        $crate::cli::exit::print(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::cli::exit::print(format_args!($($arg)*), true)
    };
}

mod args;
mod completions;
mod daemon;
mod demo;
mod exit;
mod incidents;
mod init;
mod list;
mod load;
mod now;
mod outbox;
mod render;
mod run;
mod state;
mod validate;

pub use args::{Args, Command, LogFormat};
pub use exit::Exit;

use clap::Parser;
use std::process::ExitCode;

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return Exit::CheckFailed.into();
        }
    };
    let exit = runtime.block_on(dispatch(args));
    exit.into()
}

async fn dispatch(args: Args) -> Exit {
    let config = args.config.as_deref();
    match args.command {
        Command::Run(a) => run::cmd(config, a).await,
        Command::Validate(a) => validate::cmd(config, a).await,
        Command::List(a) => list::cmd(config, &a),
        Command::Render(a) => render::cmd(config, &a),
        Command::Demo(a) => demo::cmd(config, a).await,
        Command::Incidents(c) => incidents::cmd(config, c).await,
        Command::Outbox(c) => outbox::cmd(config, c).await,
        Command::Daemon { listen } => daemon::cmd(config, listen.as_deref()).await,
        Command::Init { dir } => init::cmd(&dir),
        Command::Completions { shell } => completions::cmd(shell),
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
