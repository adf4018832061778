//! The `patrol` binary: install the TLS provider, set up logging, hand over to the CLI.

fn main() -> std::process::ExitCode {
    patrol::install_crypto_provider();
    patrol::cli::main()
}
