//! `muxlink-phone`: pair with a host, list its sessions, or attach to a pane in
//! the local terminal (raw mode, Ctrl-] quits). The code is `mobile_client::cli`.

fn main() -> std::process::ExitCode {
    mobile_client::cli::main()
}
