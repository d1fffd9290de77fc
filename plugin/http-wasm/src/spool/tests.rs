//! The spool appender's tests: segments per window, full and failing spools, claims.

use super::fake::FakeDir;
use super::*;
use gatetrace_core::spool::{CLAIM_GENERATION_SECS, parse_segment_name};

const SEC: u64 = 1_000_000_000;

fn layout() -> SpoolLayout {
    SpoolLayout {
        window_secs: 10,
        grace_secs: 5,
        max_windows: 3,
    }
}

fn segments(dir: &Path) -> Vec<(u64, String)> {
    let mut found: Vec<(u64, String)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let w = parse_segment_name(&name)?;
            Some((w, std::fs::read_to_string(dir.join(&name)).unwrap()))
        })
        .collect();
    found.sort();
    found
}

#[test]
fn the_spool_dir_is_found_in_the_longest_preopen() {
    let preopens = [
        (3, "/var".to_owned()),
        (4, "/var/spool/".to_owned()),
        (5, "/var/spoolx".to_owned()),
        (6, "/".to_owned()),
    ];
    assert_eq!(locate("/var/spool", &preopens), Some((4, String::new())));
    assert_eq!(locate("/var/spool/", &preopens), Some((4, String::new())));
    assert_eq!(
        locate("/var/spool/gatetrace", &preopens),
        Some((4, "gatetrace/".to_owned()))
    );
    // A name that only shares a prefix of characters is not a parent.
    assert_eq!(
        locate("/var/spoolxy", &preopens),
        Some((3, "spoolxy/".to_owned()))
    );
    assert_eq!(locate("/tmp/s", &preopens), Some((6, "tmp/s/".to_owned())));
    assert_eq!(locate("/tmp/s", &preopens[..3]), None);
}

const DAY: u64 = CLAIM_GENERATION_SECS * SEC;

fn claim_files(dir: &Path) -> Vec<(String, u64)> {
    let mut found: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            (name, e.metadata().unwrap().len())
        })
        .filter(|(name, _)| name.starts_with("claims"))
        .collect();
    found.sort();
    found
}

#[test]
fn claims_are_unique_offsets_in_the_generation_of_their_clock() {
    let dir = tempfile::tempdir().unwrap();
    let now = 20_000 * DAY + 5 * SEC;
    let claims: Vec<Claim> = (0..5)
        .map(|i| claim_salt(dir.path(), now + i).unwrap())
        .collect();
    // Each claim is CLAIM_BYTES more: 8, 16, 24, ...
    let expected: Vec<Claim> = (1..=5)
        .map(|i| Claim {
            generation: 20_000,
            offset: i * CLAIM_BYTES as u64,
        })
        .collect();
    assert_eq!(claims, expected);
    let bytes = std::fs::read(dir.path().join(claim_file_name(20_000))).unwrap();
    assert_eq!(bytes.len(), 5 * CLAIM_BYTES);
    // The clock is stored little-endian in each claim.
    assert_eq!(&bytes[8..16], &(now + 1).to_le_bytes());
}

/// Instances claiming from threads, the clock crossing a generation boundary while they
/// do: every salt is distinct, the previous generation's file is kept (a claim begun just
/// before the switch may still land in it), older ones and the single `claims` file of
/// earlier versions are removed.
#[test]
fn claims_from_threads_never_collide_across_a_generation_switch() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("claims"), [0u8; 64]).unwrap();
    std::fs::write(dir.path().join(claim_file_name(19_990)), [0u8; 8]).unwrap();
    let switch = 20_000 * DAY;
    let claims: Vec<Claim> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u64)
            .map(|t| {
                let dir = dir.path();
                s.spawn(move || {
                    // Each thread's clock runs from 25 ns before the switch to 25 after.
                    (0..50u64)
                        .map(|i| claim_salt(dir, switch - 25 + i + t).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let unique: std::collections::HashSet<_> = claims.iter().collect();
    assert_eq!(unique.len(), 400, "no salt handed out twice");
    let before = claims.iter().filter(|c| c.generation == 19_999).count() as u64;
    assert!(before > 0 && before < 400, "the switch fell inside the run");
    assert_eq!(
        claim_files(dir.path()),
        [
            (claim_file_name(19_999), before * CLAIM_BYTES as u64),
            (claim_file_name(20_000), (400 - before) * CLAIM_BYTES as u64),
        ],
        "the stale files are gone, the previous generation is kept"
    );
    // A day later the first claim removes generation 19_999; 20_000 stays, and the new
    // file starts at the first offset again, in a generation no earlier salt has.
    let next = claim_salt(dir.path(), switch + DAY).unwrap();
    assert_eq!(
        next,
        Claim {
            generation: 20_001,
            offset: CLAIM_BYTES as u64
        }
    );
    assert!(!claims.contains(&next));
    let names: Vec<String> = claim_files(dir.path()).into_iter().map(|f| f.0).collect();
    assert_eq!(names, [claim_file_name(20_000), claim_file_name(20_001)]);
}

#[test]
fn claim_files_stay_bounded_over_many_days() {
    let dir = tempfile::tempdir().unwrap();
    for day in 0..30u64 {
        for i in 0..10 {
            claim_salt(dir.path(), (20_000 + day) * DAY + i * SEC).unwrap();
        }
    }
    let files = claim_files(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    let total: u64 = files.iter().map(|f| f.1).sum();
    assert_eq!(total, 2 * 10 * CLAIM_BYTES as u64);
}

/// Appends `line` at second `t`.
fn append<D: SpoolDir>(w: &mut SpoolAppender<D>, t: u64, line: &str) -> AppendOutcome {
    w.append(t * SEC, |_| line.as_bytes())
}

#[test]
fn lines_go_to_the_segment_of_their_append_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SpoolAppender::new(Some(StdDir(dir.path().to_path_buf())), layout());
    for (t, line) in [(1_000, "a\n"), (1_009, "b\n"), (1_010, "c\n")] {
        assert!(matches!(append(&mut w, t, line), AppendOutcome::Written));
    }
    assert_eq!(
        segments(dir.path()),
        [(1_000, "a\nb\n".to_owned()), (1_010, "c\n".to_owned())]
    );
}

#[test]
fn the_current_windows_segment_stays_open_and_only_it() {
    let mut w = SpoolAppender::new(Some(FakeDir::default()), layout());
    // Windows of 10 s; the full probe looks 3 windows back.
    let times = [1_030, 1_031, 1_039, 1_040, 1_041, 1_075, 1_076];
    for t in times {
        assert!(matches!(append(&mut w, t, "x\n"), AppendOutcome::Written));
    }
    let (s30, s40, s70) = (
        segment_name(1_030),
        segment_name(1_040),
        segment_name(1_070),
    );
    assert_eq!(
        w.dir().ops,
        [
            format!("exists {}", segment_name(1_000)),
            format!("open {s30}"),
            format!("write {s30}"),
            format!("write {s30}"),
            format!("write {s30}"),
            // Window change: the old handle is closed before anything else.
            format!("close {s30}"),
            format!("exists {}", segment_name(1_010)),
            format!("open {s40}"),
            format!("write {s40}"),
            format!("write {s40}"),
            // An idle gap over several windows: still one close, one probe, one open.
            format!("close {s40}"),
            format!("exists {}", segment_name(1_040)),
            format!("open {s70}"),
            format!("write {s70}"),
            format!("write {s70}"),
        ]
    );
    // Every write went to the segment of the clock reading of its own append.
    let writes: Vec<&String> = w
        .dir()
        .ops
        .iter()
        .filter(|o| o.starts_with("write"))
        .collect();
    for (t, op) in times.iter().zip(writes) {
        assert_eq!(
            *op,
            format!("write {}", segment_name(layout().window_start(t * SEC)))
        );
    }
}

#[test]
fn a_full_spool_closes_the_old_segment_and_opens_nothing() {
    let mut w = SpoolAppender::new(Some(FakeDir::default()), layout());
    assert!(matches!(
        append(&mut w, 1_035, "a\n"),
        AppendOutcome::Written
    ));
    w.dir_mut().existing.push(segment_name(1_010));
    w.dir_mut().ops.clear();
    assert!(matches!(append(&mut w, 1_040, "b\n"), AppendOutcome::Full));
    assert!(matches!(append(&mut w, 1_041, "c\n"), AppendOutcome::Full));
    // Probed once for the window, no open and no write while full.
    assert_eq!(
        w.dir().ops,
        [
            format!("close {}", segment_name(1_030)),
            format!("exists {}", segment_name(1_010)),
        ]
    );
    assert_eq!(w.dropped(), 2);
}

#[test]
fn a_failed_open_is_retried_on_the_next_line() {
    let mut w = SpoolAppender::new(Some(FakeDir::default()), layout());
    w.dir_mut().fail_open = true;
    assert!(matches!(
        append(&mut w, 1_000, "a\n"),
        AppendOutcome::Failed(_)
    ));
    w.dir_mut().fail_open = false;
    let mut carried = None;
    let outcome = w.append(1_001 * SEC, |dropped| {
        carried = Some(dropped);
        b"b\n"
    });
    assert!(matches!(outcome, AppendOutcome::Written));
    assert_eq!((carried, w.dropped()), (Some(1), 0));
    let opens = w.dir().ops.iter().filter(|o| o.starts_with("open")).count();
    assert_eq!(opens, 2);
}

#[test]
fn full_spool_drops_counts_and_reports_later() {
    let dir = tempfile::tempdir().unwrap();
    // A segment max_windows (3) windows back from 1_030 still exists: the reader lags.
    std::fs::write(dir.path().join(segment_name(1_000)), "old\n").unwrap();
    let mut w = SpoolAppender::new(Some(StdDir(dir.path().to_path_buf())), layout());
    assert!(matches!(append(&mut w, 1_030, "a\n"), AppendOutcome::Full));
    assert!(matches!(append(&mut w, 1_031, "b\n"), AppendOutcome::Full));
    assert_eq!(w.dropped(), 2);
    // The reader caught up: the old segment is gone, next window admits again.
    std::fs::remove_file(dir.path().join(segment_name(1_000))).unwrap();
    let mut carried = 0;
    let outcome = w.append(1_040 * SEC, |dropped| {
        carried = dropped;
        b"x\n"
    });
    assert!(matches!(outcome, AppendOutcome::Written));
    assert_eq!((carried, w.dropped()), (2, 0));
}

/// The bytes of `segment` as the fake wrote them.
fn written(dir: &FakeDir, segment: &str) -> String {
    dir.lines
        .iter()
        .filter(|(s, _)| s == segment)
        .map(|(_, l)| String::from_utf8_lossy(l).into_owned())
        .collect()
}

#[test]
fn a_short_write_leaves_a_fragment_the_next_line_does_not_join() {
    let mut w = SpoolAppender::new(Some(FakeDir::default()), layout());
    assert!(matches!(
        append(&mut w, 1_000, "a\n"),
        AppendOutcome::Written
    ));
    // The disk fills up: 3 bytes of the next line land, then nothing.
    w.dir_mut().room = Some(3);
    assert!(matches!(
        append(&mut w, 1_001, "bbbbb\n"),
        AppendOutcome::Failed(_)
    ));
    assert!(matches!(
        append(&mut w, 1_002, "ccc\n"),
        AppendOutcome::Failed(_)
    ));
    assert_eq!(w.dropped(), 2);
    // Space returns: the next line ends the fragment first, then lands whole.
    w.dir_mut().room = None;
    assert!(matches!(
        append(&mut w, 1_003, "d\n"),
        AppendOutcome::Written
    ));
    assert!(matches!(
        append(&mut w, 1_004, "e\n"),
        AppendOutcome::Written
    ));
    assert_eq!(written(w.dir(), &segment_name(1_000)), "a\nbbb\nd\ne\n");
    // A fragment in an older window is left as it is (never write an older segment).
    w.dir_mut().room = Some(1);
    assert!(matches!(
        append(&mut w, 1_005, "ff\n"),
        AppendOutcome::Failed(_)
    ));
    w.dir_mut().room = None;
    assert!(matches!(
        append(&mut w, 1_010, "g\n"),
        AppendOutcome::Written
    ));
    assert_eq!(written(w.dir(), &segment_name(1_010)), "g\n");
}

#[test]
fn a_failed_write_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("missing-mount");
    let mut w = SpoolAppender::new(Some(StdDir(gone)), layout());
    assert!(matches!(
        append(&mut w, 1_000, "x\n"),
        AppendOutcome::Failed(_)
    ));
    assert_eq!(w.dropped(), 1);
}

#[test]
fn without_a_spool_every_record_is_dropped_and_counted_without_building_its_line() {
    let mut w = SpoolAppender::<FakeDir>::new(None, layout());
    for t in [1_000, 1_001, 1_050] {
        let outcome = w.append(t * SEC, |_| {
            unreachable!("no line is built without a spool")
        });
        assert!(matches!(outcome, AppendOutcome::NoSpool));
    }
    assert_eq!(w.dropped(), 3);
}
