//! Test helpers shared by the integration suites: fault proxies for TCP and UDP.

#![warn(missing_docs)]
