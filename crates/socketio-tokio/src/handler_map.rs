//! The event handlers of one socket, by event name.
//!
//! A socket usually has a handful of handlers: a sorted list of them costs a
//! quarter of a `HashMap` (about 0.1 KiB against 0.35 KiB for four, kept for
//! the socket's life) and finds a name in as many comparisons as there are
//! bits in their count.

/// Values by name, sorted by name.
pub(crate) struct HandlerMap<V> {
    entries: Vec<(Box<str>, V)>,
}

impl<V> Default for HandlerMap<V> {
    fn default() -> Self {
        HandlerMap {
            entries: Vec::new(),
        }
    }
}

impl<V> HandlerMap<V> {
    fn find(&self, name: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(n, _)| (**n).cmp(name))
    }

    /// The value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&V> {
        self.find(name).ok().map(|i| &self.entries[i].1)
    }

    /// The value of `name`, to change.
    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut V> {
        self.find(name).ok().map(|i| &mut self.entries[i].1)
    }

    /// The names, in order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| &**n)
    }

    /// Sets the value of `name`, returning the one it replaces.
    pub(crate) fn insert(&mut self, name: String, value: V) -> Option<V> {
        match self.find(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                // One more slot at a time: most sockets register a few
                // handlers once.
                self.entries.reserve_exact(1);
                self.entries.insert(i, (name.into_boxed_str(), value));
                None
            }
        }
    }

    /// Removes `name`, returning its value.
    pub(crate) fn remove(&mut self, name: &str) -> Option<V> {
        let i = self.find(name).ok()?;
        Some(self.entries.remove(i).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_map() {
        let mut m = HandlerMap::default();
        assert_eq!(m.get("a"), None);
        for (i, name) in ["say", "echo", "join", "a", "zz", "echo_ack"]
            .iter()
            .enumerate()
        {
            assert_eq!(m.insert((*name).to_owned(), i), None);
        }
        assert_eq!(m.get("echo"), Some(&1));
        assert_eq!(m.get("echo_ack"), Some(&5));
        assert_eq!(m.get("ech"), None);
        assert_eq!(m.insert("echo".to_owned(), 10), Some(1));
        assert_eq!(m.get("echo"), Some(&10));
        assert_eq!(m.remove("say"), Some(0));
        assert_eq!(m.remove("say"), None);
        assert_eq!(m.get("say"), None);
        assert_eq!(m.get("zz"), Some(&4));
        assert_eq!(m.get(""), None);
        assert_eq!(m.insert(String::new(), 7), None);
        assert_eq!(m.get(""), Some(&7));
        let names: Vec<&str> = m.entries.iter().map(|(n, _)| &**n).collect();
        assert_eq!(names, ["", "a", "echo", "echo_ack", "join", "zz"]);
    }
}
