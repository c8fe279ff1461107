//! The taint oracle's reading: /proc/sys/kernel/tainted, sent with every
//! snapshot (the first one is the run's baseline, the last one its end).
//! The host decodes and judges it ([`mmrace_proto::oracle::new_taint`]).

pub const PATH: &str = "/proc/sys/kernel/tainted";

/// The taint mask, or None when the file cannot be read (no /proc/sys).
pub fn read() -> Option<u64> {
    std::fs::read_to_string(PATH).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_machines_mask() {
        if std::path::Path::new(super::PATH).exists() {
            assert!(super::read().is_some());
        }
    }
}
