//! `midge pub`: publish one message (`-m`, `-f`, `-s`, `-n`, `--repeat`) or one per line
//! of standard input (`-l`), then disconnect. As `mosquitto_pub` 2.0 (`pub_client.c`).

use std::collections::VecDeque;
use std::io::BufRead as _;

use bytes::Bytes;
use midge_client::{Client, ClientError, Published};
use midge_codec::{Publish, TopicName};
use tokio::task::JoinHandle;

use super::options::{Config, Payload};
use super::{connect, err_print, read_payload};

/// Runs `midge pub`; returns the exit code.
pub(super) async fn run(config: Config) -> i32 {
    let Some(payload) = read_payload(&config) else {
        return 1;
    };
    let Ok(topic) = TopicName::new(config.topics[0].as_str()) else {
        err_print(&config, "Error: Invalid publish topic.\n");
        return 1;
    };
    let (client, _events) = match connect(&config, false).await {
        Ok(connected) => connected,
        Err(code) => return code,
    };
    let result = if config.payload == Some(Payload::StdinLines) {
        publish_lines(&config, &client, &topic).await
    } else {
        publish_repeated(&config, &client, &topic, payload).await
    };
    super::disconnect(&config, &client).await;
    result
}

fn message(config: &Config, topic: &TopicName, payload: Bytes) -> Publish {
    let mut publish = Publish::new(topic.clone(), payload);
    publish.qos = config.qos;
    publish.retain = config.retain;
    publish.properties = config.properties.publish.clone().into();
    publish
}

async fn publish_one(config: &Config, client: &Client, topic: &TopicName, payload: Bytes) -> i32 {
    finish(
        config,
        client.publish_with(message(config, topic, payload)).await,
    )
}

fn finish(config: &Config, result: Result<Published, ClientError>) -> i32 {
    match result {
        Ok(_) => 0,
        Err(e) => {
            err_print(config, &format!("Error: {e}\n"));
            1
        }
    }
}

async fn publish_repeated(
    config: &Config,
    client: &Client,
    topic: &TopicName,
    payload: Bytes,
) -> i32 {
    for i in 0..config.repeat {
        if i > 0 && !config.repeat_delay.is_zero() {
            tokio::time::sleep(config.repeat_delay).await;
        }
        let code = publish_one(config, client, topic, payload.clone()).await;
        if code != 0 {
            return code;
        }
    }
    0
}

/// `-l`: each line of standard input, without its line ending, is one message. Lines
/// do not wait for the previous one's acknowledgement: up to `-M` are in flight (the
/// client holds the rest back), as in mosquitto_pub.
async fn publish_lines(config: &Config, client: &Client, topic: &TopicName) -> i32 {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    // Standard input blocks; read it on its own thread and hand the lines over.
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if tx.blocking_send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let window = usize::from(config.max_inflight);
    let mut in_flight = VecDeque::new();
    while let Some(line) = rx.recv().await {
        if in_flight.len() >= window {
            let code = wait_one(config, &mut in_flight).await;
            if code != 0 {
                return code;
            }
        }
        let client = client.clone();
        let publish = message(config, topic, Bytes::from(line));
        // Spawned in order; the current-thread runtime runs them in that order, so the
        // requests reach the client in the order of the lines.
        in_flight.push_back(tokio::spawn(
            async move { client.publish_with(publish).await },
        ));
    }
    while !in_flight.is_empty() {
        let code = wait_one(config, &mut in_flight).await;
        if code != 0 {
            return code;
        }
    }
    0
}

/// Waits for the oldest publication in flight.
async fn wait_one(
    config: &Config,
    in_flight: &mut VecDeque<JoinHandle<Result<Published, ClientError>>>,
) -> i32 {
    match in_flight.pop_front() {
        Some(handle) => match handle.await {
            Ok(result) => finish(config, result),
            Err(_) => 1,
        },
        None => 0,
    }
}
