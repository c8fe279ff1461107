//! Where the driver writes. Protocol lines ([`mmrace_proto::wire`]) go to the
//! machine channel: /dev/hvc0 in the mmrace guest (a virtio console the host
//! reads apart from the kernel's serial console), stdout elsewhere. Human
//! lines always go to stdout.

use mmrace_proto::wire::{self, Msg};
use std::fs::OpenOptions;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct Output {
    machine: Arc<Mutex<Box<dyn Write + Send>>>,
    /// Whether the machine channel is stdout (then human lines are not
    /// repeated on it, they are already there).
    machine_is_stdout: bool,
}

impl Output {
    /// Protocol lines to `path` (a virtio console device in the guest).
    pub fn to_device(path: &str) -> std::io::Result<Self> {
        let f = OpenOptions::new().write(true).open(path)?;
        Ok(Output {
            machine: Arc::new(Mutex::new(Box::new(f))),
            machine_is_stdout: false,
        })
    }

    /// Protocol lines appended to `path`, created if missing (`--wire`: a
    /// device such as /dev/hvc1, or a file on a test machine).
    pub fn to_path(path: &std::path::Path) -> std::io::Result<Self> {
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Output {
            machine: Arc::new(Mutex::new(Box::new(f))),
            machine_is_stdout: false,
        })
    }

    /// Protocol lines kept in memory, for tests: returns the output and a
    /// function giving the lines written so far.
    pub fn memory() -> (Self, impl Fn() -> Vec<String>) {
        #[derive(Clone, Default)]
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Shared::default();
        let out = Output {
            machine: Arc::new(Mutex::new(Box::new(buf.clone()))),
            machine_is_stdout: false,
        };
        let lines = move || {
            let bytes = buf.0.lock().unwrap().clone();
            String::from_utf8_lossy(&bytes)
                .lines()
                .map(str::to_string)
                .collect()
        };
        (out, lines)
    }

    /// Protocol lines interleaved with human ones on stdout.
    pub fn stdout() -> Self {
        Output {
            machine: Arc::new(Mutex::new(Box::new(std::io::stdout()))),
            machine_is_stdout: true,
        }
    }

    /// Sends one protocol message; errors are reported on stderr, not fatal:
    /// losing the host link must not stop a running stress test.
    pub fn msg(&self, msg: &Msg) {
        let line = wire::encode(msg);
        let mut w = self.machine.lock().unwrap();
        if let Err(e) = w.write_all(line.as_bytes()).and_then(|_| w.flush()) {
            eprintln!("mmrace-driver: cannot write protocol line: {e}");
        }
    }

    /// A line of a program's output on the machine channel, as it is: not
    /// a protocol line (the host reads past it; wire.log keeps it).
    pub fn raw(&self, text: &str) {
        let mut w = self.machine.lock().unwrap();
        let _ = writeln!(w, "{text}").and_then(|_| w.flush());
    }

    pub fn human(&self, text: &str) {
        let _guard = self.machine_is_stdout.then(|| self.machine.lock().unwrap());
        println!("mmrace: {text}");
    }
}
