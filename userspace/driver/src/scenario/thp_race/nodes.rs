//! The migrate party's two NUMA nodes: checked before anything starts, so a
//! guest booted without the second node fails with a message instead of a
//! migrate party that silently moves nothing.

use anyhow::{bail, Result};

/// The highest node id the migrate party's one-word masks can hold.
pub const MAX_NODE: u32 = 63;

/// `--nodes` as given, checked against the online nodes: exactly two
/// distinct nodes, both online. Every error names `--nodes` and
/// `--no-migrate`, the two ways out.
pub fn validate(nodes: &[u32], online: &[u32]) -> Result<(u32, u32)> {
    let fix =
        "(set two online nodes with --nodes A,B, or turn the migrate party off with --no-migrate)";
    let &[a, b] = nodes else {
        bail!("migrate: --nodes needs exactly two nodes, got {nodes:?} {fix}");
    };
    if a == b {
        bail!("migrate: --nodes {a},{b} names the same node twice {fix}");
    }
    for n in [a, b] {
        if n > MAX_NODE {
            bail!(
                "migrate: node {n} is above {MAX_NODE}, which this scenario does not support {fix}"
            );
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
pub fn mask(node: u32) -> [libc::c_ulong; 2] {
    assert!(node <= MAX_NODE);
    [1 << node, 0]
}

/// maxnode for [`mask`]: 64 bits, plus the one the kernel subtracts
/// (the same convention as libnuma).
pub const MASK_MAXNODE: libc::c_ulong = 65;

#[cfg(test)]
mod tests {
    use super::*;

    fn err(nodes: &[u32], online: &[u32]) -> String {
        validate(nodes, online).unwrap_err().to_string()
    }

    #[test]
    fn accepts_two_online_nodes() {
        assert_eq!(validate(&[0, 1], &[0, 1]).unwrap(), (0, 1));
        assert_eq!(validate(&[1, 0], &[0, 1, 2]).unwrap(), (1, 0));
        assert_eq!(validate(&[2, 0], &[0, 2]).unwrap(), (2, 0));
    }

    #[test]
    fn rejects_and_names_the_way_out() {
        for (nodes, online, what) in [
            (&[0][..], &[0, 1][..], "exactly two"),
            (&[0, 1, 2][..], &[0, 1, 2][..], "exactly two"),
            (&[][..], &[0][..], "exactly two"),
            (&[1, 1][..], &[0, 1][..], "same node"),
            (&[0, 1][..], &[0][..], "node 1 is not online"),
            (&[0, 64][..], &[0, 64][..], "above 63"),
        ] {
            let e = err(nodes, online);
            assert!(e.contains(what), "{e}");
            assert!(e.contains("--no-migrate") && e.contains("--nodes"), "{e}");
        }
    }

    #[test]
    fn this_machines_online_nodes_decide() {
        // On a one-node host (0 only) the default 0,1 must be refused.
        let online = crate::numa::online_nodes().unwrap();
        let r = validate(&[0, 1], &online);
        assert_eq!(r.is_ok(), online.contains(&0) && online.contains(&1));
    }

    #[test]
    fn masks() {
        assert_eq!(mask(0), [1, 0]);
        assert_eq!(mask(1), [2, 0]);
        assert_eq!(mask(63), [1 << 63, 0]);
    }
}
