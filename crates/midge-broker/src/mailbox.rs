//! The bounded queue of messages routed to one session, and its policy when full.
//!
//! Publishers push into a session's mailbox; the session's connection task drains it.
//! While the client is offline the mailbox is the persistent session's queue. It is
//! bounded in messages and bytes (DESIGN.md "Bounded memory"): when full, a QoS 0
//! message is dropped first — an older queued QoS 0 message makes room for a QoS 1/2
//! one — and otherwise the new message is dropped; every drop is counted.

use std::collections::VecDeque;

use midge_codec::QoS;

use crate::message::Delivery;

/// Limits of one mailbox.
#[derive(Debug, Clone, Copy)]
pub struct MailboxLimits {
    /// Most messages queued (`max_queued_messages`); 0: no limit.
    pub max_messages: usize,
    /// Most payload bytes queued (`max_queued_bytes`); 0: no limit.
    pub max_bytes: usize,
    /// Whether QoS 0 messages are queued for offline clients (`queue_qos0_messages`).
    pub queue_qos0_offline: bool,
}

impl Default for MailboxLimits {
    fn default() -> Self {
        MailboxLimits {
            max_messages: 1000,
            max_bytes: 0,
            queue_qos0_offline: false,
        }
    }
}

/// A session's queue of deliveries.
#[derive(Debug)]
pub struct Mailbox {
    queue: VecDeque<Delivery>,
    /// Payload bytes queued.
    bytes: usize,
    limits: MailboxLimits,
    /// Whether a connection is draining the mailbox.
    online: bool,
    /// Messages dropped because the mailbox was full or the client offline.
    dropped: u64,
}

impl Mailbox {
    /// An empty, offline mailbox.
    pub fn new(limits: MailboxLimits) -> Self {
        Mailbox {
            queue: VecDeque::new(),
            bytes: 0,
            limits,
            online: false,
            dropped: 0,
        }
    }

    /// Marks the mailbox as drained by a live connection, or not.
    pub fn set_online(&mut self, online: bool) {
        self.online = online;
    }

    /// Number of queued deliveries.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Messages dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn full_for(&self, size: usize) -> bool {
        let l = &self.limits;
        (l.max_messages > 0 && self.queue.len() >= l.max_messages)
            || (l.max_bytes > 0 && self.bytes + size > l.max_bytes)
    }

    /// Queues `delivery`, applying the policy above. Returns false if it was dropped.
    pub fn push(&mut self, delivery: Delivery) -> bool {
        let qos0 = delivery.qos == QoS::AtMostOnce;
        if qos0 && !self.online && !self.limits.queue_qos0_offline {
            self.dropped += 1;
            return false;
        }
        let size = delivery.message.payload.len();
        while self.full_for(size) {
            let oldest_qos0 = if qos0 {
                None
            } else {
                self.queue.iter().position(|d| d.qos == QoS::AtMostOnce)
            };
            match oldest_qos0.and_then(|i| self.queue.remove(i)) {
                Some(evicted) => {
                    self.bytes -= evicted.message.payload.len();
                    self.dropped += 1;
                }
                None => {
                    self.dropped += 1;
                    return false;
                }
            }
        }
        self.bytes += size;
        self.queue.push_back(delivery);
        true
    }

    /// Takes the oldest delivery.
    pub fn pop(&mut self) -> Option<Delivery> {
        let delivery = self.queue.pop_front()?;
        self.bytes -= delivery.message.payload.len();
        Some(delivery)
    }

    /// Takes out, in order, the deliveries for which `pred` holds.
    pub fn take_if(&mut self, mut pred: impl FnMut(&Delivery) -> bool) -> Vec<Delivery> {
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.queue.len());
        for delivery in self.queue.drain(..) {
            if pred(&delivery) {
                self.bytes -= delivery.message.payload.len();
                taken.push(delivery);
            } else {
                kept.push_back(delivery);
            }
        }
        self.queue = kept;
        taken
    }

    /// Empties the mailbox (the session ended).
    pub fn clear(&mut self) {
        self.queue.clear();
        self.bytes = 0;
    }
}
