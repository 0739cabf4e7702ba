//! `muxlink-e2e-phone-cli`: exactly the `muxlink-phone` command line
//! (`mobile_client::cli::main_entry`), built by cargo for the tests in this package.

fn main() -> anyhow::Result<()> {
    mobile_client::cli::main_entry()
}
