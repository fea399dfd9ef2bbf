//! Captures everything the control plane logs in this test process, so a test can grep it for
//! secrets.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// The captured log bytes (every tracing event at debug level and above, no colours).
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    /// Installs the process-wide subscriber writing into a new capture (once per test binary).
    pub fn install() -> Self {
        let logs = CapturedLogs::default();
        let sink = logs.clone();
        tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .init();
        logs
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
