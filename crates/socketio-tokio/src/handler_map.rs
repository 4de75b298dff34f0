//! The event handlers of one socket, by event name, and a list for what
//! most sockets leave empty.
//!
//! A socket usually has a handful of handlers, one per event: a list of
//! them sorted by name, one entry per handler, costs a fraction of a
//! `HashMap` of lists (no list per event, and the spare room given back
//! once the connect handler has registered its handlers), and finds a name
//! in as many comparisons as there are bits in their count.
//!
//! Most applications register the same handlers on every socket of a
//! namespace, and most handlers capture nothing: such lists are equal from
//! one socket to the next. The list is shared, copied on write, so that
//! the sockets whose lists are equal hold one between them
//! ([`HandlerMap::share`]). A socket that registers the template's
//! handlers in the template's order holds the template's list from its
//! first handler on ([`HandlerMap::follow`]): no list of its own is made,
//! filled and compared only to be let go.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

/// One name and its value.
type Named<V> = (Cow<'static, str>, V);

/// Values by name, sorted by name; the values of one name in the order
/// they were added.
///
/// A name given as a `&'static str` (a literal, as most are) is kept as
/// that reference: no allocation per name and socket. The list is shared
/// and copied on write: 8 bytes while empty or shared.
pub(crate) struct HandlerMap<V> {
    entries: Option<Arc<Vec<Named<V>>>>,
}

impl<V> Default for HandlerMap<V> {
    fn default() -> Self {
        HandlerMap { entries: None }
    }
}

/// A value's place in the order the values of a map were added: above
/// zero, and distinct from every other value's of the map (a listener's
/// id).
pub(crate) trait Ranked {
    /// The value's rank.
    fn rank(&self) -> u64;
}

impl<V: Clone + Ranked> HandlerMap<V> {
    /// Takes `value` of `name` as the next value of a template's list
    /// rather than adding it, when this map holds the values of that list
    /// ranked up to `upto` (the template's list itself, or nothing while
    /// `upto` is 0, when `template` is the list's map) and `value` is
    /// that list's next one (`same` on the value, and the same name, and
    /// no value ranked between): whether it did. The map then holds the
    /// list's values ranked up to `value`'s; the owner keeps that rank,
    /// and settles the map with it ([`HandlerMap::settle`]) before it is
    /// read or changed.
    pub(crate) fn follow(
        &mut self,
        template: Option<&HandlerMap<V>>,
        upto: u64,
        name: &str,
        value: &V,
        same: impl Fn(&V, &V) -> bool,
    ) -> bool {
        let list = match (&self.entries, upto) {
            (None, 0) => template.and_then(|t| t.entries.as_ref()),
            (Some(list), 1..) => Some(list),
            _ => None,
        };
        let Some(list) = list else {
            return false;
        };
        let rank = value.rank();
        let mut found = false;
        // Every value of the list is among those taken, or ranks after
        // `value`; `value` is in it, with its name.
        let next = rank > upto
            && list.iter().all(|(n, v)| {
                let r = v.rank();
                if r == rank && same(v, value) && **n == *name {
                    found = true;
                }
                r <= upto || r >= rank
            });
        if !(next && found) {
            return false;
        }
        if self.entries.is_none() {
            self.entries = Some(Arc::clone(list));
        }
        true
    }

    /// Makes the list of a map that took values of a template's list up
    /// to rank `upto` ([`HandlerMap::follow`]) its own: the template's
    /// whole list, shared, when it took every value of it, else a copy of
    /// the values it took.
    pub(crate) fn settle(&mut self, upto: u64) {
        if let Some(list) = &mut self.entries
            && list.iter().any(|(_, v)| v.rank() > upto)
        {
            let taken = list.iter().filter(|(_, v)| v.rank() <= upto).cloned();
            *list = Arc::new(taken.collect());
        }
    }

    /// The entries, sorted by name.
    fn list(&self) -> &[Named<V>] {
        self.entries.as_deref().map_or(&[], Vec::as_slice)
    }

    /// The entries to change: this map's own, copied first if shared.
    fn list_mut(&mut self) -> &mut Vec<Named<V>> {
        Arc::make_mut(self.entries.get_or_insert_default())
    }

    /// Lets the list go once it is empty.
    fn drop_if_empty(&mut self) {
        if self.entries.as_ref().is_some_and(|list| list.is_empty()) {
            self.entries = None;
        }
    }

    /// Where the values of `name` are: in a short list, the first equal
    /// name (told apart by length before any byte is compared), else where
    /// a binary search puts it.
    fn run(&self, name: &str) -> Range<usize> {
        /// Up to this many entries a scan for an equal name is the cheaper.
        const SCAN: usize = 16;
        let entries = self.list();
        let start = if entries.len() <= SCAN {
            match entries.iter().position(|(n, _)| **n == *name) {
                Some(start) => start,
                None => entries.partition_point(|(n, _)| **n < *name),
            }
        } else {
            entries.partition_point(|(n, _)| **n < *name)
        };
        let len = entries[start..]
            .iter()
            .take_while(|(n, _)| **n == *name)
            .count();
        start..start + len
    }

    /// The values of `name`, in the order they were added.
    pub(crate) fn get(&self, name: &str) -> impl ExactSizeIterator<Item = &V> {
        self.list()[self.run(name)].iter().map(|(_, v)| v)
    }

    /// How many values the map holds.
    pub(crate) fn len(&self) -> usize {
        self.list().len()
    }

    /// Makes room for `n` values in an empty map, so that it grows in one
    /// step to the size its kind usually reaches.
    pub(crate) fn reserve_for(&mut self, n: usize) {
        if self.entries.is_none() && n > 0 {
            self.entries = Some(Arc::new(Vec::with_capacity(n)));
        }
    }

    /// Adds a value of `name`, after those it has.
    pub(crate) fn push(&mut self, name: Cow<'static, str>, value: V) {
        let at = self.run(&name).end;
        let mut name = name;
        if let Cow::Owned(owned) = &mut name {
            owned.shrink_to_fit();
        }
        self.list_mut().insert(at, (name, value));
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
        let entries = &self.list()[run.clone()];
        let read = read(&mut entries.iter().map(|(_, v)| v));
        if entries.iter().any(|(_, v)| once(v)) {
            let entries = self.list_mut();
            let mut i = run.start;
            let mut end = run.end;
            while i < end {
                if once(&entries[i].1) {
                    entries.remove(i);
                    end -= 1;
                } else {
                    i += 1;
                }
            }
            self.drop_if_empty();
        }
        read
    }

    /// Keeps only the values that `keep` says to keep, of every name
    /// (`keep` is asked once per value). A shared list is copied only when
    /// a value goes.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        let Some(first) = self.list().iter().position(|(_, v)| !keep(v)) else {
            return;
        };
        let mut i = 0;
        self.list_mut().retain(|(_, v)| {
            // Before `first`: asked already, kept; `first`: asked, goes.
            let kept = i < first || (i > first && keep(v));
            i += 1;
            kept
        });
        self.drop_if_empty();
    }

    /// Whether both maps hold the same list, shared.
    #[cfg(test)]
    pub(crate) fn shares_list_with(&self, other: &HandlerMap<V>) -> bool {
        match (&self.entries, &other.entries) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Removes every value of `name`.
    pub(crate) fn remove(&mut self, name: &str) {
        let run = self.run(name);
        if run.is_empty() {
            return;
        }
        self.list_mut().drain(run);
        self.drop_if_empty();
    }

    /// Takes `template`'s list, the last of its kind, when it equals this
    /// map's (`same` on each value), and lets this map's own go; whether
    /// the two maps hold one list now (also when they did already). An
    /// empty map takes nothing.
    pub(crate) fn adopt(
        &mut self,
        template: &HandlerMap<V>,
        same: impl Fn(&V, &V) -> bool,
    ) -> bool {
        let (Some(mine), Some(theirs)) = (&mut self.entries, &template.entries) else {
            return false;
        };
        if Arc::ptr_eq(mine, theirs) {
            return true;
        }
        let equal = mine.len() == theirs.len()
            && mine
                .iter()
                .zip(theirs.iter())
                .all(|((n1, v1), (n2, v2))| n1 == n2 && same(v1, v2));
        if equal {
            *mine = theirs.clone();
        }
        equal
    }

    /// Shares this map's list with `template`, the last list of its kind:
    /// when the two are equal (`same` on each value), this map takes the
    /// template's and lets its own go. Else this map's list, with its
    /// spare room given back, becomes the template if `shareable` says so
    /// of every value: a value that holds anything must not be kept alive
    /// by the template, which outlives the map.
    pub(crate) fn share(
        &mut self,
        template: &mut HandlerMap<V>,
        same: impl Fn(&V, &V) -> bool,
        shareable: impl Fn(&V) -> bool,
    ) {
        if self.adopt(template, same) {
            return;
        }
        let Some(mine) = &mut self.entries else {
            return;
        };
        if let Some(list) = Arc::get_mut(mine) {
            list.shrink_to_fit();
        }
        if mine.iter().all(|(_, v)| shareable(v)) {
            template.entries = Some(mine.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test value's rank is its size.
    impl Ranked for i32 {
        fn rank(&self) -> u64 {
            u64::from(self.unsigned_abs())
        }
    }

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
        let names: Vec<&str> = m.list().iter().map(|(n, _)| &**n).collect();
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
    fn finds_names_in_a_long_list_as_in_a_short_one() {
        let names: Vec<String> = (0..40).map(|i| format!("event{}", i % 20)).collect();
        let mut m = HandlerMap::default();
        for (i, name) in names.iter().enumerate() {
            m.push(Cow::Owned(name.clone()), i as i32);
            // Each name's values in order, whether the list is scanned or
            // searched.
            for (j, other) in names.iter().enumerate().take(i + 1).take(20) {
                let want: Vec<i32> = (j..=i).step_by(20).map(|k| k as i32).collect();
                assert_eq!(values(&m, other), want, "{other} among {}", i + 1);
            }
        }
        assert_eq!(values(&m, "event2"), [2, 22]);
        assert_eq!(values(&m, "event"), [0; 0]);
        assert_eq!(values(&m, "event99"), [0; 0]);
    }

    /// A map whose values are names or, when negative, values that
    /// hold something and so are never shared.
    fn map(values: &[(&'static str, i32)]) -> HandlerMap<i32> {
        let mut m = HandlerMap::default();
        for (name, v) in values {
            m.push(Cow::Borrowed(*name), *v);
        }
        m
    }

    fn share(m: &mut HandlerMap<i32>, template: &mut HandlerMap<i32>) {
        m.share(template, |a, b| a == b, |v| *v >= 0);
    }

    fn same_list(a: &HandlerMap<i32>, b: &HandlerMap<i32>) -> bool {
        a.shares_list_with(b)
    }

    #[test]
    fn equal_lists_are_shared_and_copied_on_write() {
        let mut template = HandlerMap::default();
        let mut first = map(&[("echo", 1), ("join", 2)]);
        share(&mut first, &mut template);
        assert!(
            same_list(&first, &template),
            "the first list is the template"
        );
        assert_eq!(
            first.list().len(),
            first
                .entries
                .as_ref()
                .map(|l| l.capacity())
                .unwrap_or_default()
        );

        let mut second = HandlerMap::default();
        second.reserve_for(first.len());
        second.push(Cow::Borrowed("join"), 2);
        second.push(Cow::Borrowed("echo"), 1);
        assert_eq!(second.entries.as_ref().map(|l| l.capacity()), Some(2));
        share(&mut second, &mut template);
        assert!(same_list(&second, &first), "an equal list is shared");

        // A change copies the shared list first: the others keep theirs.
        second.push(Cow::Borrowed("echo"), 3);
        assert!(!same_list(&second, &first));
        assert_eq!(values(&second, "echo"), [1, 3]);
        assert_eq!(values(&first, "echo"), [1]);
        let read = first.take_of("echo", |vs| vs.count(), |v| *v == 1);
        assert_eq!(read, 1);
        assert_eq!(values(&first, "echo"), [0; 0]);
        assert_eq!(
            values(&map_of(&template), "echo"),
            [1],
            "the template is left alone"
        );
        let mut asked = 0;
        first.retain(|_| {
            asked += 1;
            true
        });
        assert_eq!(asked, 1, "each value is asked once");
        first.remove("nothing");
        assert_eq!(values(&first, "join"), [2]);
        first.remove("join");
        assert!(first.entries.is_none(), "an emptied list goes");

        // A different list replaces the template, unless a value in it may
        // not be kept alive by the template.
        let mut other = map(&[("say", 4)]);
        share(&mut other, &mut template);
        assert!(same_list(&other, &template));
        let mut holding = map(&[("say", -1)]);
        share(&mut holding, &mut template);
        assert!(same_list(&other, &template));
        assert!(!same_list(&holding, &template));

        // An empty map has nothing to share.
        let mut empty = HandlerMap::default();
        share(&mut empty, &mut template);
        assert!(empty.entries.is_none());
    }

    /// Adds each value to `m` as a socket adds its handlers: each taken
    /// from `template` while it is the next of its list (the rank taken up
    /// to kept in `upto`), else added after the map settles. Gives the
    /// rank taken up to, or `u64::MAX` once the map has a list of its own.
    fn add_all(
        m: &mut HandlerMap<i32>,
        template: &HandlerMap<i32>,
        values: &[(&'static str, i32)],
    ) -> u64 {
        let mut upto = 0;
        for (name, v) in values {
            if upto != u64::MAX && m.follow(Some(template), upto, name, v, |a, b| a == b) {
                upto = v.rank();
            } else {
                if upto != u64::MAX {
                    m.settle(upto);
                    upto = u64::MAX;
                }
                m.push(Cow::Borrowed(*name), *v);
            }
        }
        upto
    }

    #[test]
    fn a_map_that_adds_a_templates_values_in_its_order_holds_its_list() {
        let mut template = HandlerMap::default();
        let all = [("join", 1), ("echo", 2), ("say", 3), ("echo", 4)];
        let mut first = map(&all);
        share(&mut first, &mut template);

        let mut same = HandlerMap::default();
        let upto = add_all(&mut same, &template, &all);
        assert_eq!(upto, 4, "every value taken");
        assert!(same_list(&same, &template), "no list of its own");
        same.settle(upto);
        assert!(same_list(&same, &template), "the whole list, settled");
        assert_eq!(values(&same, "echo"), [2, 4]);

        // The first values only: the others are not this map's.
        let mut prefix = HandlerMap::default();
        let upto = add_all(&mut prefix, &template, &all[..3]);
        assert!(same_list(&prefix, &template), "taken so far");
        prefix.settle(upto);
        assert!(!same_list(&prefix, &template), "a copy of its own part");
        assert_eq!(values(&prefix, "echo"), [2]);
        assert_eq!(values(&prefix, "say"), [3]);
        assert_eq!(prefix.len(), 3);
        assert_eq!(
            values(&template, "echo"),
            [2, 4],
            "the template is left alone"
        );

        // A value that differs from the template's next one: a list of its
        // own, with what was taken before it.
        let mut differs = HandlerMap::default();
        add_all(
            &mut differs,
            &template,
            &[("join", 1), ("echo", 7), ("say", 3)],
        );
        assert!(!same_list(&differs, &template));
        assert_eq!(values(&differs, "join"), [1]);
        assert_eq!(values(&differs, "echo"), [7]);
        assert_eq!(values(&differs, "say"), [3]);
        assert_eq!(differs.len(), 3);

        // The same value under another name, and a value after a gap in
        // the template's order, are not taken.
        let mut renamed = HandlerMap::default();
        add_all(&mut renamed, &template, &[("nioj", 1)]);
        assert!(!same_list(&renamed, &template));
        assert_eq!(values(&renamed, "nioj"), [1]);
        let mut skipped = HandlerMap::default();
        add_all(&mut skipped, &template, &[("join", 1), ("say", 3)]);
        assert!(!same_list(&skipped, &template));
        assert_eq!(values(&skipped, "say"), [3]);
        assert_eq!(values(&skipped, "echo"), [0; 0]);
        assert_eq!(skipped.len(), 2);

        // A map with a list of its own takes nothing, nor one from an
        // empty template.
        let mut own = map(&[("join", 1)]);
        assert!(!own.follow(Some(&template), 0, "join", &1, |a, b| a == b));
        let mut none = HandlerMap::default();
        assert!(!none.follow(Some(&HandlerMap::default()), 0, "join", &1, |a, b| a == b));
        assert!(none.entries.is_none());
    }

    /// A map holding the template's list.
    fn map_of(template: &HandlerMap<i32>) -> HandlerMap<i32> {
        HandlerMap {
            entries: template.entries.clone(),
        }
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
        assert_eq!(list.swap_remove(0), 1);
        assert_eq!(&*list, [3, 20]);
        list.retain(|v| *v != 3);
        assert_eq!(&*list, [20]);
        list.retain(|_| false);
        assert!(
            list.0.is_none(),
            "a list emptied by `retain` lets its room go"
        );
        list.push(1);
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

    /// The list, or `None` if it was never made: nothing to iterate over
    /// (or to drop) when unused.
    pub(crate) fn into_option(self) -> Option<Vec<T>> {
        self.0.map(|list| *list)
    }

    /// Keeps the values `keep` says to keep; the room goes once none is
    /// left.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        if let Some(list) = &mut self.0 {
            list.retain(keep);
            if list.is_empty() {
                self.0 = None;
            }
        }
    }

    /// Takes out the value at `index`, the last one taking its place; the
    /// room is kept for the next value.
    pub(crate) fn swap_remove(&mut self, index: usize) -> T {
        self.vec().swap_remove(index)
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
