//! A session's subscriptions, by filter.

use std::collections::HashMap;

use midge_codec::TopicFilter;

use super::SessionSubscription;

/// Past this many subscriptions, a session keeps them in a map instead of a list.
const LISTED: usize = 16;

/// A session's subscriptions by filter: a list while there are few (most clients have a
/// handful, and a map's smallest table holds four entries: that was a third of an idle
/// subscriber's memory), a map past [`LISTED`].
#[derive(Debug, Clone)]
pub enum Subscriptions {
    /// Few: searched in order.
    Listed(Vec<(TopicFilter, SessionSubscription)>),
    /// Many. (Boxed: the list is three words, a map six.)
    #[allow(clippy::box_collection)]
    Mapped(Box<HashMap<TopicFilter, SessionSubscription>>),
}

impl Default for Subscriptions {
    fn default() -> Self {
        Subscriptions::Listed(Vec::new())
    }
}

impl Subscriptions {
    /// Adds or replaces the subscription to `filter`; returns the one replaced.
    pub fn insert(
        &mut self,
        filter: TopicFilter,
        sub: SessionSubscription,
    ) -> Option<SessionSubscription> {
        match self {
            Subscriptions::Listed(list) => {
                if let Some((_, old)) = list.iter_mut().find(|(f, _)| *f == filter) {
                    return Some(std::mem::replace(old, sub));
                }
                if list.len() < LISTED {
                    if list.capacity() == 0 {
                        list.reserve_exact(1);
                    }
                    list.push((filter, sub));
                    return None;
                }
                let mut map: HashMap<_, _> = std::mem::take(list).into_iter().collect();
                map.insert(filter, sub);
                *self = Subscriptions::Mapped(Box::new(map));
                None
            }
            Subscriptions::Mapped(map) => map.insert(filter, sub),
        }
    }

    /// Removes the subscription to `filter`, if there is one.
    pub fn remove(&mut self, filter: &TopicFilter) -> Option<SessionSubscription> {
        match self {
            Subscriptions::Listed(list) => {
                let i = list.iter().position(|(f, _)| f == filter)?;
                Some(list.swap_remove(i).1)
            }
            Subscriptions::Mapped(map) => map.remove(filter),
        }
    }

    /// The subscription to `filter`.
    pub fn get(&self, filter: &TopicFilter) -> Option<&SessionSubscription> {
        match self {
            Subscriptions::Listed(list) => list.iter().find(|(f, _)| f == filter).map(|(_, s)| s),
            Subscriptions::Mapped(map) => map.get(filter),
        }
    }

    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        match self {
            Subscriptions::Listed(list) => list.len(),
            Subscriptions::Mapped(map) => map.len(),
        }
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every subscription, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&TopicFilter, &SessionSubscription)> {
        let (list, map) = match self {
            Subscriptions::Listed(list) => (Some(list), None),
            Subscriptions::Mapped(map) => (None, Some(&**map)),
        };
        let listed = list.into_iter().flatten().map(|(f, s)| (f, s));
        listed.chain(map.into_iter().flatten())
    }

    /// Removes every subscription; returns their filters.
    pub fn take_filters(&mut self) -> Vec<TopicFilter> {
        match std::mem::take(self) {
            Subscriptions::Listed(list) => list.into_iter().map(|(f, _)| f).collect(),
            Subscriptions::Mapped(map) => map.into_keys().collect(),
        }
    }
}

impl FromIterator<(TopicFilter, SessionSubscription)> for Subscriptions {
    fn from_iter<I: IntoIterator<Item = (TopicFilter, SessionSubscription)>>(iter: I) -> Self {
        let mut subscriptions = Subscriptions::default();
        for (filter, sub) in iter {
            subscriptions.insert(filter, sub);
        }
        subscriptions
    }
}

#[cfg(test)]
mod tests {
    use midge_codec::SubscriptionOptions;

    use super::*;

    fn sub(id: u32) -> SessionSubscription {
        SessionSubscription {
            options: SubscriptionOptions::default(),
            id: std::num::NonZeroU32::new(id),
        }
    }

    fn filter(i: usize) -> TopicFilter {
        TopicFilter::new(format!("a/{i}/#")).expect("valid filter")
    }

    /// The list and the map behave alike: insert replaces, remove finds, past
    /// `LISTED` entries the subscriptions move to a map and lose none.
    #[test]
    fn a_list_then_a_map_keep_every_subscription() {
        let mut subs = Subscriptions::default();
        for i in 0..40 {
            assert_eq!(subs.insert(filter(i), sub(i as u32)), None);
            assert_eq!(subs.len(), i + 1);
            assert_eq!(
                matches!(subs, Subscriptions::Mapped(_)),
                i + 1 > LISTED,
                "after {} subscriptions",
                i + 1
            );
        }
        assert_eq!(subs.insert(filter(3), sub(99)), Some(sub(3)));
        assert_eq!(subs.get(&filter(3)), Some(&sub(99)));
        assert_eq!(subs.remove(&filter(7)), Some(sub(7)));
        assert_eq!(subs.remove(&filter(7)), None);
        assert_eq!(subs.iter().count(), 39);
        let mut filters = subs.take_filters();
        filters.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(filters.len(), 39);
        assert!(subs.is_empty());

        let mut few: Subscriptions = (0..3).map(|i| (filter(i), sub(i as u32))).collect();
        assert_eq!(few.remove(&filter(0)), Some(sub(0)));
        assert_eq!(few.get(&filter(2)), Some(&sub(2)));
        assert_eq!(few.iter().count(), 2);
    }
}
