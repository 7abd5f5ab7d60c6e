//! Our side of the flows we start: packet identifiers, the requests sent and not yet
//! acknowledged (in the order they were sent, for resending), and the requests waiting
//! to be sent (for a connection, or for room in the server's Receive Maximum).
//!
//! This is bookkeeping only; the protocol decisions are in `mod.rs`.

use std::collections::{HashMap, VecDeque};

use midge_codec::{
    Ack, PacketId, Publish, SubscribeProperties, SubscriptionOptions, TopicFilter,
    UnsubscribeProperties,
};

/// Where a QoS 1 or 2 publication stands.
#[derive(Debug)]
pub(super) enum Stage {
    /// PUBLISH sent: awaits PUBACK (QoS 1) or PUBREC (QoS 2).
    Sent,
    /// QoS 2, PUBREC received and PUBREL sent: awaits PUBCOMP. Keeps the PUBREC for
    /// the result.
    Released(Ack),
}

/// A request sent and not yet acknowledged.
// Publications are the common flow; boxing them would cost an allocation each to save
// memory on the rare SUBSCRIBE/UNSUBSCRIBE.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum Flow<T> {
    /// A QoS 1/2 PUBLISH, kept with its full topic (aliases are per connection) and its
    /// packet id, to be resent with DUP on a resumed session ([MQTT-4.4.0-1]).
    Publish {
        publish: Publish,
        stage: Stage,
        token: T,
    },
    /// A SUBSCRIBE; `token` is `None` for the client's own resubscriptions.
    Subscribe {
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
        properties: SubscribeProperties,
        token: Option<T>,
    },
    /// An UNSUBSCRIBE.
    Unsubscribe {
        filters: Vec<TopicFilter>,
        properties: UnsubscribeProperties,
        token: Option<T>,
    },
}

/// A SUBSCRIBE or UNSUBSCRIBE waiting for a connection.
#[derive(Debug)]
pub(super) enum Control<T> {
    /// A SUBSCRIBE to build once it has a packet id.
    Subscribe {
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
        properties: SubscribeProperties,
        token: Option<T>,
    },
    /// An UNSUBSCRIBE to build once it has a packet id.
    Unsubscribe {
        filters: Vec<TopicFilter>,
        properties: UnsubscribeProperties,
        token: Option<T>,
    },
}

impl<T> Flow<T> {
    /// The request again, to be sent afresh: what a SUBSCRIBE or UNSUBSCRIBE in flight
    /// becomes when the session is lost. `None` for a publication.
    pub(super) fn into_control(self) -> Option<Control<T>> {
        match self {
            Flow::Publish { .. } => None,
            Flow::Subscribe {
                filters,
                properties,
                token,
            } => Some(Control::Subscribe {
                filters,
                properties,
                token,
            }),
            Flow::Unsubscribe {
                filters,
                properties,
                token,
            } => Some(Control::Unsubscribe {
                filters,
                properties,
                token,
            }),
        }
    }
}

#[derive(Debug)]
struct Entry<T> {
    /// Send order: resends keep it ([MQTT-4.6.0-1]).
    seq: u64,
    flow: Flow<T>,
}

/// The outbound half of the session.
#[derive(Debug)]
pub(super) struct Outbound<T> {
    /// Where the search for a free packet id starts: ids are handed out in turn, so a
    /// late acknowledgement of an old flow cannot be mistaken for a new one.
    next_id: u16,
    /// Counter giving each flow its send order.
    next_seq: u64,
    /// Flows by packet id: every id in use ([MQTT-2.2.1-3]).
    flows: HashMap<u16, Entry<T>>,
    /// QoS 1/2 publications not yet acknowledged: what the server's Receive Maximum
    /// bounds ([MQTT-3.3.4-7]).
    publishes_in_flight: usize,
    /// Publications waiting, in order, with their tokens.
    pub(super) pending_publish: VecDeque<(Publish, T)>,
    /// SUBSCRIBE/UNSUBSCRIBE waiting for a connection.
    pub(super) pending_control: VecDeque<Control<T>>,
}

impl<T> Default for Outbound<T> {
    fn default() -> Self {
        Outbound {
            next_id: 1,
            next_seq: 0,
            flows: HashMap::new(),
            publishes_in_flight: 0,
            pending_publish: VecDeque::new(),
            pending_control: VecDeque::new(),
        }
    }
}

impl<T> Outbound<T> {
    /// A packet id no flow uses, or `None` when all 65,535 are taken.
    pub(super) fn free_id(&mut self) -> Option<PacketId> {
        for _ in 0..u16::MAX {
            let id = self.next_id;
            self.next_id = if id == u16::MAX { 1 } else { id + 1 };
            if !self.flows.contains_key(&id) {
                return PacketId::new(id);
            }
        }
        None
    }

    /// Records a flow just sent under `id`.
    pub(super) fn insert(&mut self, id: PacketId, flow: Flow<T>) {
        if matches!(flow, Flow::Publish { .. }) {
            self.publishes_in_flight += 1;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.flows.insert(id.get(), Entry { seq, flow });
    }

    /// The flow under `id`.
    pub(super) fn get_mut(&mut self, id: PacketId) -> Option<&mut Flow<T>> {
        self.flows.get_mut(&id.get()).map(|e| &mut e.flow)
    }

    /// Ends the flow under `id`, freeing the id (and a place in the server's Receive
    /// Maximum for a publication).
    pub(super) fn remove(&mut self, id: PacketId) -> Option<Flow<T>> {
        let entry = self.flows.remove(&id.get())?;
        if matches!(entry.flow, Flow::Publish { .. }) {
            self.publishes_in_flight -= 1;
        }
        Some(entry.flow)
    }

    /// Packet ids of the flows in flight, in the order they were first sent.
    pub(super) fn ids_in_order(&self) -> Vec<PacketId> {
        let mut ids: Vec<(u64, u16)> = self.flows.iter().map(|(id, e)| (e.seq, *id)).collect();
        ids.sort_unstable();
        ids.into_iter()
            .filter_map(|(_, id)| PacketId::new(id))
            .collect()
    }

    /// Removes every flow, in the order they were sent.
    pub(super) fn drain_in_order(&mut self) -> Vec<Flow<T>> {
        let mut entries: Vec<Entry<T>> = self.flows.drain().map(|(_, e)| e).collect();
        entries.sort_unstable_by_key(|e| e.seq);
        self.publishes_in_flight = 0;
        entries.into_iter().map(|e| e.flow).collect()
    }

    /// QoS 1/2 publications sent and not yet acknowledged.
    pub(super) fn publishes_in_flight(&self) -> usize {
        self.publishes_in_flight
    }

    /// Flows in flight of any kind.
    pub(super) fn flows_len(&self) -> usize {
        self.flows.len()
    }

    /// Requests waiting to be sent.
    pub(super) fn pending_len(&self) -> usize {
        self.pending_publish.len() + self.pending_control.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow() -> Flow<()> {
        Flow::Unsubscribe {
            filters: vec![],
            properties: UnsubscribeProperties::default(),
            token: None,
        }
    }

    /// conformance: v5 MQTT-2.2.1-3
    #[test]
    fn packet_ids_are_nonzero_unused_and_wrap() {
        let mut out = Outbound::<()>::default();
        let first = out.free_id().unwrap();
        assert_eq!(first.get(), 1);
        out.insert(first, flow());
        assert_eq!(out.free_id().unwrap().get(), 2);
        // Wrap around: ids restart at 1, skipping those in use.
        out.next_id = u16::MAX;
        assert_eq!(out.free_id().unwrap().get(), u16::MAX);
        assert_eq!(out.free_id().unwrap().get(), 2);
        out.remove(first);
        out.next_id = 1;
        assert_eq!(out.free_id().unwrap().get(), 1);
    }

    #[test]
    fn packet_ids_run_out_when_all_are_in_use() {
        let mut out = Outbound::<()>::default();
        for _ in 0..u16::MAX {
            let id = out.free_id().unwrap();
            out.insert(id, flow());
        }
        assert_eq!(out.free_id(), None);
        out.remove(PacketId::new(4242).unwrap());
        assert_eq!(out.free_id().unwrap().get(), 4242);
    }
}
