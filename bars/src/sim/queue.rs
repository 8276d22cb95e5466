//! Which actor wakes next: a tournament tree over the actors' wake times.
//!
//! Every actor has at most one pending wake-up, so the queue is one slot per
//! actor; a reschedule is a leaf update and a walk of log2(actors) parents,
//! with no stale entries to skip and nothing allocated per event.

use super::waveform::{Time, NEVER};

pub struct WakeQueue {
    leaves: usize,
    /// Node i holds the earliest (time, actor) below it; leaves at `leaves..`.
    /// Ties go to the lower index, so runs are deterministic.
    node: Vec<(Time, u32)>,
}

impl WakeQueue {
    pub fn new(actors: usize) -> WakeQueue {
        let leaves = actors.next_power_of_two().max(2);
        let mut node = vec![(NEVER, 0u32); 2 * leaves];
        for (i, n) in node.iter_mut().enumerate().skip(leaves) {
            *n = (NEVER, (i - leaves) as u32);
        }
        for i in (1..leaves).rev() {
            node[i] = node[2 * i].min(node[2 * i + 1]);
        }
        WakeQueue { leaves, node }
    }

    pub fn set(&mut self, actor: usize, t: Time) {
        let mut i = self.leaves + actor;
        self.node[i] = (t, actor as u32);
        while i > 1 {
            let sibling = self.node[i ^ 1];
            let mine = self.node[i];
            i /= 2;
            let best = if sibling < mine { sibling } else { mine };
            if self.node[i] == best {
                break;
            }
            self.node[i] = best;
        }
    }

    /// The earliest (time, actor), if any actor has a wake-up.
    pub fn peek(&self) -> Option<(Time, usize)> {
        let (t, a) = self.node[1];
        (t != NEVER).then_some((t, a as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_wins_ties_go_to_the_lower_index() {
        let mut q = WakeQueue::new(5);
        assert_eq!(q.peek(), None);
        q.set(3, 10);
        q.set(1, 20);
        assert_eq!(q.peek(), Some((10, 3)));
        q.set(4, 10);
        assert_eq!(q.peek(), Some((10, 3)));
        q.set(3, NEVER);
        assert_eq!(q.peek(), Some((10, 4)));
        q.set(4, 30);
        assert_eq!(q.peek(), Some((20, 1)));
    }
}
