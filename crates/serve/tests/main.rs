//! The server over real HTTP on loopback: results equal `encode`, concurrent requests merge
//! into batches, bad requests and overload get OpenAI-shaped errors, disconnects and graceful
//! shutdown leave it serving or finish what was accepted.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use burn_ndarray::NdArray;
use embedtune_encoder::{testing, EncodeOptions, Prompts, SentenceEncoder, TransformerConfig};
use embedtune_serve::{ServeConfig, ServeError, Server, Stats};
use serde_json::{json, Value};

type B = NdArray<f32>;

fn model() -> SentenceEncoder<B> {
    let tokenizer = testing::tiny_tokenizer(128).expect("tokenizer");
    let config = TransformerConfig::tiny_bert(tokenizer.vocab_size(), 64, 2, 4).expect("config");
    let mut model =
        SentenceEncoder::<B>::random(config, tokenizer, &Default::default()).expect("model");
    model.set_prompts(Prompts {
        query: Some("query: ".into()),
        passage: Some("passage: ".into()),
    });
    model
}

/// A server on an ephemeral loopback port, stopped (gracefully) on drop.
struct Running {
    addr: SocketAddr,
    stats: Arc<Stats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), ServeError>>>,
}

impl Running {
    fn start(config: ServeConfig) -> Self {
        Self::serving(model(), config)
    }

    fn serving(model: SentenceEncoder<B>, config: ServeConfig) -> Self {
        let server = Server::new(model, config).expect("server");
        let stats = server.stats();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                server
                    .serve(listener, async {
                        let _ = stopped.await;
                    })
                    .await
            })
        });
        Self {
            addr,
            stats,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn shutdown(&mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().expect("server thread"),
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: Value,
}

/// One HTTP/1.1 request with `Connection: close`.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("write head");
    // a server may answer (413) and close before reading a large body
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .expect("status line")
        .split(' ')
        .nth(1)
        .expect("code")
        .parse()
        .expect("number");
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    let body = serde_json::from_slice(&raw[split + 4..]).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
    }
}

fn post(addr: SocketAddr, body: &Value) -> Reply {
    http(
        addr,
        "POST",
        "/v1/embeddings",
        &[],
        body.to_string().as_bytes(),
    )
}

fn floats(datum: &Value) -> Vec<f32> {
    match &datum["embedding"] {
        Value::String(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64")
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        v => serde_json::from_value(v.clone()).expect("floats"),
    }
}

fn texts(n: usize, words: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            (0..words)
                .map(|w| {
                    [
                        "super",
                        "guarantee",
                        "fund",
                        "employer",
                        "clearing",
                        "house",
                        "tax",
                    ][(i + w * 3) % 7]
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn concurrent_requests_merge_into_batches_and_equal_encode() {
    // (random weights: the server gets a copy of the reference model)
    let reference = model();
    let server = Running::serving(
        reference.clone(),
        ServeConfig {
            model_name: "tiny".into(),
            ..ServeConfig::default()
        },
    );
    let clients: Vec<_> = (0..24)
        .map(|c| {
            let addr = server.addr;
            std::thread::spawn(move || {
                let input = texts(1 + c % 5, 20 + 7 * c);
                let input_type = ["query", "passage"][c % 2];
                let format = ["float", "base64"][(c / 2) % 2];
                let reply = post(
                    addr,
                    &json!({"input": input, "model": "tiny", "input_type": input_type, "encoding_format": format}),
                );
                (input, input_type, reply)
            })
        })
        .collect();
    for client in clients {
        let (input, input_type, reply) = client.join().expect("client");
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["model"], "tiny");
        assert_eq!(reply.body["object"], "list");
        let prompt = format!("{input_type}: ");
        let want = reference
            .encode(
                &input,
                &EncodeOptions {
                    prompt: Some(prompt.clone()),
                    ..Default::default()
                },
            )
            .expect("encode");
        let data = reply.body["data"].as_array().expect("data");
        assert_eq!(data.len(), input.len());
        for (i, datum) in data.iter().enumerate() {
            assert_eq!(datum["index"], i);
            assert!(max_diff(&floats(datum), &want[i]) <= 1e-5);
        }
        let prompted: Vec<String> = input.iter().map(|t| format!("{prompt}{t}")).collect();
        let tokens: usize = reference
            .tokenizer()
            .encode_ids(&prompted.iter().map(String::as_str).collect::<Vec<_>>())
            .expect("ids")
            .iter()
            .map(Vec::len)
            .sum();
        assert_eq!(reply.body["usage"]["prompt_tokens"], tokens);
        assert_eq!(reply.body["usage"]["total_tokens"], tokens);
    }
    let (batches, requests) = (
        server.stats.batches.load(Ordering::Relaxed),
        server.stats.requests.load(Ordering::Relaxed),
    );
    assert_eq!(requests, 24);
    assert!(
        batches < requests,
        "{batches} batches for {requests} concurrent requests"
    );

    // a single string, no input_type: no prompt; Matryoshka truncation re-normalised
    let reply = post(
        server.addr,
        &json!({"input": "tax file number", "dimensions": 16}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v = floats(&reply.body["data"][0]);
    let full = reference
        .encode(&["tax file number"], &EncodeOptions::default())
        .expect("encode");
    let norm = full[0][..16].iter().map(|x| x * x).sum::<f32>().sqrt();
    let want: Vec<f32> = full[0][..16].iter().map(|x| x / norm).collect();
    assert!(max_diff(&v, &want) <= 1e-5);
}

#[test]
fn bad_requests_get_openai_errors_and_auth_is_enforced() {
    let server = Running::start(ServeConfig {
        model_name: "tiny".into(),
        max_inputs: 4,
        max_input_chars: 50,
        max_body_bytes: 4096,
        api_key: Some("sekret".into()),
        ..ServeConfig::default()
    });
    let auth = [("Authorization", "Bearer sekret")];
    let send = |body: &[u8]| http(server.addr, "POST", "/v1/embeddings", &auth, body);
    let long = "x".repeat(51);
    let big = "y".repeat(5000);
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{not json".to_vec(), 400, "invalid JSON"),
        (b"[1, 2]".to_vec(), 400, "JSON object"),
        (
            br#"{"model": "tiny"}"#.to_vec(),
            400,
            "missing field 'input'",
        ),
        (br#"{"input": []}"#.to_vec(), 400, "empty list"),
        (br#"{"input": ["a", 3]}"#.to_vec(), 400, "token arrays"),
        (
            br#"{"input": ["a", null]}"#.to_vec(),
            400,
            "input[1] is null",
        ),
        (br#"{"input": 7}"#.to_vec(), 400, "a number"),
        (
            br#"{"input": ["a", ""]}"#.to_vec(),
            400,
            "input[1] is empty",
        ),
        (
            br#"{"input": ["a","b","c","d","e"]}"#.to_vec(),
            413,
            "at most 4",
        ),
        (
            json!({"input": [long]}).to_string().into_bytes(),
            413,
            "at most 50",
        ),
        (
            json!({"input": [big]}).to_string().into_bytes(),
            413,
            "larger than 4096 bytes",
        ),
        (
            br#"{"input": "a", "model": "gpt"}"#.to_vec(),
            404,
            "not served here",
        ),
        (
            br#"{"input": "a", "encoding_format": "int8"}"#.to_vec(),
            400,
            "encoding_format",
        ),
        (
            br#"{"input": "a", "dimensions": 0}"#.to_vec(),
            400,
            "dimensions",
        ),
        (
            br#"{"input": "a", "dimensions": 65}"#.to_vec(),
            400,
            "from 1 to 64",
        ),
        (
            br#"{"input": "a", "input_type": "code"}"#.to_vec(),
            400,
            "input_type",
        ),
    ];
    for (body, status, message) in cases {
        let reply = send(&body);
        assert_eq!(
            reply.status,
            status,
            "{} -> {}",
            String::from_utf8_lossy(&body),
            reply.body
        );
        let error = &reply.body["error"];
        assert!(
            error["message"].as_str().unwrap_or("").contains(message),
            "{}",
            reply.body
        );
        assert!(error["type"].is_string(), "{}", reply.body);
        assert!(
            error.get("param").is_some() && error.get("code").is_some(),
            "{}",
            reply.body
        );
    }
    // authentication: /v1/* needs the key, /health does not
    let reply = http(
        server.addr,
        "POST",
        "/v1/embeddings",
        &[],
        br#"{"input": "a"}"#,
    );
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body["error"]["type"], "authentication_error");
    let wrong = [("Authorization", "Bearer nope")];
    assert_eq!(
        http(server.addr, "GET", "/v1/models", &wrong, b"").status,
        401
    );
    let models = http(server.addr, "GET", "/v1/models", &auth, b"");
    assert_eq!(models.status, 200);
    assert_eq!(models.body["data"][0]["id"], "tiny");
    let health = http(server.addr, "GET", "/health", &[], b"");
    assert_eq!(
        (health.status, health.body["status"].as_str()),
        (200, Some("ok"))
    );
    assert_eq!(send(br#"{"input": "a"}"#).status, 200);
}

#[test]
fn a_flood_past_the_queue_bound_gets_503_then_service_resumes() {
    // Every request has `tokens` tokens; a batch fits one and a half (so whenever two wait, one
    // is carried over to the next batch), the queue three.
    let input = texts(4, 60);
    let tokens: usize = model()
        .tokenizer()
        .encode_ids(&input.iter().map(String::as_str).collect::<Vec<_>>())
        .expect("ids")
        .iter()
        .map(Vec::len)
        .sum();
    let server = Running::start(ServeConfig {
        model_name: "tiny".into(),
        max_batch_tokens: tokens + tokens / 2,
        max_queue_tokens: 3 * tokens,
        ..ServeConfig::default()
    });
    let clients: Vec<_> = (0..48)
        .map(|_| {
            let addr = server.addr;
            let input = input.clone();
            std::thread::spawn(move || post(addr, &json!({ "input": input })))
        })
        .collect();
    let replies: Vec<Reply> = clients
        .into_iter()
        .map(|c| c.join().expect("client"))
        .collect();
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status == 503).collect();
    let served = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(refused.len() + served, replies.len(), "only 200 and 503");
    assert!(
        !refused.is_empty(),
        "48 concurrent requests of ~250 tokens against a 600-token queue"
    );
    assert!(served > 0);
    for r in refused {
        assert_eq!(r.headers.get("retry-after").map(String::as_str), Some("1"));
        assert_eq!(r.body["error"]["code"], "overloaded");
    }
    // afterwards: nothing left queued, and a request is served
    let health = http(server.addr, "GET", "/health", &[], b"");
    assert_eq!(health.body["queued_tokens"], 0);
    assert_eq!(
        post(server.addr, &json!({"input": "after the flood"})).status,
        200
    );
}

#[test]
fn disconnects_are_harmless_and_shutdown_finishes_accepted_requests() {
    let mut server = Running::start(ServeConfig {
        model_name: "tiny".into(),
        max_batch_tokens: 512,
        ..ServeConfig::default()
    });
    // clients that send a request and leave at once, or stop halfway through the body
    for i in 0..16 {
        let mut s = TcpStream::connect(server.addr).expect("connect");
        let body = json!({"input": texts(8, 80)}).to_string();
        let head = format!(
            "POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).expect("head");
        let cut = if i % 2 == 0 {
            body.len()
        } else {
            body.len() / 2
        };
        s.write_all(&body.as_bytes()[..cut]).expect("body");
        drop(s);
    }
    assert_eq!(
        post(server.addr, &json!({"input": "still here"})).status,
        200
    );
    // a request in flight when shutdown starts is answered; then serve() returns
    let addr = server.addr;
    let in_flight = std::thread::spawn(move || post(addr, &json!({"input": texts(32, 120)})));
    std::thread::sleep(Duration::from_millis(50));
    server.shutdown().expect("graceful shutdown");
    let reply = in_flight.join().expect("client");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"].as_array().map(Vec::len), Some(32));
    assert!(TcpStream::connect(addr).is_err(), "no longer accepting");
}
