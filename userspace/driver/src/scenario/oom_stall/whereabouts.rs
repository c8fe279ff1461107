//! Where a process's threads are in the kernel, from /proc: the state,
//! `wchan` and the first frames of `stack` of each thread. Said with a
//! stall, so its report shows what the stuck task waits for.

use std::fmt::Write as _;

/// Frames of each thread's kernel stack kept.
const FRAMES: usize = 8;

/// `fn+0x12/0x80` -> `fn`.
fn frame_name(line: &str) -> Option<&str> {
    let f = line.split_whitespace().nth(1)?;
    Some(f.split('+').next().unwrap_or(f))
}

fn thread(pid: libc::pid_t, tid: &str) -> Option<String> {
    let dir = format!("/proc/{pid}/task/{tid}");
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    let state = stat.rsplit_once(") ")?.1.chars().next()?;
    let wchan = std::fs::read_to_string(format!("{dir}/wchan")).unwrap_or_default();
    let stack = std::fs::read_to_string(format!("{dir}/stack")).unwrap_or_default();
    let frames: Vec<&str> = stack.lines().filter_map(frame_name).take(FRAMES).collect();
    let mut s = format!("tid {tid} {state}");
    if !wchan.trim().is_empty() && wchan.trim() != "0" {
        let _ = write!(s, " in {}", wchan.trim());
    }
    if !frames.is_empty() {
        let _ = write!(s, " [{}]", frames.join(" < "));
    }
    Some(s)
}

/// `tid 64 D in folio_wait_bit [folio_wait_bit < filemap_fault < ...]; ...`,
/// or why not.
pub fn describe(pid: libc::pid_t) -> String {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return format!("pid {pid}: no /proc entry");
    };
    let mut tids: Vec<String> = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    tids.sort();
    let v: Vec<String> = tids.iter().filter_map(|t| thread(pid, t)).collect();
    v.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_lose_their_offsets() {
        assert_eq!(
            frame_name("[<0>] folio_wait_bit_common+0x1a2/0x3c0"),
            Some("folio_wait_bit_common")
        );
        assert_eq!(frame_name(""), None);
    }

    #[test]
    fn describes_this_process() {
        let s = describe(std::process::id() as libc::pid_t);
        assert!(s.starts_with("tid "), "{s}");
    }
}
