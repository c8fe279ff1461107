//! Writing kernel control files (procfs, sysfs, debugfs). Unlike
//! `std::fs::write` this never creates the file: a missing control file must
//! fail as "No such file or directory", which names the real problem (a
//! kernel option or module not there), rather than a confusing EACCES from
//! an attempted create.

use std::io::Write;

pub fn write(path: &str, data: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(data.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn never_creates() {
        let path = std::env::temp_dir().join(format!("mmrace-kfile-{}", std::process::id()));
        let p = path.to_str().unwrap();
        let err = super::write(p, "x").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        std::fs::write(&path, "old").unwrap();
        super::write(p, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        std::fs::remove_file(&path).unwrap();
    }
}
