//! The `muxlink` binary: everything happens in [`agent_bin::main_entry`].

fn main() -> std::process::ExitCode {
    agent_bin::main_entry()
}
