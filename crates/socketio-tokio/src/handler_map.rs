//! The event handlers of one socket, by event name, and a list for what
//! most sockets leave empty.
//!
//! A socket usually has a handful of handlers, one per event: a list of
//! them sorted by name, one entry per handler, costs a fraction of a
//! `HashMap` of lists (no list per event, no spare room), and finds a name
//! in as many comparisons as there are bits in their count.

use std::borrow::Cow;
use std::ops::Range;

/// Values by name, sorted by name; the values of one name in the order
/// they were added.
///
/// A name given as a `&'static str` (a literal, as most are) is kept as
/// that reference: no allocation per name and socket.
pub(crate) struct HandlerMap<V> {
    entries: Vec<(Cow<'static, str>, V)>,
}

impl<V> Default for HandlerMap<V> {
    fn default() -> Self {
        HandlerMap {
            entries: Vec::new(),
        }
    }
}

impl<V> HandlerMap<V> {
    /// Where the values of `name` are.
    fn run(&self, name: &str) -> Range<usize> {
        let start = self.entries.partition_point(|(n, _)| **n < *name);
        let len = self.entries[start..].partition_point(|(n, _)| **n == *name);
        start..start + len
    }

    /// The values of `name`, in the order they were added.
    pub(crate) fn get(&self, name: &str) -> impl ExactSizeIterator<Item = &V> {
        self.entries[self.run(name)].iter().map(|(_, v)| v)
    }

    /// Adds a value of `name`, after those it has.
    pub(crate) fn push(&mut self, name: Cow<'static, str>, value: V) {
        let at = self.run(&name).end;
        // One more slot at a time: most sockets register a few handlers
        // once.
        self.entries.reserve_exact(1);
        let mut name = name;
        if let Cow::Owned(owned) = &mut name {
            owned.shrink_to_fit();
        }
        self.entries.insert(at, (name, value));
    }

    /// What `read` makes of the values of `name`, which are then taken
    /// out of the map where `once` says so: one search for the name.
    pub(crate) fn take_of<R>(
        &mut self,
        name: &str,
        read: impl FnOnce(&mut dyn ExactSizeIterator<Item = &V>) -> R,
        once: impl Fn(&V) -> bool,
    ) -> R {
        let run = self.run(name);
        let entries = &self.entries[run.clone()];
        let read = read(&mut entries.iter().map(|(_, v)| v));
        if entries.iter().any(|(_, v)| once(v)) {
            let mut i = run.start;
            let mut end = run.end;
            while i < end {
                if once(&self.entries[i].1) {
                    self.entries.remove(i);
                    end -= 1;
                } else {
                    i += 1;
                }
            }
        }
        read
    }

    /// Keeps only the values that `keep` says to keep, of every name.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        self.entries.retain(|(_, v)| keep(v));
    }

    /// Removes every value of `name`.
    pub(crate) fn remove(&mut self, name: &str) {
        let run = self.run(name);
        self.entries.drain(run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(m: &HandlerMap<i32>, name: &str) -> Vec<i32> {
        m.get(name).copied().collect()
    }

    #[test]
    fn keeps_the_values_of_each_name_in_order() {
        let mut m = HandlerMap::default();
        assert!(values(&m, "a").is_empty());
        for (i, name) in ["say", "echo", "join", "a", "zz", "echo_ack", "echo", ""]
            .iter()
            .enumerate()
        {
            m.push(Cow::Borrowed(*name), i as i32);
        }
        assert_eq!(values(&m, "echo"), [1, 6]);
        assert_eq!(values(&m, "echo_ack"), [5]);
        assert_eq!(values(&m, "ech"), [0; 0]);
        assert_eq!(values(&m, ""), [7]);
        let names: Vec<&str> = m.entries.iter().map(|(n, _)| &**n).collect();
        assert_eq!(
            names,
            ["", "a", "echo", "echo", "echo_ack", "join", "say", "zz"]
        );

        m.push(Cow::Owned("echo".to_owned()), 8);
        let read = m.take_of("echo", |vs| vs.copied().collect::<Vec<_>>(), |v| *v == 6);
        assert_eq!(read, [1, 6, 8], "every value is read");
        assert_eq!(values(&m, "echo"), [1, 8], "the once-only one is gone");
        assert_eq!(values(&m, "say"), [0], "other names are left alone");
        m.retain(|v| *v != 0);
        assert_eq!(values(&m, "say"), [0; 0]);
        m.remove("echo");
        assert_eq!(values(&m, "echo"), [0; 0]);
        assert_eq!(values(&m, "echo_ack"), [5]);
        assert_eq!(values(&m, "a"), [3]);
    }

    #[test]
    fn a_rare_list_is_a_pointer_until_used_and_after() {
        assert_eq!(std::mem::size_of::<RareVec<String>>(), 8);
        let mut list = RareVec::default();
        assert!(list.is_empty());
        list.push(1);
        list.push(2);
        list.push(3);
        assert_eq!(&*list, [1, 2, 3]);
        list[1] = 20;
        assert_eq!(list.iter().copied().collect::<Vec<_>>(), [1, 20, 3]);
        list.clear();
        assert!(list.0.is_none(), "an emptied list lets its room go");
        let list = RareVec::from(vec![7, 8]);
        assert_eq!(list.into_iter().collect::<Vec<_>>(), [7, 8]);
        assert!(RareVec::<u8>::from(Vec::new()).0.is_none());
    }
}

/// A list that most of its owners leave empty: 8 bytes while empty (a
/// `Vec` is 24), its `Vec` boxed on first use.
#[derive(Clone)]
#[expect(
    clippy::box_collection,
    reason = "the box is what keeps an unused list at one pointer"
)]
pub(crate) struct RareVec<T>(Option<Box<Vec<T>>>);

impl<T> Default for RareVec<T> {
    fn default() -> Self {
        RareVec(None)
    }
}

impl<T> RareVec<T> {
    /// The list, made on first use.
    fn vec(&mut self) -> &mut Vec<T> {
        self.0.get_or_insert_with(Box::default)
    }

    /// Adds `value` at the end.
    pub(crate) fn push(&mut self, value: T) {
        self.vec().push(value);
    }

    /// Empties the list.
    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }
}

impl<T> std::ops::Deref for RareVec<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl<T> std::ops::DerefMut for RareVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.0.as_deref_mut().map_or(&mut [], Vec::as_mut_slice)
    }
}

impl<T> From<Vec<T>> for RareVec<T> {
    fn from(list: Vec<T>) -> Self {
        RareVec((!list.is_empty()).then(|| Box::new(list)))
    }
}

impl<T> IntoIterator for RareVec<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.map(|list| *list).unwrap_or_default().into_iter()
    }
}
