//! The kernel settings every command that builds checks alike, before
//! anything is built: KERNEL_SERIES (one series or a list), KERNEL_VARIANT
//! (a patch under kernel/variants/) and KERNEL_PROFILE (not with a kernel
//! of the user's). Each error names the setting and the valid values.

use mmrace_proto::spec::KernelProfile;
use std::path::Path;

/// The series a run is on when KERNEL_SERIES is not given.
pub const DEFAULT_SERIES: &str = "7.3";

/// KERNEL_SERIES: names (7.3), none twice; several only without a kernel
/// of the user's (`own_kernel`: KDIR or KERNEL_SRC, each one kernel).
/// Empty: the default series.
pub fn series_list(series: &[String], own_kernel: bool) -> Result<Vec<String>, String> {
    let series = if series.is_empty() {
        vec![DEFAULT_SERIES.to_string()]
    } else {
        series.to_vec()
    };
    for (i, s) in series.iter().enumerate() {
        let name = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
        if s.is_empty() || !name || s == "." || s == ".." {
            return Err(format!(
                "KERNEL_SERIES: '{s}' is not a series name (e.g. 7.3)"
            ));
        }
        if series[..i].contains(s) {
            return Err(format!("KERNEL_SERIES lists {s} twice"));
        }
    }
    if series.len() > 1 && own_kernel {
        return Err(format!("KERNEL_SERIES lists several series ({}): KDIR and KERNEL_SRC name one kernel, use them without a list", series.join(" ")));
    }
    Ok(series)
}

/// The names of kernel/variants/*.patch, sorted.
pub fn variant_names(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("kernel/variants"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_suffix(".patch").map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// KERNEL_VARIANT: kernel/variants/NAME.patch must exist.
pub fn variant(root: &Path, name: &str) -> Result<(), String> {
    let names = variant_names(root);
    if names.iter().any(|n| n == name) {
        Ok(())
    } else {
        Err(format!(
            "no kernel variant '{name}': have {}",
            names.join(" ")
        ))
    }
}

/// KERNEL_PROFILE: its fragment kernel/profiles/NAME.config must exist
/// (default has none), and a kernel of the user's (`kdir`) takes none.
pub fn profile(
    root: &Path,
    profile: Option<KernelProfile>,
    kdir: Option<&Path>,
) -> Result<(), String> {
    let Some(p) = profile.filter(|p| *p != KernelProfile::Default) else {
        return Ok(());
    };
    let p = p.name();
    if let Some(k) = kdir {
        return Err(format!("KERNEL_PROFILE={p} builds the test kernel; KDIR={} is a kernel of your own (configure its sanitizers there)", k.display()));
    }
    if root.join(format!("kernel/profiles/{p}.config")).exists() {
        Ok(())
    } else {
        Err(format!(
            "no kernel profile '{p}' (kernel/profiles/{p}.config)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(words: &[&str], own: bool) -> Result<Vec<String>, String> {
        let v: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        series_list(&v, own)
    }

    #[test]
    fn series_are_names_once_and_one_for_a_kernel_of_your_own() {
        let e = list(&["7.2", "7.2"], false).unwrap_err();
        assert!(e.contains("lists 7.2 twice"), "{e}");
        let e = list(&["../x"], false).unwrap_err();
        assert!(e.contains("not a series name"), "{e}");
        let e = list(&["7.2", "7.3"], true).unwrap_err();
        assert!(e.contains("KDIR and KERNEL_SRC name one kernel"), "{e}");
        assert_eq!(list(&[], false).unwrap(), vec!["7.3".to_string()]);
        assert_eq!(list(&["7.3"], true).unwrap(), vec!["7.3".to_string()]);
    }

    #[test]
    fn variants_and_profiles_of_this_tree() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        assert!(variant(&root, "warn-once-only").is_ok());
        let e = variant(&root, "nosuch").unwrap_err();
        assert!(
            e.starts_with("no kernel variant 'nosuch': have ") && e.contains("warn-once-only"),
            "{e}"
        );
        assert!(profile(&root, Some(KernelProfile::Lockdep), None).is_ok());
        assert!(profile(&root, Some(KernelProfile::Default), Some(Path::new("/k"))).is_ok());
        let e = profile(&root, Some(KernelProfile::Kasan), Some(Path::new("/k"))).unwrap_err();
        assert!(e.contains("a kernel of your own"), "{e}");
    }
}
