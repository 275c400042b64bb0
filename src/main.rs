use std::process::ExitCode;

fn main() -> ExitCode {
    devx::cli::main()
}
