//! `midge sub`: subscribe and print messages until `-C` messages, `-W` seconds, `-E`,
//! or forever. As `mosquitto_sub` 2.0 (`sub_client.c`): same filtering (`-R`, `-T`,
//! `--retained-only`), `--remove-retained`, exit codes (27 with "Timed out").

use bytes::Bytes;
use midge_client::{Client, Event, Events};
use midge_codec::{Publish, QoS, RetainHandling, SubscriptionOptions, TopicFilter, topic_matches};

use super::options::Config;
use super::{connect, err_print, format, print_message};

/// Runs `midge sub`; returns the exit code.
pub(super) async fn run(config: Config) -> i32 {
    let (client, events) = match connect(&config, true).await {
        Ok(connected) => connected,
        Err(code) => return code,
    };
    let work = session(&config, &client, events);
    super::run_with_timeout(&config, &client, work).await
}

/// Subscribes, unsubscribes `-U`, then prints messages until done.
async fn session(config: &Config, client: &Client, mut events: Events) -> i32 {
    let options = SubscriptionOptions {
        qos: config.qos,
        no_local: false,
        retain_as_published: config.retain_as_published,
        // -R also asks a 5.0 server not to send retained messages at all.
        retain_handling: if config.no_retain {
            RetainHandling::DoNotSend
        } else {
            RetainHandling::SendAtSubscribe
        },
    };
    let filters: Vec<_> = config
        .topics
        .iter()
        .filter_map(|t| TopicFilter::new(t.as_str()).ok())
        .map(|f| (f, options))
        .collect();
    // As mosquitto_sub, the UNSUBSCRIBE goes out right behind the SUBSCRIBE, without
    // waiting for the SUBACK.
    let unsubscribe = async {
        if config.unsubscribe.is_empty() {
            return Ok(());
        }
        let filters = config
            .unsubscribe
            .iter()
            .filter_map(|t| TopicFilter::new(t.as_str()).ok())
            .collect();
        client
            .unsubscribe_with(filters, config.properties.unsubscribe.clone())
            .await
            .map(drop)
    };
    let subscribe = client.subscribe_with(filters, config.properties.subscribe.clone());
    let (subscribed, unsubscribed) = tokio::join!(subscribe, unsubscribe);
    match subscribed {
        Ok(ack) => {
            if ack.reason_codes.iter().all(|c| c.is_error()) {
                err_print(config, "All subscription requests were denied.\n");
            }
        }
        Err(e) => {
            err_print(config, &format!("Error: {e}\n"));
            return 1;
        }
    }
    if let Err(e) = unsubscribed {
        err_print(config, &format!("Error: {e}\n"));
        return 1;
    }
    if config.exit_after_sub {
        return 0;
    }
    let mut received = 0;
    let mut out = Vec::new();
    let mut random = Random::new();
    while let Some(event) = events.recv().await {
        let message = match event {
            Event::Message(message) => message,
            Event::Disconnected(e) if client.is_closed() => {
                err_print(config, &format!("Error: {e}\n"));
                return 1;
            }
            _ => continue,
        };
        match handle_message(config, client, &message).await {
            Step::Skip => continue,
            Step::Stop => return 0,
            Step::Print => {}
        }
        if config.random_filter < 10000 && random.below(10000) >= config.random_filter {
            continue;
        }
        print_message(config, &mut out, &message);
        if config.msg_count > 0 {
            received += 1;
            if received == config.msg_count {
                return 0;
            }
        }
    }
    1
}

enum Step {
    Print,
    Skip,
    Stop,
}

/// `my_message_callback`'s decisions, in its order.
async fn handle_message(config: &Config, client: &Client, message: &Publish) -> Step {
    if config.remove_retained && message.retain {
        let mut clear = Publish::new(message.topic.clone(), Bytes::new());
        clear.qos = QoS::AtLeastOnce;
        clear.retain = true;
        // Queued now, ahead of any DISCONNECT that `-C` may send next, without waiting
        // for the acknowledgement (as in mosquitto_sub).
        let _ = client.publish_with(clear).await;
    }
    if config.retained_only && !message.retain {
        return Step::Stop;
    }
    if message.retain && config.no_retain {
        return Step::Skip;
    }
    let topic = message.topic.as_str();
    if config.filter_out.iter().any(|f| topic_matches(f, topic)) {
        return Step::Skip;
    }
    Step::Print
}

/// `--random-filter`'s dice: xorshift64*, seeded from the clock and the process id.
struct Random(u64);

impl Random {
    fn new() -> Self {
        let nanos = format::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        Random((nanos ^ u64::from(std::process::id()) << 32) | 1)
    }

    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as u32 % n
    }
}
