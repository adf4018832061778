//! Every subscriber holds a socket, so a swarm needs as many file descriptors as subscribers
//! plus what the process already uses. The soft limit is often 1024; it is raised to the hard
//! limit, and a swarm that cannot fit under the hard limit refuses to start with a clear reason
//! instead of failing thousands of connections with EMFILE halfway through.

/// File descriptors open in this process now (Linux: /proc/self/fd), if known.
pub fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

/// The hard RLIMIT_NOFILE: the most descriptors this process could ever open.
pub fn hard_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes a complete `rlimit` into the pointer it is given.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0).then_some(limit.rlim_max)
}

/// Makes room for `more` descriptors on top of those open now: raises the soft RLIMIT_NOFILE to
/// the hard limit when it is too low. Returns the soft limit in force; an error when even the
/// hard limit is too low (only a privileged process could raise it).
pub fn raise_fd_limit(more: u64) -> Result<u64, String> {
    let needed = open_fds().unwrap_or(64) + more;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes a complete `rlimit` into the pointer it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(format!(
            "cannot read the file descriptor limit: {}",
            std::io::Error::last_os_error()
        ));
    }
    let (soft, hard) = (limit.rlim_cur, limit.rlim_max);
    if soft >= needed {
        return Ok(soft);
    }
    if hard < needed {
        return Err(format!(
            "needs about {needed} file descriptors ({more} more than the {} open now) but the \
             hard limit (RLIMIT_NOFILE) is {hard}; raise it (`ulimit -Hn`, LimitNOFILE= in a \
             systemd unit, nofile in /etc/security/limits.conf) or use fewer subscribers",
            needed - more
        ));
    }
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: setrlimit reads the `rlimit` it is given; raising the soft limit up to the hard
    // limit needs no privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(format!(
            "cannot raise the file descriptor limit from {soft} to {hard}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(hard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_need_within_the_limit_is_met_and_an_impossible_one_is_explained() {
        assert!(open_fds().is_some_and(|n| n >= 3));
        let soft = raise_fd_limit(10).unwrap();
        assert!(soft >= open_fds().unwrap() + 10);
        let e = raise_fd_limit(u64::MAX / 2).unwrap_err();
        assert!(e.contains("hard limit (RLIMIT_NOFILE)"), "{e}");
    }
}
