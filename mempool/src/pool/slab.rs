//! A slab: values stored densely, named by a 4-byte handle that stays valid until the value
//! is removed; freed places are reused. The pool keeps its transactions and fee payers in
//! slabs so that its indexes hold handles instead of copies of 32-byte keys.

/// Values by handle. See the module docs.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    items: Vec<Option<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Slab<T> {
        Slab { items: Vec::new(), free: Vec::new(), len: 0 }
    }
}

impl<T> Slab<T> {
    /// Stores `value`; returns its handle.
    pub(crate) fn insert(&mut self, value: T) -> u32 {
        self.len += 1;
        if let Some(h) = self.free.pop() {
            self.items[h as usize] = Some(value);
            return h;
        }
        let h = u32::try_from(self.items.len()).expect("fewer than 2^32 values");
        self.items.push(Some(value));
        h
    }

    /// Removes and returns the value named by `h`, if any.
    pub(crate) fn remove(&mut self, h: u32) -> Option<T> {
        let value = self.items.get_mut(h as usize)?.take()?;
        self.len -= 1;
        self.free.push(h);
        if self.len == 0 {
            // Everything is free: start over, so an emptied slab gives its memory back.
            self.items = Vec::new();
            self.free = Vec::new();
        }
        Some(value)
    }

    /// The value named by `h`. Panics if there is none: a handle held by an index always
    /// names a live value.
    pub(crate) fn at(&self, h: u32) -> &T {
        self.items[h as usize].as_ref().expect("a live handle")
    }

    /// [`Slab::at`], mutably.
    pub(crate) fn at_mut(&mut self, h: u32) -> &mut T {
        self.items[h as usize].as_mut().expect("a live handle")
    }

    /// The value named by `h`, if any.
    #[cfg(test)]
    pub(crate) fn get(&self, h: u32) -> Option<&T> {
        self.items.get(h as usize)?.as_ref()
    }

    /// How many values are stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every value, in no particular order.
    #[cfg(test)]
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.items.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_stay_valid_and_freed_places_are_reused() {
        let mut s = Slab::default();
        let a = s.insert("a");
        let b = s.insert("b");
        assert_eq!((s.at(a), s.at(b), s.len()), (&"a", &"b", 2));
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.remove(a), None, "removed once");
        assert_eq!(s.get(a), None);
        let c = s.insert("c");
        assert_eq!(c, a, "the freed place is reused");
        assert_eq!(s.at(b), &"b");
        s.remove(b);
        s.remove(c);
        assert_eq!(s.len(), 0);
        assert_eq!(s.get(b), None);
        assert_eq!(s.insert("d"), 0, "an emptied slab starts over");
    }
}
