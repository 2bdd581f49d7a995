//! Batches bounded in items and in bytes: what one import transaction (or one fetch) holds,
//! so memory stays bounded whatever the input.

pub(super) struct Batches<T> {
    open: Vec<T>,
    bytes: usize,
    max_items: usize,
    max_bytes: usize,
    size: fn(&T) -> usize,
}

impl<T> Batches<T> {
    /// Batches of at most `max_items` items and `max_bytes` bytes as `size` counts them; an
    /// item larger than `max_bytes` gets a batch of its own.
    pub fn new(max_items: usize, max_bytes: usize, size: fn(&T) -> usize) -> Batches<T> {
        Batches {
            open: Vec::new(),
            bytes: 0,
            max_items: max_items.max(1),
            max_bytes,
            size,
        }
    }

    /// Adds `item`; returns the batch this closed, if any: the open one when `item` would
    /// take it over the byte bound, or the one `item` filled.
    #[must_use]
    pub fn push(&mut self, item: T) -> Option<Vec<T>> {
        let size = (self.size)(&item);
        // The open batch is never full here (a full one closes at once), so at most one
        // batch closes per push.
        let closed = if self.bytes + size > self.max_bytes {
            self.take()
        } else {
            None
        };
        self.bytes += size;
        self.open.push(item);
        if self.open.len() >= self.max_items {
            return self.take();
        }
        closed
    }

    /// Removes the first item of the open batch that `doomed` picks.
    pub fn remove(&mut self, doomed: impl Fn(&T) -> bool) {
        if let Some(i) = self.open.iter().position(doomed) {
            let item = self.open.remove(i);
            self.bytes -= (self.size)(&item);
        }
    }

    /// The last batch, if anything is left.
    #[must_use]
    pub fn finish(mut self) -> Option<Vec<T>> {
        self.take()
    }

    fn take(&mut self) -> Option<Vec<T>> {
        self.bytes = 0;
        (!self.open.is_empty()).then(|| std::mem::take(&mut self.open))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(b: &mut Batches<usize>, items: &[usize]) -> Vec<Vec<usize>> {
        items.iter().filter_map(|&i| b.push(i)).collect()
    }

    #[test]
    fn batches_close_on_items_and_on_bytes() {
        let mut b = Batches::new(3, 10, |&n| n);
        assert_eq!(all(&mut b, &[1, 1, 1, 1]), vec![vec![1, 1, 1]]);
        // 1 + 6 fits, 1 + 6 + 6 does not; 20 alone is over and still gets a batch.
        assert_eq!(
            all(&mut b, &[6, 6, 20, 2]),
            vec![vec![1, 6], vec![6], vec![20]]
        );
        assert_eq!(b.finish(), Some(vec![2]));
    }

    #[test]
    fn a_removed_item_frees_its_bytes() {
        let mut b = Batches::new(10, 10, |&n| n);
        assert_eq!(all(&mut b, &[4, 5]), Vec::<Vec<usize>>::new());
        b.remove(|&n| n == 5);
        assert_eq!(b.push(6), None);
        assert_eq!(b.finish(), Some(vec![4, 6]));
        assert_eq!(Batches::new(1, 1, |&n: &usize| n).finish(), None);
    }
}
