//! Slow and greedy clients over real loopback TCP against an in-process collector: a body
//! dripped one byte a second and headers dripped the same way are cut off within their
//! timeouts, connections past the cap are answered 503; each refusal is counted.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gatetrace_collector::metrics::names::REQUESTS_REFUSED_TOTAL;
use gatetrace_collector::{Collector, Config, RunningCollector};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Starts a collector serving on a free loopback port with `args`.
async fn serve(args: &[&str]) -> RunningCollector {
    let mut all = vec!["gatetrace-collector", "--access-log", "off"];
    all.extend_from_slice(args);
    let collector = Collector::start(Config::load(all).unwrap(), None)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    collector.spawn(listener).unwrap()
}

/// Everything the server sends until it closes (or resets) the connection, and how long
/// that took; panics after `limit`.
async fn read_until_closed(stream: &mut tokio::net::tcp::OwnedReadHalf, limit: Duration) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    });
    assert!(read.await.is_ok(), "connection still open after {limit:?}");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Sends `head` at once, then one byte of `drip` per second until the server closes; what the
/// server answered and when the connection ended.
async fn drip(addr: SocketAddr, head: &str, drip: &'static [u8]) -> (String, Duration) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    writer.write_all(head.as_bytes()).await.unwrap();
    let dripper = tokio::spawn(async move {
        for byte in drip {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
        }
    });
    let answer = read_until_closed(&mut reader, Duration::from_secs(20)).await;
    let took = started.elapsed();
    dripper.abort();
    (answer, took)
}

async fn get(addr: SocketAddr, path: &str) -> String {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    read_until_closed(&mut reader, Duration::from_secs(10)).await
}

fn refused(metrics: &str, reason: &str) -> u64 {
    let series = format!("{REQUESTS_REFUSED_TOTAL}{{reason=\"{reason}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_body_dripped_one_byte_a_second_is_cut_off_at_the_body_timeout() {
    let running = serve(&["--body-read-timeout-ms", "2000"]).await;
    let head = "POST /v1/records HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n";
    let (answer, took) = drip(running.addr(), head, &[b'{'; 60]).await;
    println!("slow body cut off after {took:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("not received within 2000 ms"), "{answer}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "cut off after {took:?}, the timeout is 2 s"
    );
    let metrics = get(running.addr(), "/metrics").await;
    assert_eq!(refused(&metrics, "body_timeout"), 1);
    assert_eq!(refused(&metrics, "header_timeout"), 0);
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn headers_dripped_one_byte_a_second_are_cut_off_at_the_header_timeout() {
    let running = serve(&["--header-read-timeout-ms", "1500"]).await;
    let (answer, took) = drip(
        running.addr(),
        "POST /v1/records HTTP/1.1\r\nHost: t\r\n",
        b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    )
    .await;
    println!("slow headers cut off after {took:?}: {answer:?}");
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(4),
        "cut off after {took:?}, the timeout is 1.5 s"
    );
    let metrics = get(running.addr(), "/metrics").await;
    assert_eq!(refused(&metrics, "header_timeout"), 1);
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn connections_past_the_cap_are_answered_503_and_counted() {
    let running = serve(&["--max-connections", "2"]).await;
    let addr = running.addr();
    // Two idle connections take both slots once accepted.
    let first = TcpStream::connect(addr).await.unwrap();
    let second = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (mut reader, _writer) = TcpStream::connect(addr).await.unwrap().into_split();
    let answer = read_until_closed(&mut reader, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After: 1"), "{answer}");
    assert!(answer.contains("too many connections"), "{answer}");
    // A slot frees when a connection closes; the refusal was counted.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    let metrics = loop {
        let answer = get(addr, "/metrics").await;
        if answer.starts_with("HTTP/1.1 200") {
            break answer;
        }
        assert!(Instant::now() < deadline, "no slot freed: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(refused(&metrics, "connection_cap") >= 1);
    drop(second);
    running.shutdown().await.unwrap();
}
