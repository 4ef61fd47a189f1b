//! File names in every spelling: `/dev//sda`, `/dev/./sda`,
//! `/dev/../dev/sda/` and `//dev/sda` all name `/dev/sda`, so paths are
//! normalised lexically before they are judged. A relative path is
//! resolved against the working directory when it is known (the payload's
//! `cwd`, or a literal `cd` earlier on the line); a relative path that
//! climbs out (`../../dev/sda`) may reach the root from anywhere, so it
//! is also judged as if it did.

/// Lexical normalisation of an absolute path: no empty, `.` or `..`
/// components (`..` at the root stays at the root), no trailing slash.
pub(crate) fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for part in &parts {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The absolute paths `path` may name, given the working directory `cwd`
/// if known.
pub(crate) fn candidates(path: &str, cwd: Option<&str>) -> Vec<String> {
    if path.starts_with('/') {
        return vec![normalise(path)];
    }
    let mut out = Vec::new();
    if let Some(cwd) = cwd {
        out.push(normalise(&format!("{cwd}/{path}")));
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.first() == Some(&"..") {
        out.push(normalise(path));
    }
    out
}

/// Whether writing to `path` (normalised) overwrites a disk or memory.
pub(crate) fn is_device(path: &str) -> bool {
    let Some(device) = path.strip_prefix("/dev/") else {
        return false;
    };
    const PREFIXES: [&str; 17] = [
        "sd", "hd", "vd", "xvd", "nvme", "mmcblk", "disk/", "mapper/", "dm-", "md", "nbd", "block/", "rbd", "zd",
        "bcache", "pmem", "sr",
    ];
    PREFIXES.iter().any(|p| device.starts_with(p)) || matches!(device, "mem" | "kmem" | "port" | "root" | "nvram")
}

/// Whether writing to `path` (normalised) controls the kernel: the sysrq
/// trigger (`b` reboots, `c` crashes), kernel parameters, power state.
pub(crate) fn is_kernel_control(path: &str) -> bool {
    path == "/proc/sysrq-trigger"
        || path.starts_with("/proc/sys/kernel/")
        || path.starts_with("/proc/sys/vm/")
        || path == "/sys/power/state"
        || path.starts_with("/sys/firmware/")
        || path.starts_with("/sys/kernel/")
}

/// The top of the file system and the directories the system lives in:
/// `/`, the system's top-level directories (and `/home`, everyone's
/// data), and the main second-level ones. Application directories
/// (`/srv`, `/opt`, `/tmp`, `/mnt`, `/data`) are not.
pub(crate) fn is_system_root(path: &str) -> bool {
    const TOP_LEVEL: [&str; 17] = [
        "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root", "/run",
        "/sbin", "/sys", "/usr", "/var",
    ];
    const SECOND_LEVEL: [&str; 12] = [
        "/usr/bin",
        "/usr/sbin",
        "/usr/lib",
        "/usr/lib64",
        "/usr/libexec",
        "/usr/local",
        "/usr/share",
        "/usr/include",
        "/var/lib",
        "/var/log",
        "/etc/ssh",
        "/etc/systemd",
    ];
    TOP_LEVEL.contains(&path) || SECOND_LEVEL.contains(&path)
}

/// Files whose loss (by truncation or overwrite) breaks logins, booting or
/// every program: accounts, sudoers, fstab, the boot directory, binaries
/// and libraries.
pub(crate) fn is_critical_file(path: &str) -> bool {
    const FILES: [&str; 8] = [
        "/etc/passwd",
        "/etc/shadow",
        "/etc/group",
        "/etc/gshadow",
        "/etc/sudoers",
        "/etc/fstab",
        "/etc/hosts",
        "/etc/ld.so.preload",
    ];
    const TREES: [&str; 12] = [
        "/boot/",
        "/bin/",
        "/sbin/",
        "/lib/",
        "/lib32/",
        "/lib64/",
        "/usr/bin/",
        "/usr/sbin/",
        "/usr/lib/",
        "/usr/lib64/",
        "/etc/pam.d/",
        "/etc/sudoers.d/",
    ];
    FILES.contains(&path) || TREES.iter().any(|t| path.starts_with(t)) || is_system_root(path)
}

/// A glob such as `/*` or `/u*` names system roots when its fixed prefix
/// is the root or a top-level directory.
pub(crate) fn glob_reaches_system_root(pattern: &str) -> bool {
    let Some(cut) = pattern.find(['*', '?', '[']) else {
        return false;
    };
    let fixed = &pattern[..cut];
    let dir = match fixed.rfind('/') {
        Some(slash) => &fixed[..=slash],
        None => return false,
    };
    dir.starts_with('/') && is_system_root(&normalise(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_path() {
        for p in ["/dev//sda", "/dev/./sda", "/dev/../dev/sda", "//dev/sda", "/dev/sda/", "/./dev/sda", "/../dev/sda"] {
            assert_eq!(normalise(p), "/dev/sda", "{p}");
        }
        assert_eq!(normalise("//"), "/");
        assert_eq!(normalise("/."), "/");
        assert_eq!(candidates("../../../dev/sda", None), ["/dev/sda"]);
        assert_eq!(candidates("sda", Some("/dev")), ["/dev/sda"]);
        assert!(candidates("sda", None).is_empty());
    }

    #[test]
    fn classes_of_paths() {
        assert!(is_device("/dev/sda") && is_device("/dev/nvme0n1") && !is_device("/dev/null"));
        assert!(is_kernel_control("/proc/sysrq-trigger") && is_kernel_control("/proc/sys/kernel/panic"));
        assert!(is_system_root("/") && is_system_root("/etc") && is_system_root("/usr/lib"));
        assert!(!is_system_root("/srv/app/cache") && !is_system_root("/srv") && !is_system_root("/tmp"));
        assert!(is_critical_file("/etc/passwd") && is_critical_file("/usr/bin/ls") && !is_critical_file("/tmp/x"));
        assert!(
            glob_reaches_system_root("/*") && glob_reaches_system_root("/u*") && !glob_reaches_system_root("/srv/x/*")
        );
    }
}
