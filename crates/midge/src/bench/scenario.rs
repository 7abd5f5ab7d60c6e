//! Scenarios as data: each one is turned into a [`Plan`] (which publishers publish to
//! which topics, which subscribers subscribe to which filters, and which publishers each
//! receiver must hear from) before any socket is opened. `mod.rs` runs the plan.

/// The load shapes `midge bench` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Scenario {
    /// Open N connections at --conn-rate and hold them: connect latency and rate.
    Conn,
    /// N publishers on the topic template, no subscriber (sent rate only).
    Pub,
    /// N subscribers on the topic filter; the messages come from elsewhere.
    Sub,
    /// N publishers on distinct topics, one wildcard subscriber.
    FanIn,
    /// One publisher, N subscribers on its topic.
    FanOut,
    /// N publisher/subscriber pairs, each pair on its own topic.
    Pairs,
    /// --publishers publishers, N subscribers in --groups shared-subscription groups.
    Shared,
}

/// One publishing connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PubSpec {
    /// Written into every payload; indexes the receivers' trackers.
    pub(crate) id: u32,
    pub(crate) topic: String,
}

/// One subscribing connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubSpec {
    pub(crate) filter: String,
    /// The receiver it belongs to (itself, or its shared-subscription group).
    pub(crate) receiver: usize,
}

/// What must arrive somewhere: each message of these publishers exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Receiver {
    /// `None`: every publisher of the run.
    pub(crate) publishers: Option<Vec<u32>>,
}

/// Every connection of a run, and what each receiver expects.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Plan {
    /// Connections that only connect and stay idle (`conn`).
    pub(crate) idle: usize,
    pub(crate) publishers: Vec<PubSpec>,
    pub(crate) subscribers: Vec<SubSpec>,
    pub(crate) receivers: Vec<Receiver>,
}

/// The knobs a plan depends on.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    pub(crate) scenario: Scenario,
    /// `-c`: connections, publishers, subscribers or pairs depending on the scenario.
    pub(crate) clients: usize,
    /// `shared`: publishers.
    pub(crate) publishers: usize,
    /// `shared`: groups the subscribers are dealt into.
    pub(crate) groups: usize,
    /// Topic template; `%i` becomes the client's index.
    pub(crate) topic: Option<String>,
}

/// `%i` → `i`.
pub(crate) fn expand(template: &str, i: usize) -> String {
    template.replace("%i", &i.to_string())
}

impl Plan {
    pub(crate) fn new(shape: &Shape) -> Plan {
        let n = shape.clients;
        let topic = |default: &str| shape.topic.clone().unwrap_or_else(|| default.to_owned());
        let publishers = |count: usize, template: &str| {
            (0..count)
                .map(|i| PubSpec {
                    id: i as u32,
                    topic: expand(template, i),
                })
                .collect::<Vec<_>>()
        };
        let all = || Receiver { publishers: None };
        match shape.scenario {
            Scenario::Conn => Plan {
                idle: n,
                ..Plan::default()
            },
            Scenario::Pub => Plan {
                publishers: publishers(n, &topic("bench/%i")),
                ..Plan::default()
            },
            Scenario::Sub => Plan {
                subscribers: (0..n)
                    .map(|i| SubSpec {
                        filter: expand(&topic("bench/#"), i),
                        receiver: i,
                    })
                    .collect(),
                receivers: vec![all(); n],
                ..Plan::default()
            },
            Scenario::FanIn => {
                let template = topic("bench/fan-in/%i");
                Plan {
                    publishers: publishers(n, &template),
                    subscribers: vec![SubSpec {
                        filter: template.replace("%i", "+"),
                        receiver: 0,
                    }],
                    receivers: vec![all()],
                    ..Plan::default()
                }
            }
            Scenario::FanOut => {
                let name = expand(&topic("bench/fan-out"), 0);
                Plan {
                    publishers: publishers(1, &name),
                    subscribers: (0..n)
                        .map(|i| SubSpec {
                            filter: name.clone(),
                            receiver: i,
                        })
                        .collect(),
                    receivers: vec![all(); n],
                    ..Plan::default()
                }
            }
            Scenario::Pairs => {
                let template = topic("bench/pair/%i");
                Plan {
                    publishers: publishers(n, &template),
                    subscribers: (0..n)
                        .map(|i| SubSpec {
                            filter: expand(&template, i),
                            receiver: i,
                        })
                        .collect(),
                    receivers: (0..n)
                        .map(|i| Receiver {
                            publishers: Some(vec![i as u32]),
                        })
                        .collect(),
                    ..Plan::default()
                }
            }
            Scenario::Shared => {
                let template = topic("bench/shared/%i");
                let groups = shape.groups.max(1);
                Plan {
                    publishers: publishers(shape.publishers.max(1), &template),
                    subscribers: (0..n)
                        .map(|i| SubSpec {
                            filter: format!(
                                "$share/g{}/{}",
                                i % groups,
                                template.replace("%i", "+")
                            ),
                            receiver: i % groups,
                        })
                        .collect(),
                    receivers: vec![all(); groups.min(n)],
                    ..Plan::default()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(scenario: Scenario, clients: usize) -> Shape {
        Shape {
            scenario,
            clients,
            publishers: 2,
            groups: 2,
            topic: None,
        }
    }

    #[test]
    fn pairs_match_each_subscriber_to_its_publisher() {
        let plan = Plan::new(&shape(Scenario::Pairs, 3));
        assert_eq!(plan.publishers[2].topic, "bench/pair/2");
        assert_eq!(plan.subscribers[2].filter, "bench/pair/2");
        assert_eq!(plan.receivers[1].publishers, Some(vec![1]));
    }

    #[test]
    fn fan_in_subscribes_with_a_wildcard() {
        let plan = Plan::new(&shape(Scenario::FanIn, 4));
        assert_eq!(plan.publishers.len(), 4);
        assert_eq!(plan.subscribers.len(), 1);
        assert_eq!(plan.subscribers[0].filter, "bench/fan-in/+");
    }

    #[test]
    fn shared_deals_subscribers_into_groups() {
        let plan = Plan::new(&shape(Scenario::Shared, 5));
        assert_eq!(plan.publishers.len(), 2);
        assert_eq!(plan.receivers.len(), 2);
        assert_eq!(plan.subscribers[3].filter, "$share/g1/bench/shared/+");
        assert_eq!(plan.subscribers[3].receiver, 1);
    }
}
