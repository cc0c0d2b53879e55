//! A hashed hierarchical timing wheel (Varghese & Lauck, 1987) for the timers of every
//! connection and TIME_WAIT record of a stack, in virtual time.
//!
//! # Why a wheel
//!
//! A stack with 100k to millions of connections re-arms a timer on almost every segment
//! (the retransmission timer restarts on each ACK, the delayed-ACK timer on each data
//! segment) and cancels most timers before they fire. A binary heap costs O(log n) per
//! arm and cannot remove an entry from its middle, so it either pays O(log n) again per
//! cancellation (with an index kept per entry) or fills with stale entries that are
//! skipped when they surface. A timing wheel arms and cancels in O(1) and a
//! cancellation really removes the entry. Linux (`kernel/time/timer.c`) and tokio
//! (`runtime/time/wheel`) keep their timers in hierarchical wheels for the same reason.
//!
//! # Structure
//!
//! Time is cut into ticks of `granularity` microseconds (tick = deadline /
//! granularity). The wheel has [`LEVELS`] = 11 levels of [`SLOTS`] = 64 slots; a slot
//! of level `L` covers `64^L` ticks, so level `L` spans `64^(L+1)` ticks. Eleven levels
//! of six bits cover all 64 bits of a tick, so every [`Instant`] up to `u64::MAX`
//! microseconds has a slot and no overflow list is needed. A granularity that is a
//! power of two makes a tick a shift rather than a division (the stack's wheel uses
//! 1,024 us). With 1 ms ticks:
//!
//! | level | slot width | level span | typically holds |
//! |---|---|---|---|
//! | 0 | 1 ms | 64 ms | delayed ACK (40 ms) |
//! | 1 | 64 ms | 4.1 s | RTO (200 ms to a few s) |
//! | 2 | 4.1 s | 4.4 min | TIME_WAIT (60 s), RTO cap (120 s) |
//! | 3 | 4.4 min | 4.7 h | keepalive (2 h) |
//! | 4..10 | 4.7 h and up | up to 2^64 ticks | anything later |
//!
//! (A timer lands one level higher than its distance suggests when its tick and the
//! current tick straddle a boundary of the level above.)
//!
//! An entry with tick `t` is placed at the level of the highest six-bit digit in which
//! `t` differs from the current tick `cur`, in the slot given by `t`'s digit at that
//! level (tokio's placement). Hence, within a level, every occupied slot lies ahead of
//! the current position, and every entry of level `L` is due before every entry of level
//! `L + 1`; the earliest occupied slot is the lowest set bit of the lowest non-empty
//! level's 64-bit occupancy word, found in O(1) with `trailing_zeros` (an 11-bit mask
//! says which levels are non-empty).
//!
//! **Cascading.** When the current tick reaches the first tick of an occupied slot of
//! level `L > 0`, the slot is emptied: entries due at that tick move to the current-tick
//! heap (below), the others are placed again, relative to the new current tick, at a
//! lower level. An entry only ever moves down, so it is touched at most once per level
//! between arming and firing (a 2-hour keepalive at 1 ms ticks: at most 3 moves), and
//! an entry cancelled before its slot is reached (the usual fate of an RTO) is never
//! moved at all. Unlike Linux, which stopped cascading in 4.8 and lets timers of the
//! upper levels fire up to 12.5% late, this wheel cascades, so nothing fires late.
//!
//! **The current tick and the past.** Entries whose tick has been reached (deadline in
//! the current tick or in the past) sit in a small binary heap ordered by deadline.
//! [`TimerWheel::expire`] is therefore exact to the microsecond: it returns every entry
//! with deadline `<= now` and no other (zero lateness, never early), in deadline order.
//! The granularity only sets how finely entries are bucketed: coarser ticks mean fewer
//! cascades and slots to visit, finer ticks fewer entries sharing one tick (which are
//! ordered in O(log m) for the m entries of that tick).
//!
//! **Skipping time.** `expire` jumps from one occupied slot to the next; empty ticks cost
//! nothing, so a virtual-time driver jumping hours ahead pays per occupied slot, not per
//! tick.
//!
//! # Complexity
//!
//! | operation | cost |
//! |---|---|
//! | [`insert`](TimerWheel::insert), [`cancel`](TimerWheel::cancel), [`reschedule`](TimerWheel::reschedule) | O(1); O(log h) if the deadline is in the current tick or the past (h: entries there, normally a handful) |
//! | [`next_deadline`](TimerWheel::next_deadline) | O(1) |
//! | [`expire`](TimerWheel::expire) | O(1) per expired entry plus the per-tick ordering (O(log m)), O(1) per occupied slot visited, and at most one move per level per entry (amortised over its lifetime) |
//!
//! # Memory
//!
//! Entries live in one slab (`Vec`) threaded with a free list and with intrusive doubly
//! linked lists per slot, linked by `u32` index: no allocation per insert once the slab
//! has grown to the peak population (see [`TimerWheel::reserve`]). An entry is the
//! deadline (8 bytes), the key, two links, a generation and its location (4 bytes each):
//! **32 bytes for `K = u64` or a `u32` index** (see [`TimerWheel::entry_size`]). An
//! entry in the current-tick heap also has a 16-byte heap item. The wheel itself has a
//! fixed 704 slot heads (4 bytes) and 704 slot minima (8 bytes), about 8.5 KB. The slab
//! does not shrink. At most `u32::MAX` entries can be live at once; past that,
//! [`TimerWheel::insert`] returns [`TimerHandle::DANGLING`] and stores nothing.
//!
//! The wheel is sans-IO like the rest of the core: it never reads a clock; time comes in
//! as the `now` of [`TimerWheel::new`] and [`TimerWheel::expire`]. Nothing in it panics
//! on any input: times and durations saturate.

use crate::time::{Duration, Instant};
use core::cmp::Reverse;
use core::fmt;
use std::collections::BinaryHeap;

/// Bits of the tick consumed by one level.
const LEVEL_BITS: u32 = 6;
/// Slots per level.
pub const SLOTS: usize = 1 << LEVEL_BITS;
/// Levels: eleven levels of six bits cover every `u64` tick.
pub const LEVELS: usize = 64_usize.div_ceil(LEVEL_BITS as usize);
/// End of a list / no entry.
const NIL: u32 = u32::MAX;
/// [`TimerWheel::shift`] for a granularity that is not a power of two.
const NO_SHIFT: u32 = u32::MAX;
/// `Entry::loc` of a free slab slot.
const LOC_FREE: u32 = u32::MAX;
/// `Entry::loc` of an entry in the current-tick heap.
const LOC_NEAR: u32 = u32::MAX - 1;
/// Most slab slots: indices run from 0 to `u32::MAX - 1`, `u32::MAX` being `NIL`.
const MAX_ENTRIES: usize = u32::MAX as usize;
/// Stale current-tick heap items tolerated beyond twice the live ones before the heap
/// is compacted.
const NEAR_SLACK: usize = 64;

/// A handle to an armed timer: its slab index and generation. Handles of timers that
/// have fired, been cancelled or been rescheduled are stale: they are detected by the
/// generation and never touch the entry that reuses the slot.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct TimerHandle {
    index: u32,
    generation: u32,
}

impl TimerHandle {
    /// A handle that never names an entry (to mark "no timer armed").
    pub const DANGLING: TimerHandle = TimerHandle {
        index: NIL,
        generation: 0,
    };
}

/// One timer in the slab. 32 bytes for an 8-byte key.
#[derive(Copy, Clone)]
struct Entry<K> {
    /// Deadline, microseconds.
    deadline: u64,
    /// The caller's key (left in place when the slot is freed: `K: Copy`).
    key: K,
    /// Next entry of the slot's list, or of the free list.
    next: u32,
    /// Previous entry of the slot's list.
    prev: u32,
    /// Bumped whenever the entry is freed or rescheduled.
    generation: u32,
    /// `LOC_FREE`, `LOC_NEAR` or the wheel slot `level * SLOTS + slot`.
    loc: u32,
}

/// A hierarchical timing wheel of timers keyed by `K` (a connection handle, a TIME_WAIT
/// record index, ...). See the [module documentation](self) for the structure.
#[derive(Clone)]
pub struct TimerWheel<K: Copy + Eq> {
    entries: Vec<Entry<K>>,
    /// Head of the free list of slab slots.
    free: u32,
    /// Live entries.
    len: usize,
    /// Microseconds per tick, at least 1.
    granularity: u64,
    /// `log2(granularity)` when it is a power of two (then a tick is a shift, not a
    /// division: every arm computes one), else `NO_SHIFT`.
    shift: u32,
    /// The latest time seen, microseconds.
    now: u64,
    /// The current tick: `now / granularity`.
    cur: u64,
    /// Head of each slot's list, `LEVELS * SLOTS`.
    heads: Box<[u32]>,
    /// Per slot, the earliest deadline linked into it since it was last empty (a lower
    /// bound of its entries' deadlines; exact unless one of them was removed).
    mins: Box<[u64]>,
    /// Per level, bit `s` set iff slot `s` is non-empty.
    occupied: [u64; LEVELS],
    /// Bit `l` set iff `occupied[l] != 0`.
    levels: u16,
    /// Entries whose tick has been reached: `(deadline, index, generation)`, earliest
    /// first. Cancelled items stay until they surface or the heap is compacted; the top
    /// is always live.
    near: BinaryHeap<Reverse<(u64, u32, u32)>>,
    /// Live entries in `near`.
    near_live: usize,
}

impl<K: Copy + Eq> fmt::Debug for TimerWheel<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerWheel")
            .field("len", &self.len)
            .field("now", &Instant::from_micros(self.now))
            .field("granularity_us", &self.granularity)
            .field("next_deadline", &self.next_deadline())
            .finish_non_exhaustive()
    }
}

/// The level of tick `t` relative to the current tick `cur` (`t > cur`): that of the
/// highest six-bit digit in which they differ.
fn level_of(cur: u64, t: u64) -> usize {
    let high_bit = 63u32.saturating_sub((t ^ cur).leading_zeros());
    (high_bit / LEVEL_BITS) as usize
}

/// The first tick of slot `slot` of level `level`, given the current tick `cur` (the
/// digits above `level` are `cur`'s).
fn slot_start(cur: u64, level: usize, slot: usize) -> u64 {
    let shift = LEVEL_BITS * level as u32;
    let upper = shift + LEVEL_BITS;
    let base = if upper >= 64 {
        0
    } else {
        (cur >> upper) << upper
    };
    base | ((slot as u64) << shift)
}

impl<K: Copy + Eq> TimerWheel<K> {
    /// An empty wheel at time `now` with ticks of `granularity` (e.g. 1 ms). A
    /// granularity under 1 µs counts as 1 µs.
    pub fn new(now: Instant, granularity: Duration) -> Self {
        let g = u64::try_from(granularity.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let now_us = now.total_micros();
        TimerWheel {
            entries: Vec::new(),
            free: NIL,
            len: 0,
            granularity: g,
            shift: if g.is_power_of_two() {
                g.trailing_zeros()
            } else {
                NO_SHIFT
            },
            now: now_us,
            cur: now_us / g,
            heads: vec![NIL; LEVELS * SLOTS].into_boxed_slice(),
            mins: vec![u64::MAX; LEVELS * SLOTS].into_boxed_slice(),
            occupied: [0; LEVELS],
            levels: 0,
            near: BinaryHeap::new(),
            near_live: 0,
        }
    }

    /// Bytes of one slab entry for this key type (32 for `K = u64`).
    pub const fn entry_size() -> usize {
        core::mem::size_of::<Entry<K>>()
    }

    /// Grows the slab so that `additional` more entries than are live now can be armed
    /// without allocating.
    pub fn reserve(&mut self, additional: usize) {
        let free_slots = self.entries.len().saturating_sub(self.len);
        let want = additional.saturating_sub(free_slots);
        let room = MAX_ENTRIES.saturating_sub(self.entries.len());
        self.entries.reserve(want.min(room));
    }

    /// The tick of `us`: `us / granularity`.
    #[inline(always)]
    fn tick_of(&self, us: u64) -> u64 {
        if self.shift != NO_SHIFT {
            us >> self.shift
        } else {
            us / self.granularity
        }
    }

    /// The tick length.
    pub fn granularity(&self) -> Duration {
        Duration::from_micros(self.granularity)
    }

    /// The latest time passed to [`new`](Self::new) or [`expire`](Self::expire).
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.now)
    }

    /// Number of armed timers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Arms a timer for `key` at `at`, in O(1) (O(log h) if `at` falls in the current
    /// tick or the past, h being the number of such entries). A deadline in the past
    /// fires at the next [`expire`](Self::expire). Returns
    /// [`TimerHandle::DANGLING`] (storing nothing) only if `u32::MAX` timers are live.
    pub fn insert(&mut self, at: Instant, key: K) -> TimerHandle {
        let deadline = at.total_micros();
        let index = if self.free != NIL {
            let i = self.free;
            let e = &mut self.entries[i as usize];
            self.free = e.next;
            e.deadline = deadline;
            e.key = key;
            i
        } else if self.entries.len() < MAX_ENTRIES {
            self.entries.push(Entry {
                deadline,
                key,
                next: NIL,
                prev: NIL,
                generation: 0,
                loc: LOC_FREE,
            });
            (self.entries.len() - 1) as u32
        } else {
            return TimerHandle::DANGLING;
        };
        self.len += 1;
        self.place(index);
        TimerHandle {
            index,
            generation: self.entries[index as usize].generation,
        }
    }

    /// Disarms a timer and returns its key, in O(1); `None` if the handle is stale (the
    /// timer fired, was cancelled or rescheduled) or dangling.
    pub fn cancel(&mut self, h: TimerHandle) -> Option<K> {
        let i = self.live(h)?;
        let key = self.entries[i as usize].key;
        self.detach(i);
        self.release(i);
        self.clean_near();
        Some(key)
    }

    /// Moves a timer to `at`, keeping its key, in O(1) (as [`insert`](Self::insert)).
    /// Returns the timer's new handle; `h` becomes stale. If `h` is already stale,
    /// nothing is armed and [`TimerHandle::DANGLING`] is returned.
    pub fn reschedule(&mut self, h: TimerHandle, at: Instant) -> TimerHandle {
        let Some(i) = self.live(h) else {
            return TimerHandle::DANGLING;
        };
        self.detach(i);
        let e = &mut self.entries[i as usize];
        e.generation = e.generation.wrapping_add(1);
        e.deadline = at.total_micros();
        let generation = e.generation;
        self.place(i);
        self.clean_near();
        TimerHandle {
            index: i,
            generation,
        }
    }

    /// The deadline and key of an armed timer; `None` if the handle is stale.
    pub fn get(&self, h: TimerHandle) -> Option<(Instant, K)> {
        let e = &self.entries[self.live(h)? as usize];
        Some((Instant::from_micros(e.deadline), e.key))
    }

    /// When [`expire`](Self::expire) should next be called, in O(1); `None` if no
    /// timer is armed.
    ///
    /// Never later than the earliest deadline. It is exact when the earliest timer is
    /// due in the current tick or the past, and otherwise exact unless a timer was
    /// cancelled or rescheduled out of the wheel slot holding the earliest timer since
    /// that slot was last filled; then it is a lower bound (the earliest deadline that
    /// slot has held, never before the slot's first tick), and an `expire` at that time
    /// returns nothing but makes the next answer exact. After `expire(now)` (with `now`
    /// no earlier than any previous `now`) it is `None` or later than `now`, so a driver
    /// sleeping until it never spins.
    pub fn next_deadline(&self) -> Option<Instant> {
        if let Some(&Reverse((deadline, _, _))) = self.near.peek() {
            return Some(Instant::from_micros(deadline));
        }
        let (pos, start) = self.next_slot()?;
        let first_us = start.saturating_mul(self.granularity);
        Some(Instant::from_micros(self.mins[pos].max(first_us)))
    }

    /// Removes every timer with deadline `<= now` and appends it to `out` as
    /// `(deadline, key)`, in deadline order (ties in an unspecified but deterministic
    /// order). Exact: nothing is returned early and nothing due is held back. Cost: O(1)
    /// per expired timer plus the ordering of timers sharing a tick, O(1) per occupied
    /// slot reached, and the cascading of timers to lower levels (at most once per level
    /// per timer). A `now` earlier than a previous one only fires what is due by it.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<(Instant, K)>) {
        let now_us = now.total_micros();
        let target = self.tick_of(now_us);
        self.now = self.now.max(now_us);
        loop {
            self.fire_near(now_us, out);
            let Some((pos, start)) = self.next_slot() else {
                break;
            };
            if start > target {
                break;
            }
            // Every current-tick entry has a tick <= cur < start <= target, so all of
            // them were due and fired just above: moving `cur` keeps the heap's
            // meaning, and the placement of the other slots holds for the new `cur`.
            self.cur = start;
            let mut i = self.take_slot(pos);
            // Before the target tick everything due at `start` fires now; at the target
            // tick, only what is due by `now` (the heap sorts it out).
            let direct = start < target;
            let batch = out.len();
            while i != NIL {
                let e = self.entries[i as usize];
                let next = e.next;
                let t = self.tick_of(e.deadline);
                if t > start {
                    self.link(i, level_of(start, t), t);
                } else if direct {
                    out.push((Instant::from_micros(e.deadline), e.key));
                    self.release(i);
                } else {
                    self.push_near(i);
                }
                i = next;
            }
            if let Some(fired) = out.get_mut(batch..) {
                fired.sort_unstable_by_key(|&(at, _)| at);
            }
        }
        // Nothing in the wheel is due by `target`: its placement holds for the new
        // current tick.
        self.cur = self.cur.max(target);
    }

    // ----- internals ----------------------------------------------------------------

    /// The slab index of a live handle.
    fn live(&self, h: TimerHandle) -> Option<u32> {
        let e = self.entries.get(h.index as usize)?;
        (e.generation == h.generation && e.loc != LOC_FREE).then_some(h.index)
    }

    /// Puts entry `i` (not linked anywhere) where its deadline says.
    fn place(&mut self, i: u32) {
        let t = self.tick_of(self.entries[i as usize].deadline);
        if t <= self.cur {
            self.push_near(i);
        } else {
            self.link(i, level_of(self.cur, t), t);
        }
    }

    /// Pushes entry `i` onto the current-tick heap.
    fn push_near(&mut self, i: u32) {
        let e = &mut self.entries[i as usize];
        e.loc = LOC_NEAR;
        e.next = NIL;
        e.prev = NIL;
        self.near.push(Reverse((e.deadline, i, e.generation)));
        self.near_live += 1;
    }

    /// Whether a heap item names a live current-tick entry.
    fn near_item_live(&self, deadline: u64, i: u32, generation: u32) -> bool {
        self.entries.get(i as usize).is_some_and(|e| {
            e.loc == LOC_NEAR && e.generation == generation && e.deadline == deadline
        })
    }

    /// Fires the current-tick entries due by `now_us`, dropping stale items on the way;
    /// leaves a live item (or nothing) on top.
    fn fire_near(&mut self, now_us: u64, out: &mut Vec<(Instant, K)>) {
        while let Some(&Reverse((deadline, i, generation))) = self.near.peek() {
            if !self.near_item_live(deadline, i, generation) {
                self.near.pop();
                continue;
            }
            if deadline > now_us {
                break;
            }
            self.near.pop();
            self.near_live = self.near_live.saturating_sub(1);
            out.push((Instant::from_micros(deadline), self.entries[i as usize].key));
            self.release(i);
        }
    }

    /// Restores "the heap's top is live" after a removal, and compacts the heap once
    /// stale items outnumber live ones (amortised O(1) per removal).
    fn clean_near(&mut self) {
        while let Some(&Reverse((deadline, i, generation))) = self.near.peek() {
            if self.near_item_live(deadline, i, generation) {
                break;
            }
            self.near.pop();
        }
        if self.near.len() > 2 * self.near_live + NEAR_SLACK {
            let entries = &self.entries;
            self.near.retain(|&Reverse((deadline, i, generation))| {
                entries.get(i as usize).is_some_and(|e| {
                    e.loc == LOC_NEAR && e.generation == generation && e.deadline == deadline
                })
            });
        }
    }

    /// Links entry `i` (tick `t`) at the head of its slot of level `level`.
    fn link(&mut self, i: u32, level: usize, t: u64) {
        let slot = ((t >> (LEVEL_BITS * level as u32)) as usize) & (SLOTS - 1);
        let pos = level * SLOTS + slot;
        let head = self.heads[pos];
        let e = &mut self.entries[i as usize];
        e.prev = NIL;
        e.next = head;
        e.loc = pos as u32;
        let deadline = e.deadline;
        if head != NIL {
            self.entries[head as usize].prev = i;
        }
        self.heads[pos] = i;
        self.mins[pos] = self.mins[pos].min(deadline);
        self.occupied[level] |= 1 << slot;
        self.levels |= 1 << level;
    }

    /// Takes a slot from wheel or heap bookkeeping (the slab slot stays allocated).
    fn detach(&mut self, i: u32) {
        let e = self.entries[i as usize];
        if e.loc == LOC_NEAR {
            self.near_live = self.near_live.saturating_sub(1);
            return;
        }
        let pos = e.loc as usize;
        if pos >= LEVELS * SLOTS {
            return;
        }
        if e.prev != NIL {
            self.entries[e.prev as usize].next = e.next;
        } else {
            self.heads[pos] = e.next;
        }
        if e.next != NIL {
            self.entries[e.next as usize].prev = e.prev;
        }
        if self.heads[pos] == NIL {
            self.clear_slot(pos);
        }
    }

    /// Empties the list of wheel slot `pos` and returns its former head.
    fn take_slot(&mut self, pos: usize) -> u32 {
        let head = self.heads[pos];
        self.heads[pos] = NIL;
        self.clear_slot(pos);
        head
    }

    /// Bookkeeping of a slot that has become empty.
    fn clear_slot(&mut self, pos: usize) {
        let (level, slot) = (pos / SLOTS, pos % SLOTS);
        self.mins[pos] = u64::MAX;
        self.occupied[level] &= !(1 << slot);
        if self.occupied[level] == 0 {
            self.levels &= !(1 << level);
        }
    }

    /// Returns entry `i` (detached) to the free list; its handles become stale.
    fn release(&mut self, i: u32) {
        let e = &mut self.entries[i as usize];
        e.generation = e.generation.wrapping_add(1);
        e.loc = LOC_FREE;
        e.prev = NIL;
        e.next = self.free;
        self.free = i;
        self.len = self.len.saturating_sub(1);
    }

    /// The earliest occupied wheel slot and its first tick.
    fn next_slot(&self) -> Option<(usize, u64)> {
        if self.levels == 0 {
            return None;
        }
        let level = self.levels.trailing_zeros() as usize;
        let slot = self.occupied[level].trailing_zeros() as usize;
        Some((level * SLOTS + slot, slot_start(self.cur, level, slot)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const MS: Duration = Duration::from_millis(1);

    fn us(x: u64) -> Instant {
        Instant::from_micros(x)
    }

    fn expire<K: Copy + Eq>(w: &mut TimerWheel<K>, now: u64) -> Vec<(u64, K)> {
        let mut out = Vec::new();
        w.expire(us(now), &mut out);
        out.into_iter()
            .map(|(at, k)| (at.total_micros(), k))
            .collect()
    }

    /// Checks the structural invariants: lists well formed, placement consistent
    /// with `cur`, counts right, heap top live.
    fn check_invariants<K: Copy + Eq>(w: &TimerWheel<K>) {
        let mut seen = 0;
        for pos in 0..LEVELS * SLOTS {
            let (level, slot) = (pos / SLOTS, pos % SLOTS);
            let occupied = w.occupied[level] & (1 << slot) != 0;
            assert_eq!(occupied, w.heads[pos] != NIL, "occupancy of {pos}");
            let mut prev = NIL;
            let mut i = w.heads[pos];
            while i != NIL {
                let e = &w.entries[i as usize];
                assert_eq!(e.loc as usize, pos);
                assert_eq!(e.prev, prev);
                let t = e.deadline / w.granularity;
                assert!(
                    t > w.cur,
                    "entry in the wheel at or before the current tick"
                );
                assert_eq!(level_of(w.cur, t), level);
                assert!(e.deadline >= w.mins[pos]);
                seen += 1;
                prev = i;
                i = e.next;
            }
        }
        for level in 0..LEVELS {
            assert_eq!(w.levels & (1 << level) != 0, w.occupied[level] != 0);
        }
        for e in w.entries.iter().filter(|e| e.loc == LOC_NEAR) {
            assert!(
                e.deadline / w.granularity <= w.cur,
                "heap entry after the current tick"
            );
        }
        let near = w.entries.iter().filter(|e| e.loc == LOC_NEAR).count();
        assert_eq!(near, w.near_live);
        assert_eq!(seen + near, w.len);
        if let Some(&Reverse((d, i, g))) = w.near.peek() {
            assert!(w.near_item_live(d, i, g), "heap top is stale");
        }
    }

    #[test]
    fn entry_is_32_bytes() {
        assert_eq!(TimerWheel::<u64>::entry_size(), 32);
        assert!(TimerWheel::<u32>::entry_size() <= 32);
        assert_eq!(core::mem::size_of::<TimerHandle>(), 8);
    }

    #[test]
    fn empty_wheel() {
        let mut w = TimerWheel::<u64>::new(Instant::ZERO, MS);
        assert!(w.is_empty());
        assert_eq!(w.len(), 0);
        assert_eq!(w.next_deadline(), None);
        assert!(expire(&mut w, 10_000_000).is_empty());
        assert_eq!(w.now(), us(10_000_000));
        assert_eq!(w.granularity(), MS);
    }

    #[test]
    fn insert_fires_exactly_at_deadline() {
        let mut w = TimerWheel::new(Instant::ZERO, MS);
        let h = w.insert(us(5_300), 7u64);
        assert_eq!(w.len(), 1);
        assert_eq!(w.get(h), Some((us(5_300), 7)));
        assert_eq!(w.next_deadline(), Some(us(5_300)));
        assert!(expire(&mut w, 5_000).is_empty());
        assert!(expire(&mut w, 5_299).is_empty());
        assert_eq!(w.next_deadline(), Some(us(5_300)));
        assert_eq!(expire(&mut w, 5_300), vec![(5_300, 7)]);
        assert!(w.is_empty());
        assert_eq!(w.next_deadline(), None);
        check_invariants(&w);
    }

    #[test]
    fn insert_at_now_and_in_the_past_fire_at_next_expire() {
        let mut w = TimerWheel::new(Instant::from_secs(10), MS);
        w.insert(Instant::from_secs(10), 1u64);
        w.insert(Instant::from_secs(3), 2);
        w.insert(Instant::ZERO, 3);
        assert_eq!(w.next_deadline(), Some(Instant::ZERO));
        check_invariants(&w);
        let out = expire(&mut w, 10_000_000);
        assert_eq!(out, vec![(0, 3), (3_000_000, 2), (10_000_000, 1)]);
        assert!(w.is_empty());
    }

    #[test]
    fn within_the_current_tick_only_what_is_due_fires() {
        let mut w = TimerWheel::new(us(1_000), MS);
        w.insert(us(1_900), 1u64);
        w.insert(us(1_100), 2);
        w.insert(us(1_500), 3);
        assert_eq!(expire(&mut w, 1_499), vec![(1_100, 2)]);
        assert_eq!(w.next_deadline(), Some(us(1_500)));
        assert_eq!(expire(&mut w, 1_500), vec![(1_500, 3)]);
        assert_eq!(expire(&mut w, 2_000), vec![(1_900, 1)]);
        check_invariants(&w);
    }

    #[test]
    fn many_in_one_tick_come_out_in_deadline_order() {
        let mut w = TimerWheel::new(Instant::ZERO, MS);
        let mut x = 12345u64;
        for k in 0..500u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            w.insert(us(7_000 + (x >> 33) % 1000), k);
        }
        let out = expire(&mut w, 7_999);
        assert_eq!(out.len(), 500);
        assert!(out.windows(2).all(|p| p[0].0 <= p[1].0));
        // Same through the heap path (the target tick itself).
        for k in 0..300u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            w.insert(us(20_000 + (x >> 33) % 1000), k);
        }
        let out = expire(&mut w, 20_600);
        assert!(out.windows(2).all(|p| p[0].0 <= p[1].0));
        assert!(out.iter().all(|&(d, _)| d <= 20_600));
        let rest = expire(&mut w, 21_000);
        assert_eq!(out.len() + rest.len(), 300);
        assert!(rest.iter().all(|&(d, _)| d > 20_600));
    }

    #[test]
    fn level_boundaries() {
        // Deadlines on each side of every level boundary up to level 4, with ticks of
        // 1 us, 1 ms and 1,024 us (a power of two: ticks by shift), each fired exactly
        // at its deadline and not 1 us before.
        for g in [1u64, 1000, 1024] {
            let start = 12_345 * g + 17;
            let mut w = TimerWheel::new(us(start), Duration::from_micros(g));
            let mut want = Vec::new();
            let mut key = 0u64;
            for level in 0..5u32 {
                let span = 64u64.pow(level) * g;
                // Boundaries relative to the origin and relative to now.
                for base in [(start / span + 1) * span, start + span] {
                    for d in [base.saturating_sub(1), base, base + 1] {
                        if d > start {
                            w.insert(us(d), key);
                            want.push((d, key));
                            key += 1;
                        }
                    }
                }
            }
            check_invariants(&w);
            want.sort();
            let mut got = Vec::new();
            for &(d, _) in &want {
                assert!(
                    expire(&mut w, d - 1).iter().all(|&(at, _)| at < d),
                    "fired early"
                );
                let out = expire(&mut w, d);
                assert!(out.iter().all(|&(at, _)| at == d));
                got.extend(out);
                check_invariants(&w);
            }
            got.sort();
            assert_eq!(got, want);
            assert!(w.is_empty());
        }
    }

    #[test]
    fn cascades_from_high_levels_to_exact_firing() {
        // Keepalive (2 h), RTO cap (120 s), TIME_WAIT (60 s), plus one a year out, driven
        // only by next_deadline: every timer fires at exactly its deadline, with only a
        // few wake-ups for cascading.
        let start = Instant::from_millis(123_456) + Duration::from_micros(789);
        let mut w = TimerWheel::new(start, MS);
        let timers = [
            (start + Duration::from_secs(7200), 1u64),
            (start + Duration::from_secs(120), 2),
            (start + Duration::from_secs(60), 3),
            (start + Duration::from_secs(365 * 86_400), 4),
            (start + Duration::from_micros(40_001), 5),
        ];
        for &(at, k) in &timers {
            w.insert(at, k);
        }
        check_invariants(&w);
        let mut fired = Vec::new();
        let mut wakeups = 0;
        while let Some(t) = w.next_deadline() {
            wakeups += 1;
            assert!(wakeups < 100, "no progress");
            let mut out = Vec::new();
            w.expire(t, &mut out);
            for &(at, k) in &out {
                assert_eq!(at, t, "fired late or early");
                fired.push((at, k));
            }
            check_invariants(&w);
        }
        let mut want = timers.to_vec();
        want.sort();
        assert_eq!(fired, want);
        // Exact slot minima mean no spurious wake-ups at all.
        assert_eq!(wakeups, timers.len());
    }

    #[test]
    fn one_big_jump_fires_everything_in_order() {
        let mut w = TimerWheel::new(Instant::ZERO, MS);
        let ds = [
            3_600_000_000u64,
            1,
            64_000,
            64_001,
            4_096_000,
            999,
            262_144_000,
            7_200_000_000,
        ];
        for (k, &d) in ds.iter().enumerate() {
            w.insert(us(d), k);
        }
        let out = expire(&mut w, 10_000_000_000);
        let mut want: Vec<_> = ds.iter().enumerate().map(|(k, &d)| (d, k)).collect();
        want.sort();
        assert_eq!(out, want);
    }

    #[test]
    fn cancel() {
        let mut w = TimerWheel::new(Instant::ZERO, MS);
        let a = w.insert(Instant::from_secs(60), 1u64);
        let b = w.insert(Instant::from_millis(3), 2);
        let c = w.insert(Instant::ZERO, 3);
        assert_eq!(w.cancel(a), Some(1));
        assert_eq!(w.cancel(a), None);
        assert_eq!(w.cancel(c), Some(3));
        assert_eq!(w.len(), 1);
        check_invariants(&w);
        assert_eq!(expire(&mut w, 100_000_000), vec![(3_000, 2)]);
        // Cancel after fire.
        assert_eq!(w.cancel(b), None);
        assert_eq!(w.get(b), None);
        assert_eq!(w.cancel(TimerHandle::DANGLING), None);
        assert!(w.is_empty());
    }

    #[test]
    fn stale_handles_never_touch_a_reused_slot() {
        let mut w = TimerWheel::new(Instant::ZERO, MS);
        let old = w.insert(Instant::from_millis(5), 1u64);
        assert_eq!(w.cancel(old), Some(1));
        let new = w.insert(Instant::from_millis(9), 2);
        assert_eq!(new.index, old.index, "slot reused");
        assert_eq!(w.cancel(old), None);
        assert_eq!(w.reschedule(old, Instant::ZERO), TimerHandle::DANGLING);
        assert_eq!(w.get(new), Some((Instant::from_millis(9), 2)));
        // Fired handle, then reuse.
        assert_eq!(expire(&mut w, 9_000), vec![(9_000, 2)]);
        let newer = w.insert(Instant::from_millis(20), 3);
        assert_eq!(newer.index, new.index);
        assert_eq!(w.cancel(new), None);
        assert_eq!(w.cancel(newer), Some(3));
    }

    #[test]
    fn reschedule() {
        let mut w = TimerWheel::new(Instant::ZERO, MS);
        let h = w.insert(Instant::from_secs(1), 1u64);
        let other = w.insert(Instant::from_secs(2), 2);
        // Later.
        let h2 = w.reschedule(h, Instant::from_secs(200));
        assert_ne!(h2, h);
        assert_eq!(w.get(h), None);
        assert_eq!(w.cancel(h), None);
        assert_eq!(w.get(h2), Some((Instant::from_secs(200), 1)));
        assert_eq!(w.len(), 2);
        // Earlier than the other one.
        let h3 = w.reschedule(h2, Instant::from_millis(500));
        assert_eq!(w.next_deadline(), Some(Instant::from_millis(500)));
        check_invariants(&w);
        assert!(expire(&mut w, 499_999).is_empty());
        assert_eq!(expire(&mut w, 500_000), vec![(500_000, 1)]);
        assert_eq!(
            w.reschedule(h3, Instant::from_secs(9)),
            TimerHandle::DANGLING
        );
        // Into the current tick, then into the past.
        let o2 = w.reschedule(other, Instant::from_micros(500_700));
        check_invariants(&w);
        let o3 = w.reschedule(o2, Instant::ZERO);
        assert_eq!(w.next_deadline(), Some(Instant::ZERO));
        check_invariants(&w);
        assert_eq!(expire(&mut w, 500_001), vec![(0, 2)]);
        assert_eq!(w.cancel(o3), None);
        assert!(w.is_empty());
    }

    #[test]
    fn next_deadline_is_a_lower_bound_after_cancel_and_never_spins() {
        let mut w = TimerWheel::new(Instant::ZERO, MS);
        let a = w.insert(Instant::from_millis(100), 1u64);
        w.insert(Instant::from_millis(120), 2);
        assert_eq!(w.next_deadline(), Some(Instant::from_millis(100)));
        w.cancel(a);
        let nd = w.next_deadline().unwrap();
        assert!(nd <= Instant::from_millis(120));
        // A wake-up at the bound fires nothing but makes the answer exact.
        assert!(expire(&mut w, nd.total_micros()).is_empty() || nd == us(120_000));
        assert_eq!(w.next_deadline(), Some(Instant::from_millis(120)));
        assert!(w.next_deadline().unwrap() > w.now());
    }

    #[test]
    fn time_going_backwards_fires_nothing_early() {
        let mut w = TimerWheel::new(Instant::from_secs(5), MS);
        w.insert(Instant::from_secs(6), 1u64);
        w.insert(Instant::from_secs(4), 2);
        assert!(expire(&mut w, 1_000_000).is_empty());
        assert_eq!(w.now(), Instant::from_secs(5));
        assert_eq!(expire(&mut w, 4_000_000), vec![(4_000_000, 2)]);
        assert_eq!(expire(&mut w, 6_000_000), vec![(6_000_000, 1)]);
    }

    #[test]
    fn extremes_saturate() {
        for g in [Duration::ZERO, Duration::from_nanos(1), MS, Duration::MAX] {
            let mut w = TimerWheel::new(us(u64::MAX - 5), g);
            assert!(w.granularity() >= Duration::from_micros(1));
            w.insert(us(u64::MAX), 1u64);
            w.insert(us(0), 2);
            w.insert(us(u64::MAX - 1), 3);
            check_invariants(&w);
            assert_eq!(expire(&mut w, u64::MAX - 6), vec![(0, 2)]);
            assert_eq!(expire(&mut w, u64::MAX - 1), vec![(u64::MAX - 1, 3)]);
            assert_eq!(expire(&mut w, u64::MAX), vec![(u64::MAX, 1)]);
            check_invariants(&w);

            let mut w = TimerWheel::new(Instant::ZERO, g);
            w.insert(us(u64::MAX), 1u64);
            w.insert(us(1 << 63), 2);
            check_invariants(&w);
            assert!(w.next_deadline().unwrap() <= us(1 << 63));
            assert_eq!(expire(&mut w, (1 << 63) - 1), vec![]);
            let mut all = expire(&mut w, u64::MAX);
            all.sort();
            assert_eq!(all, vec![(1 << 63, 2), (u64::MAX, 1)]);
        }
    }

    #[test]
    fn cancelled_current_tick_items_do_not_pile_up() {
        let mut w = TimerWheel::new(Instant::from_secs(1), MS);
        let keep = w.insert(Instant::from_secs(2), 0u64);
        for k in 0..100_000u64 {
            let h = w.insert(Instant::ZERO, k);
            let h = w.reschedule(h, Instant::from_micros(k % 1000));
            assert!(w.cancel(h).is_some());
        }
        assert!(
            w.near.len() <= NEAR_SLACK + 2,
            "heap holds {}",
            w.near.len()
        );
        assert!(w.entries.len() <= 2, "slab grew to {}", w.entries.len());
        check_invariants(&w);
        assert_eq!(w.get(keep), Some((Instant::from_secs(2), 0)));
    }

    #[test]
    fn reserve_avoids_growth() {
        let mut w = TimerWheel::new(Instant::ZERO, MS);
        w.reserve(1000);
        let cap = w.entries.capacity();
        assert!(cap >= 1000);
        for k in 0..1000u32 {
            w.insert(Instant::from_millis(u64::from(k)), k);
        }
        assert_eq!(w.entries.capacity(), cap);
    }

    #[test]
    fn debug_format() {
        let mut w = TimerWheel::new(Instant::ZERO, MS);
        w.insert(Instant::from_millis(3), 1u8);
        let s = format!("{w:?}");
        assert!(s.contains("len: 1"), "{s}");
    }

    /// A million timers spread over two hours (1 ms ticks), expired by a driver that
    /// advances in random steps of up to 50 ms: all come out once, in order, none early
    /// and none after the first `expire` that had reached their deadline.
    #[test]
    fn a_million_timers() {
        const N: u64 = 1_000_000;
        let start = 1_000_000u64;
        let mut w = TimerWheel::new(us(start), MS);
        w.reserve(N as usize);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for k in 0..N {
            w.insert(us(start + rnd() % 7_200_000_000), k);
        }
        assert_eq!(w.len(), N as usize);
        let mut now = start;
        let mut prev_now = start;
        let mut out = Vec::new();
        let mut count = 0u64;
        let mut last = 0u64;
        let mut seen = vec![false; N as usize];
        while !w.is_empty() {
            now += rnd() % 50_000;
            out.clear();
            w.expire(us(now), &mut out);
            for &(at, k) in &out {
                let at = at.total_micros();
                assert!(at <= now && at > prev_now, "early or late");
                assert!(at >= last, "out of order");
                last = at;
                assert!(!std::mem::replace(&mut seen[k as usize], true));
                count += 1;
            }
            prev_now = now;
        }
        assert_eq!(count, N);
        assert_eq!(w.next_deadline(), None);
    }

    // ----- against a reference model ------------------------------------------------

    #[derive(Clone, Debug)]
    enum Op {
        Insert(i64),
        Cancel(usize),
        Reschedule(usize, i64),
        Advance(u64),
        AdvanceToNextDeadline,
        AdvanceToModelEarliest,
        /// To a little before the earliest deadline (`1 + n % granularity` us before).
        AdvanceJustBefore(u64),
    }

    /// Offsets from now, in microseconds: the past, the current tick, and multiples of
    /// level spans with a little jitter around each boundary.
    fn offset(g: u64) -> impl Strategy<Value = i64> {
        let g = g as i64;
        prop_oneof![
            -5_000i64..=0,
            0i64..2_000,
            (0u32..=7, 1i64..64, -2i64..=2).prop_map(move |(level, digit, jitter)| {
                64i64
                    .saturating_pow(level)
                    .saturating_mul(digit)
                    .saturating_mul(g)
                    .saturating_add(jitter)
            }),
            0i64..(1 << 36),
        ]
    }

    fn op(g: u64) -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => offset(g).prop_map(Op::Insert),
            1 => any::<usize>().prop_map(Op::Cancel),
            1 => (any::<usize>(), offset(g)).prop_map(|(i, o)| Op::Reschedule(i, o)),
            2 => prop_oneof![0u64..10, 0u64..3_000, 0u64..300_000, 0u64..(1 << 37)]
                .prop_map(Op::Advance),
            1 => Just(Op::AdvanceToNextDeadline),
            1 => Just(Op::AdvanceToModelEarliest),
            1 => any::<u64>().prop_map(Op::AdvanceJustBefore),
        ]
    }

    fn run_model(g: u64, start: u64, ops: &[Op]) -> Result<(), TestCaseError> {
        let mut w = TimerWheel::new(us(start), Duration::from_micros(g));
        let mut now = start;
        // Every handle ever issued, with its key; the live set: key -> (deadline, handle).
        let mut handles: Vec<(TimerHandle, u64)> = Vec::new();
        let mut live: HashMap<u64, (u64, TimerHandle)> = HashMap::new();
        let mut next_key = 0u64;
        let at = |now: u64, off: i64| {
            if off < 0 {
                now.saturating_sub(off.unsigned_abs())
            } else {
                now.saturating_add(off as u64)
            }
        };
        for op in ops {
            let mut advance_to = None;
            match *op {
                Op::Insert(off) => {
                    let d = at(now, off);
                    let h = w.insert(us(d), next_key);
                    prop_assert_ne!(h, TimerHandle::DANGLING);
                    handles.push((h, next_key));
                    live.insert(next_key, (d, h));
                    next_key += 1;
                }
                Op::Cancel(i) if !handles.is_empty() => {
                    let (h, key) = handles[i % handles.len()];
                    let is_live = live.get(&key).is_some_and(|&(_, cur)| cur == h);
                    prop_assert_eq!(w.cancel(h), is_live.then_some(key));
                    if is_live {
                        live.remove(&key);
                    }
                    prop_assert_eq!(w.get(h), None);
                }
                Op::Reschedule(i, off) if !handles.is_empty() => {
                    let (h, key) = handles[i % handles.len()];
                    let is_live = live.get(&key).is_some_and(|&(_, cur)| cur == h);
                    let d = at(now, off);
                    let h2 = w.reschedule(h, us(d));
                    prop_assert_eq!(w.get(h), None);
                    if is_live {
                        prop_assert_eq!(w.get(h2), Some((us(d), key)));
                        handles.push((h2, key));
                        live.insert(key, (d, h2));
                    } else {
                        prop_assert_eq!(h2, TimerHandle::DANGLING);
                    }
                }
                Op::Cancel(_) | Op::Reschedule(..) => {}
                Op::Advance(delta) => advance_to = Some(now.saturating_add(delta)),
                Op::AdvanceToNextDeadline => {
                    advance_to = w.next_deadline().map(|t| t.total_micros().max(now));
                }
                Op::AdvanceToModelEarliest => {
                    advance_to = live.values().map(|&(d, _)| d.max(now)).min();
                }
                Op::AdvanceJustBefore(n) => {
                    let back = 1 + n % g;
                    advance_to = live
                        .values()
                        .map(|&(d, _)| d.saturating_sub(back).max(now))
                        .min();
                }
            }
            prop_assert_eq!(w.len(), live.len());
            let earliest = live.values().map(|&(d, _)| d).min();
            match (w.next_deadline(), earliest) {
                (None, None) => {}
                (Some(nd), Some(e)) => prop_assert!(
                    nd.total_micros() <= e,
                    "next_deadline {} after the earliest deadline {}",
                    nd.total_micros(),
                    e
                ),
                (nd, e) => prop_assert!(false, "next_deadline {:?}, earliest {:?}", nd, e),
            }
            if let Some(to) = advance_to {
                now = to;
                let mut out = Vec::new();
                w.expire(us(now), &mut out);
                let got: Vec<(u64, u64)> =
                    out.iter().map(|&(t, k)| (t.total_micros(), k)).collect();
                prop_assert!(got.windows(2).all(|p| p[0].0 <= p[1].0), "order {:?}", got);
                let mut got = got;
                got.sort();
                let mut want: Vec<(u64, u64)> = live
                    .iter()
                    .filter(|(_, &(d, _))| d <= now)
                    .map(|(&k, &(d, _))| (d, k))
                    .collect();
                want.sort();
                // Exactly what is due: never early, never held back (zero ticks late).
                prop_assert_eq!(&got, &want);
                for (_, k) in &want {
                    live.remove(k);
                }
                if let Some(nd) = w.next_deadline() {
                    prop_assert!(nd.total_micros() > now, "next_deadline not after now");
                }
            }
            check_invariants(&w);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn matches_a_reference_model(
            (g, start, ops) in prop_oneof![Just(1u64), Just(7), Just(1000), Just(1024)]
                .prop_flat_map(|g| (
                    Just(g),
                    prop_oneof![Just(0u64), 0u64..(1 << 40), Just(u64::MAX - (1 << 38))],
                    proptest::collection::vec(op(g), 1..120),
                ))
        ) {
            run_model(g, start, &ops)?;
        }
    }
}
