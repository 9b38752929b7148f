//! CPU placement when the threads outnumber the cores: replaying a file,
//! the capture thread (reading and decoding) is the one serial stage, so
//! the workers and the output thread keep off one core and leave it to it.

/// The CPUs this process may run on.
pub(super) fn allowed_cpus() -> Vec<usize> {
    use nix::sched::{sched_getaffinity, CpuSet};
    let Ok(set) = sched_getaffinity(nix::unistd::Pid::from_raw(0)) else {
        return Vec::new();
    };
    (0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect()
}

/// The CPUs for the workers and the output thread when the capture thread
/// would otherwise share its core with them: every allowed CPU but the
/// last (the first usually takes more interrupts). `None`: no restriction
/// (a core each, or a single CPU).
pub(super) fn cpus_for_others(workers: usize) -> Option<Vec<usize>> {
    leave_one_to_capture(allowed_cpus(), workers)
}

fn leave_one_to_capture(mut cpus: Vec<usize>, workers: usize) -> Option<Vec<usize>> {
    (cpus.len() >= 2 && workers + 1 > cpus.len()).then(|| {
        cpus.pop();
        cpus
    })
}

/// Restricts the calling thread to `cpus`; a failure leaves it as it was.
pub(super) fn restrict_to(cpus: Option<&[usize]>) {
    use nix::sched::{sched_setaffinity, CpuSet};
    let Some(cpus) = cpus else { return };
    let mut set = CpuSet::new();
    for &c in cpus {
        if set.set(c).is_err() {
            return;
        }
    }
    let _ = sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_leave_a_core_to_the_capture_thread_only_when_oversubscribed() {
        // 2 cores: one worker has its own core, two leave the last to capture.
        assert_eq!(leave_one_to_capture(vec![0, 1], 1), None);
        assert_eq!(leave_one_to_capture(vec![0, 1], 2), Some(vec![0]));
        assert_eq!(leave_one_to_capture(vec![0, 1], 5), Some(vec![0]));
        // 16 cores, 15 workers: enough for all.
        assert_eq!(leave_one_to_capture((0..16).collect(), 15), None);
        // A restricted set (taskset 2,5,7) is respected.
        assert_eq!(leave_one_to_capture(vec![2, 5, 7], 3), Some(vec![2, 5]));
        // One CPU: nothing to leave.
        assert_eq!(leave_one_to_capture(vec![3], 4), None);
        assert!(!allowed_cpus().is_empty());
    }
}
