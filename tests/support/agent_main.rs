//! The `muxlink` binary built inside the e2e package so the tests can name it
//! with `CARGO_BIN_EXE_muxlink-e2e-agent`: it runs exactly `agent_bin::main_entry`.

fn main() -> std::process::ExitCode {
    agent_bin::main_entry()
}
