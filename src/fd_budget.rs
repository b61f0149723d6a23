//! The file-descriptor budget: the gateway's tunnels (two descriptors each:
//! technician and device), the admin API's connections and a reserve (database
//! pool, log and state files, notification sockets) must together fit under
//! `RLIMIT_NOFILE`, so a saturated API can never take the descriptors the
//! gateway needs. Read at start; the soft limit is raised (up to the hard
//! limit) when the configured limits need it; when they still do not fit, the
//! limits are reduced to fit and a warning names the keys.

/// Descriptors each gateway connection may hold: the technician's and the device's.
pub const FDS_PER_TUNNEL: u64 = 2;

/// Configured limits, as read from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// `gateway.max_connections`.
    pub gateway_connections: usize,
    /// `api.max_connections`.
    pub api_connections: usize,
    /// `gateway.fd_reserve`.
    pub reserve: u64,
}

impl Wanted {
    /// Descriptors these limits can hold at once.
    pub fn needed(&self) -> u64 {
        (self.gateway_connections as u64)
            .saturating_mul(FDS_PER_TUNNEL)
            .saturating_add(self.api_connections as u64)
            .saturating_add(self.reserve)
    }
}

/// The limits to run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The soft `RLIMIT_NOFILE` the budget was computed for.
    pub limit: u64,
    pub gateway_connections: usize,
    pub api_connections: usize,
    /// Whether the configured limits had to be reduced.
    pub reduced: bool,
}

/// Why no budget fits.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error(
        "the file-descriptor limit ({limit}) leaves no room for one tunnel and one API connection \
         beyond gateway.fd_reserve ({reserve}); raise `ulimit -n` (LimitNOFILE= in systemd) or lower gateway.fd_reserve"
    )]
    TooLow { limit: u64, reserve: u64 },
}

/// Fits the wanted limits under `limit` descriptors. When they do not fit, both
/// connection limits are scaled down in proportion to their descriptor use
/// (at least one each); the API gets what the gateway's share leaves, never
/// more than it asked for.
pub fn fit(limit: u64, wanted: Wanted) -> Result<Budget, BudgetError> {
    let needed = wanted.needed();
    if needed <= limit {
        return Ok(Budget {
            limit,
            gateway_connections: wanted.gateway_connections,
            api_connections: wanted.api_connections,
            reduced: false,
        });
    }
    let available = limit.saturating_sub(wanted.reserve);
    if available < FDS_PER_TUNNEL + 1 {
        return Err(BudgetError::TooLow {
            limit,
            reserve: wanted.reserve,
        });
    }
    let gateway_fds = (wanted.gateway_connections as u64).saturating_mul(FDS_PER_TUNNEL);
    // At least one, so that the gateway's share always leaves the API a descriptor.
    let api_fds = (wanted.api_connections as u64).max(1);
    // u128: the product cannot overflow whatever the configuration says.
    let share = |fds: u64| -> u64 {
        let total = u128::from(gateway_fds) + u128::from(api_fds);
        (u128::from(fds) * u128::from(available) / total.max(1)) as u64
    };
    let gateway = (share(gateway_fds) / FDS_PER_TUNNEL).clamp(1, wanted.gateway_connections.max(1) as u64);
    let api_room = available.saturating_sub(gateway * FDS_PER_TUNNEL);
    let api = api_room.clamp(1, wanted.api_connections.max(1) as u64);
    Ok(Budget {
        limit,
        gateway_connections: usize::try_from(gateway).unwrap_or(usize::MAX),
        api_connections: usize::try_from(api).unwrap_or(usize::MAX),
        reduced: true,
    })
}

/// A per-source limit (`key`) kept within its listener's limit, which the
/// budget may have reduced; says so when it has to lower it.
pub fn per_source_within(key: &str, per_source: usize, max: usize) -> usize {
    if per_source <= max {
        return per_source;
    }
    tracing::warn!("{key} ({per_source}) lowered to {max}, the connection limit the file-descriptor budget allows");
    max
}

/// Reads `RLIMIT_NOFILE`, raises the soft limit towards what `wanted` needs
/// (never above the hard limit), and fits the limits under it, warning when
/// they had to be reduced.
#[cfg(unix)]
pub fn prepare(wanted: Wanted) -> Result<Budget, BudgetError> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let current = getrlimit(Resource::Nofile);
    // `None` means unlimited.
    let soft = current.current.unwrap_or(u64::MAX);
    let hard = current.maximum.unwrap_or(u64::MAX);
    let needed = wanted.needed();
    let mut limit = soft;
    if needed > soft && hard > soft {
        let target = needed.min(hard);
        match setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(target),
                maximum: current.maximum,
            },
        ) {
            Ok(()) => {
                tracing::info!(from = soft, to = target, "raised the soft file-descriptor limit");
                limit = target;
            }
            Err(e) => tracing::warn!(error = %e, soft, hard, "could not raise the soft file-descriptor limit"),
        }
    }
    let budget = fit(limit, wanted)?;
    if budget.reduced {
        tracing::warn!(
            limit,
            needed,
            gateway_max_connections = budget.gateway_connections,
            api_max_connections = budget.api_connections,
            "the file-descriptor limit cannot hold gateway.max_connections ({}) x {FDS_PER_TUNNEL} + api.max_connections ({}) + gateway.fd_reserve ({}): running with gateway.max_connections = {} and api.max_connections = {}; raise `ulimit -n` (LimitNOFILE= in systemd) or lower these keys",
            wanted.gateway_connections,
            wanted.api_connections,
            wanted.reserve,
            budget.gateway_connections,
            budget.api_connections,
        );
    } else {
        tracing::debug!(limit, needed, "file-descriptor budget fits");
    }
    Ok(budget)
}

/// Without `RLIMIT_NOFILE`, the configured limits are used as they are.
#[cfg(not(unix))]
pub fn prepare(wanted: Wanted) -> Result<Budget, BudgetError> {
    Ok(Budget {
        limit: u64::MAX,
        gateway_connections: wanted.gateway_connections,
        api_connections: wanted.api_connections,
        reduced: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(g: usize, a: usize, r: u64) -> Wanted {
        Wanted {
            gateway_connections: g,
            api_connections: a,
            reserve: r,
        }
    }

    #[test]
    fn limits_that_fit_are_kept() {
        let b = fit(1024, wanted(300, 128, 256)).unwrap();
        assert_eq!((b.gateway_connections, b.api_connections, b.reduced), (300, 128, false));
        // Exactly at the limit still fits: 2*300 + 168 + 256 = 1024.
        let b = fit(1024, wanted(300, 168, 256)).unwrap();
        assert!(!b.reduced);
    }

    #[test]
    fn limits_that_do_not_fit_are_scaled_down_in_proportion() {
        // The defaults under a hard limit of 1024: 768 descriptors for the
        // 20 256 wanted, so each listener gets about 3.8 % of what it asked.
        let b = fit(1024, wanted(10_000, 256, 256)).unwrap();
        assert!(b.reduced);
        assert_eq!(b.gateway_connections, 379);
        assert_eq!(b.api_connections, 10);
        assert_eq!(2 * 379 + 10 + 256, 1024);
    }

    #[test]
    fn too_low_a_limit_is_an_error() {
        assert!(fit(256, wanted(10, 10, 256)).is_err());
        assert!(fit(258, wanted(10, 10, 256)).is_err());
        let b = fit(259, wanted(10, 10, 256)).unwrap();
        assert_eq!((b.gateway_connections, b.api_connections), (1, 1));
    }

    #[test]
    fn a_reduced_budget_always_fits_and_never_grows() {
        for limit in [3u64, 4, 5, 7, 100, 1023, 1024, 4096, 65_536] {
            for g in [1usize, 2, 3, 50, 1000, 10_000, 1 << 40] {
                for a in [1usize, 2, 7, 256, 100_000] {
                    for r in [0u64, 1, 64, 256] {
                        let w = wanted(g, a, r);
                        let Ok(b) = fit(limit, w) else {
                            assert!(limit < r + 3, "{limit} {w:?} should fit");
                            continue;
                        };
                        assert!(
                            b.gateway_connections >= 1 && b.gateway_connections <= g,
                            "{limit} {w:?} {b:?}"
                        );
                        assert!(b.api_connections >= 1 && b.api_connections <= a, "{limit} {w:?} {b:?}");
                        let used = 2 * b.gateway_connections as u64 + b.api_connections as u64 + r;
                        assert!(used <= limit, "{limit} {w:?} {b:?} uses {used}");
                        assert_eq!(b.reduced, w.needed() > limit);
                    }
                }
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn prepare_reads_the_process_limit() {
        let b = prepare(wanted(1, 1, 16)).unwrap();
        assert!(b.limit >= 18);
        assert!(!b.reduced);
    }
}
