//! The `dqwatch` binary: everything lives in the library; see `dqwatch::cli`.

fn main() -> std::process::ExitCode {
    dqwatch::cli::main()
}
