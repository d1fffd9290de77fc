//! End-to-end: real Traefik, run as an unprivileged user (`nobody`) in its own mount namespace,
//! with the plugin's spool on a full disk (a 1 MiB tmpfs filled up) and on a read-only bind
//! mount. Tests run as root, so permission bits would prove nothing: here the kernel refuses
//! the writes. Traefik must answer every request, the plugin must count every record it could
//! not write, and once space (or write access) returns, records flow again with the drops
//! reported. The spool is read from outside the namespace through `/proc/<pid>/root`.

// Shared with `traefik_e2e`; this binary uses only part of it.
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::http::Backend;
use common::serial;
use common::traefik::Traefik;
use gatetrace_core::record::Record;
use gatetrace_core::spool::joined_record_start;

/// `nobody` / `nogroup`.
const NOBODY: u32 = 65_534;

const DYNAMIC: &str = r#"
http:
  routers:
    main:
      rule: "PathPrefix(`/`)"
      entryPoints: [web]
      service: backend
      middlewares: [gatetrace]
  middlewares:
    gatetrace:
      plugin:
        gatetrace:
          service: disk
          spool:
            dir: "{spool}"
  services:
    backend:
      loadBalancer:
        servers:
          - url: "{backend}"
"#;

/// How the spool is mounted inside Traefik's namespace (`$SPOOL` is its path).
const TMPFS: &str = r#"mount -t tmpfs -o size=1m,mode=0777 gatetrace-spool "$SPOOL""#;
const READ_ONLY: &str = r#"mount --bind "$SPOOL" "$SPOOL" && mount -o remount,bind,ro "$SPOOL""#;

fn chown_tree(path: &Path) {
    std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).unwrap();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path());
        }
    }
}

/// Starts Traefik as `nobody` in a new mount namespace where `mount_spool` has run first, with
/// `GOMAXPROCS` set to `procs` when given.
fn start(backend: &Backend, mount_spool: &str, procs: Option<u32>) -> Traefik {
    let mut traefik = Traefik::start_with(DYNAMIC, backend.port, |traefik, work| {
        let spool = work.join("spool");
        std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o777)).unwrap();
        chown_tree(work);
        let script = format!(
            "set -e; {mount_spool}; exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups -- \"$@\""
        );
        let mut wrapped = Command::new("unshare");
        wrapped
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
                "sh",
            ])
            .arg(traefik.get_program())
            .args(traefik.get_args())
            .current_dir(work)
            .env("SPOOL", &spool)
            .env("HOSTNAME", "e2e-node");
        if let Some(procs) = procs {
            wrapped.env("GOMAXPROCS", procs.to_string());
        }
        wrapped
    });
    // Seen from outside the namespace: the spool as Traefik sees it.
    traefik.spool = PathBuf::from(format!(
        "/proc/{}/root{}",
        traefik.child.id(),
        traefik.spool.display()
    ));
    traefik.wait_route("/ready");
    traefik
}

/// Whole records in the spool and the fragments of short writes, read as the collector reads
/// them: a record another instance appended to a fragment (it cannot know the line before it
/// was cut) is a record ([`joined_record_start`]).
fn spool_records(traefik: &Traefik) -> (Vec<Record>, Vec<String>) {
    let mut records = Vec::new();
    let mut fragments = Vec::new();
    for line in traefik.spool_lines() {
        if let Ok(record) = Record::from_ndjson_line(line.as_bytes()) {
            records.push(record);
            continue;
        }
        let joined = joined_record_start(line.as_bytes());
        match joined.map(|start| Record::from_ndjson_line(&line.as_bytes()[start..])) {
            Some(Ok(record)) => {
                records.push(record);
                fragments.push(line[..joined.unwrap_or_default()].to_owned());
            }
            _ => fragments.push(line),
        }
    }
    (records, fragments)
}

/// Sends `n` requests tagged `tag-<i>`; every one must be answered by the backend.
fn send(traefik: &Traefik, tag: &str, n: usize) {
    let http = testkit::http::Http::new();
    for i in 0..n {
        let target = format!("/{tag}/{i}");
        let response = http.get_text(&format!("http://127.0.0.1:{}{target}", traefik.port));
        assert_eq!(
            response.map(|(status, _)| status),
            Some(200),
            "{target}: Traefik must keep answering\n{}",
            traefik.log()
        );
    }
}

/// Sends requests until the spool accounts for every request the backend saw: records written
/// plus drops reported. An instance reports its own drops with its next record; the drops of an
/// instance Traefik's pool no longer calls are reported by another once its drops slot has been
/// idle for a window and the grace (15 s by default), so this keeps sending for up to a minute.
fn wait_until_every_request_is_accounted(traefik: &Traefik, backend: &Backend) -> (u64, u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut tally = (0, 0);
    while std::time::Instant::now() < deadline {
        let (records, _) = spool_records(traefik);
        let dropped: u64 = records.iter().map(|r| r.dropped).sum();
        let seen = backend.seen_with("/").len() as u64;
        tally = (records.len() as u64, dropped);
        if records.len() as u64 + dropped == seen {
            return tally;
        }
        assert!(
            (records.len() as u64 + dropped) < seen,
            "more records and drops ({tally:?}) than requests ({seen})"
        );
        send(traefik, "settle", 1);
        std::thread::sleep(Duration::from_millis(100));
    }
    let files: Vec<String> = std::fs::read_dir(&traefik.spool)
        .unwrap()
        .flatten()
        .map(|e| {
            let size = e.metadata().map_or(0, |m| m.len());
            let name = e.file_name().to_string_lossy().into_owned();
            let count = std::fs::read(e.path())
                .ok()
                .filter(|b| name.starts_with("drops-") && b.len() == 8)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap()));
            format!(
                "{name} ({size} bytes{})",
                count.map_or(String::new(), |c| format!(", owes {c}"))
            )
        })
        .collect();
    // Which requests have no record (by the request id the backend got), by tag.
    let written: std::collections::HashSet<String> = spool_records(traefik)
        .0
        .into_iter()
        .map(|r| r.request_id)
        .collect();
    let mut unrecorded = std::collections::BTreeMap::<String, u64>::new();
    for seen in backend.seen_with("/") {
        if !seen
            .header("x-request-id")
            .is_some_and(|id| written.contains(&id))
        {
            let tag = seen.target.split('/').nth(1).unwrap_or_default().to_owned();
            *unrecorded.entry(tag).or_default() += 1;
        }
    }
    panic!(
        "records + reported drops {tally:?} never matched the {} requests; requests without a record by tag: {unrecorded:?}; {} fragments; spool: {files:?}\nTraefik's errors:\n{}",
        backend.seen_with("/").len(),
        spool_records(traefik).1.len(),
        traefik
            .log()
            .lines()
            .filter(|l| l.contains("ERR") || l.contains("WRN") || l.contains("panic"))
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Every record dropped while the disk is full is reported once space returns, exactly: an
/// instance Traefik's pool stops calling (it discards idle instances at garbage collection)
/// leaves its count in its drops slot, and another instance reports it (issue 14: before the
/// slots, about 100 of 670 drops were never reported).
#[test]
#[ignore = "e2e: needs traefik, cargo xtask wasm, root (unshare, mount, setpriv)"]
fn a_full_spool_disk_drops_and_counts_and_records_flow_again_when_space_returns() {
    let _serial = serial();
    let backend = Backend::start();
    let traefik = start(&backend, TMPFS, None);
    send(&traefik, "before", 20);
    testkit::wait_until(
        "records before the disk fills",
        Duration::from_secs(10),
        || spool_records(&traefik).0.len() >= 20,
    );
    let written_before = spool_records(&traefik).0.len();

    // Fill the disk to the last byte, as root from outside (tmpfs limits root too).
    let filler = traefik.spool.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    for chunk in [4096usize, 1] {
        while std::io::Write::write_all(&mut file, &vec![b'x'; chunk]).is_ok() {}
    }
    drop(file);
    send(&traefik, "full", 200);
    let (records, _) = spool_records(&traefik);
    let during = records.len() - written_before;
    assert!(
        during < 200,
        "a full disk took {during} of 200 records: the disk was not full"
    );

    // Space returns: records flow again and report what was lost.
    std::fs::remove_file(&filler).unwrap();
    send(&traefik, "after", 50);
    let (written, dropped) = wait_until_every_request_is_accounted(&traefik, &backend);
    let (records, fragments) = spool_records(&traefik);
    assert!(dropped > 0, "drops were counted and reported");
    // Each instance kept its count in its drops slot and took it back to zero once reported.
    let slots: Vec<(String, Vec<u8>)> = std::fs::read_dir(&traefik.spool)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .filter(|(name, _)| name.starts_with("drops-") || name.starts_with("held-"))
        .collect();
    assert!(!slots.is_empty(), "the instances' drops slots");
    for (name, bytes) in &slots {
        assert!(
            name.starts_with("drops-") && bytes.as_slice() == [0u8; 8],
            "slot {name} holds {bytes:?} after every drop was reported"
        );
    }
    assert!(
        records
            .iter()
            .filter(|r| r.endpoint.starts_with("/after"))
            .count()
            >= 50,
        "every request after space returned has its record"
    );
    eprintln!(
        "full disk: {} requests, {written} records, {dropped} drops reported, {} fragments of short writes, {during} records written while full",
        backend.seen_with("/").len(),
        fragments.len()
    );
}

#[test]
#[ignore = "e2e: needs traefik, cargo xtask wasm, root (unshare, mount, setpriv)"]
fn a_read_only_spool_drops_and_counts_and_records_flow_again_when_writable() {
    let _serial = serial();
    let backend = Backend::start();
    // One Go processor: Traefik's instance pool then keeps one instance for these sequential
    // requests. On a read-only spool nothing can hold a drop count but the instance, so the
    // count of an instance the pool discards (it does at garbage collection, with more
    // processors parking idle instances) is lost; the README says so. The full-disk test runs
    // with every processor: there the drops slots keep the counts.
    let traefik = start(&backend, READ_ONLY, Some(1));
    send(&traefik, "readonly", 100);
    let (records, _) = spool_records(&traefik);
    assert!(
        records.is_empty(),
        "nothing can be written to a read-only spool"
    );
    let startup = traefik.log();
    assert!(
        startup.contains("not writable"),
        "the plugin says the spool is not writable:\n{startup}"
    );

    // Write access returns (remounted inside Traefik's namespace).
    let spool_inside = traefik
        .spool
        .to_str()
        .and_then(|p| p.split_once("/root").map(|(_, inside)| inside.to_owned()))
        .unwrap();
    let status = Command::new("nsenter")
        .args([
            "--target",
            &traefik.child.id().to_string(),
            "--mount",
            "mount",
            "-o",
            "remount,bind,rw",
            &spool_inside,
        ])
        .status()
        .unwrap();
    assert!(status.success(), "remount read-write");
    send(&traefik, "writable", 50);
    let (written, dropped) = wait_until_every_request_is_accounted(&traefik, &backend);
    assert!(
        dropped >= 100,
        "the read-only time's records are reported dropped ({dropped})"
    );
    eprintln!(
        "read-only spool: {} requests, {written} records, {dropped} drops reported",
        backend.seen_with("/").len()
    );
}
