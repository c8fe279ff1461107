//! A kernel setting (a sysfs or procfs control file) changed for the run and
//! put back when the guard is dropped, so a test machine is left as it was.

use anyhow::{Context, Result};

/// One control file set to a value; its old value is written back on drop.
#[derive(Debug)]
pub struct Setting {
    pub path: String,
    pub value: String,
    /// What the file said before (the `[selected]` word of a choice file).
    pub before: String,
}

/// The current value of a control file: the `[bracketed]` word of a choice
/// file such as `shmem_enabled`, else the trimmed text.
pub fn current(text: &str) -> String {
    crate::mm::selected_mode(text).unwrap_or_else(|| text.trim().to_string())
}

impl Setting {
    /// Writes `value` to `path` (never creating it); `kconfig` names what
    /// the kernel needs for the file to exist, for the error.
    pub fn set(path: &str, value: &str, kconfig: &str) -> Result<Setting> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {path} (the kernel needs {kconfig})"))?;
        crate::kfile::write(path, &format!("{value}\n"))
            .with_context(|| format!("cannot write {value} to {path}"))?;
        Ok(Setting {
            path: path.to_string(),
            value: value.to_string(),
            before: current(&text),
        })
    }
}

impl Drop for Setting {
    fn drop(&mut self) {
        if self.before != self.value {
            let _ = crate::kfile::write(&self.path, &format!("{}\n", self.before));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_values() {
        assert_eq!(
            current("always within_size advise [never] deny force\n"),
            "never"
        );
        assert_eq!(current("100\n"), "100");
    }

    #[test]
    fn set_and_restore() {
        let path = std::env::temp_dir().join(format!("mmrace-setting-{}", std::process::id()));
        let p = path.to_str().unwrap();
        std::fs::write(&path, "always [never]\n").unwrap();
        {
            let s = Setting::set(p, "always", "X").unwrap();
            assert_eq!(s.before, "never");
            // Control files are not truncated: the value is written over.
            assert!(std::fs::read_to_string(&path)
                .unwrap()
                .starts_with("always\n"));
        }
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("never\n"));
        std::fs::remove_file(&path).unwrap();
        let err = format!("{:#}", Setting::set(p, "1", "CONFIG_KSM").unwrap_err());
        assert!(err.contains("CONFIG_KSM"), "{err}");
    }
}
