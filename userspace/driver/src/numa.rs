//! NUMA nodes: which are online, and moving a process's pages between them
//! with migrate_pages(2) (the migration side of mmrace's races).

use anyhow::{bail, Context, Result};

pub const ONLINE_PATH: &str = "/sys/devices/system/node/online";

/// Parses a kernel node list such as `0-1` or `0,2-3` (cpulist format).
pub fn parse_node_list(text: &str) -> Result<Vec<u32>> {
    let text = text.trim();
    let mut nodes = Vec::new();
    if text.is_empty() {
        return Ok(nodes);
    }
    for part in text.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo, hi),
            None => (part, part),
        };
        let parse = |s: &str| {
            s.trim()
                .parse::<u32>()
                .with_context(|| format!("bad node list {text:?}"))
        };
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if lo > hi {
            bail!("bad node list {text:?}: range {lo}-{hi} runs backwards");
        }
        nodes.extend(lo..=hi);
    }
    nodes.sort_unstable();
    nodes.dedup();
    Ok(nodes)
}

/// The online NUMA nodes. A kernel without NUMA has no node directory and
/// one node, 0.
pub fn online_nodes() -> Result<Vec<u32>> {
    match std::fs::read_to_string(ONLINE_PATH) {
        Ok(text) => parse_node_list(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![0]),
        Err(e) => Err(e).with_context(|| format!("cannot read {ONLINE_PATH}")),
    }
}

/// A node bitmask as migrate_pages(2) and mbind(2) take it.
pub fn node_mask(nodes: &[u32]) -> Vec<libc::c_ulong> {
    let bits = libc::c_ulong::BITS;
    let top = nodes.iter().copied().max().unwrap_or(0);
    let mut mask = vec![0; (top / bits + 1) as usize];
    for &n in nodes {
        mask[(n / bits) as usize] |= 1 << (n % bits);
    }
    mask
}

/// The highest node id a one-word [`single_mask`] can hold.
pub const MAX_NODE: u32 = 63;

/// Two distinct online nodes from `nodes`, or an error that ends with
/// `fix` (how the caller's user gets out: which options to change).
pub fn validate_pair(nodes: &[u32], online: &[u32], fix: &str) -> Result<(u32, u32)> {
    let &[a, b] = nodes else {
        bail!("migrate: needs exactly two nodes, got {nodes:?} {fix}");
    };
    if a == b {
        bail!("migrate: nodes {a},{b} name the same node twice {fix}");
    }
    for n in [a, b] {
        if n > MAX_NODE {
            bail!("migrate: node {n} is above {MAX_NODE}, which is not supported {fix}");
        }
        if !online.contains(&n) {
            bail!("migrate: node {n} is not online (online nodes: {online:?}) {fix}");
        }
    }
    Ok((a, b))
}

/// A one-word migrate_pages(2) node mask, padded with a zero word: the
/// kernel reads `maxnode - 1` bits and we pass [`MASK_MAXNODE`], but a
/// kernel that read `maxnode` bits would then still read zeros, not garbage.
pub fn single_mask(node: u32) -> [libc::c_ulong; 2] {
    assert!(node <= MAX_NODE);
    [1 << node, 0]
}

/// maxnode for [`single_mask`]: 64 bits, plus the one the kernel
/// subtracts (the same convention as libnuma).
pub const MASK_MAXNODE: libc::c_ulong = 65;

/// The node holding the page at `addr` of this process (move_pages(2)
/// with no target nodes only reports), or `None` when it cannot be told
/// (not populated, no NUMA).
pub fn node_of(addr: usize) -> Option<u32> {
    let pages = [addr as *mut libc::c_void];
    let mut status: [libc::c_int; 1] = [-1];
    // SAFETY: one page pointer and one status slot; a null node list
    // makes the call a query.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_pages,
            0,
            1 as libc::c_ulong,
            pages.as_ptr(),
            std::ptr::null::<libc::c_int>(),
            status.as_mut_ptr(),
            0,
        )
    };
    (r == 0 && status[0] >= 0).then_some(status[0] as u32)
}

/// Moves the pages of process `pid` (0: this process) that are on `from`
/// nodes to `to` nodes. Returns how many pages could not be moved (the
/// syscall's own answer; not an error: pages can be busy).
pub fn migrate_pages(pid: libc::pid_t, from: &[u32], to: &[u32]) -> Result<u64> {
    let (old, new) = (node_mask(from), node_mask(to));
    let longs = old.len().max(new.len());
    let (mut old, mut new) = (old, new);
    old.resize(longs, 0);
    new.resize(longs, 0);
    // The kernel reads maxnode-1 bits; give it exactly the bits of our masks.
    let maxnode = longs as libc::c_ulong * libc::c_ulong::BITS as libc::c_ulong + 1;
    // SAFETY: both masks hold `longs` words, which is what maxnode covers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_migrate_pages,
            pid,
            maxnode,
            old.as_ptr(),
            new.as_ptr(),
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        bail!("migrate_pages(pid {pid}, {from:?} -> {to:?}): {e}");
    }
    Ok(r as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_lists() {
        assert_eq!(parse_node_list("0\n").unwrap(), [0]);
        assert_eq!(parse_node_list("0-1\n").unwrap(), [0, 1]);
        assert_eq!(parse_node_list("0,2-3").unwrap(), [0, 2, 3]);
        assert_eq!(parse_node_list("3,0-1,1").unwrap(), [0, 1, 3]);
        assert_eq!(parse_node_list("").unwrap(), Vec::<u32>::new());
        assert!(parse_node_list("0-").is_err());
        assert!(parse_node_list("a").is_err());
        assert!(parse_node_list("3-1").is_err());
    }

    #[test]
    fn masks() {
        assert_eq!(node_mask(&[0]), [1]);
        assert_eq!(node_mask(&[1]), [2]);
        assert_eq!(node_mask(&[0, 1]), [3]);
        assert_eq!(node_mask(&[65]), [0, 2]);
    }

    fn err(nodes: &[u32], online: &[u32]) -> String {
        validate_pair(nodes, online, "(FIX)")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn pairs_of_online_nodes() {
        assert_eq!(validate_pair(&[0, 1], &[0, 1], "").unwrap(), (0, 1));
        assert_eq!(validate_pair(&[1, 0], &[0, 1, 2], "").unwrap(), (1, 0));
        assert_eq!(validate_pair(&[2, 0], &[0, 2], "").unwrap(), (2, 0));
        for (nodes, online, what) in [
            (&[0][..], &[0, 1][..], "exactly two"),
            (&[0, 1, 2][..], &[0, 1, 2][..], "exactly two"),
            (&[][..], &[0][..], "exactly two"),
            (&[1, 1][..], &[0, 1][..], "same node"),
            (&[0, 1][..], &[0][..], "node 1 is not online"),
            (&[0, 64][..], &[0, 64][..], "above 63"),
        ] {
            let e = err(nodes, online);
            assert!(e.contains(what) && e.ends_with("(FIX)"), "{e}");
        }
        // On a one-node host (0 only) 0,1 must be refused.
        let online = online_nodes().unwrap();
        let r = validate_pair(&[0, 1], &online, "");
        assert_eq!(r.is_ok(), online.contains(&0) && online.contains(&1));
    }

    #[test]
    fn single_masks() {
        assert_eq!(single_mask(0), [1, 0]);
        assert_eq!(single_mask(1), [2, 0]);
        assert_eq!(single_mask(63), [1 << 63, 0]);
    }

    #[test]
    fn this_machine_has_a_node() {
        assert!(!online_nodes().unwrap().is_empty());
    }

    #[test]
    fn a_touched_page_has_a_node() {
        let v = vec![1u8; 4096 * 2];
        let addr = (v.as_ptr() as usize).next_multiple_of(4096);
        if let Some(n) = node_of(addr) {
            assert!(online_nodes().unwrap().contains(&n));
        }
    }

    #[test]
    fn migrating_to_the_same_node_is_harmless() {
        // Node 0 to node 0 moves nothing, on any machine with migrate_pages.
        if let Err(e) = migrate_pages(0, &[0], &[0]) {
            let msg = e.to_string();
            assert!(
                msg.contains("not implemented") || msg.contains("Function not"),
                "{msg}"
            );
        }
    }
}
