//! What the benches that start their own servers (this binary again, as a child) share.

use std::{io::Read, time::Duration};

/// A server's own deadline, whatever happens to the driver.
const SERVER_MAX: Duration = Duration::from_secs(15 * 60);

/// Ends this server process when its driver closes the server's stdin (the driver went
/// away), or after `SERVER_MAX` in any case: no server outlives a bench.
pub fn exit_with_driver() {
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    std::thread::spawn(|| {
        std::thread::sleep(SERVER_MAX);
        std::process::exit(0);
    });
}
