//! MCP sessions: tracked from each record's session event, ended by a `DELETE`, with bounded
//! tombstones of ended ids so a stream's record arriving after the `DELETE` that ended its
//! session (streams are recorded when they end) does not bring the session back.

use std::collections::{BTreeMap, HashMap};

use gatetrace_core::record::{Record, SessionEvent};

use super::state::{SessionEntry, Settings, State};

/// Remembers the first `max` ids only, dropping the one ended longest ago for a new one.
fn remember_ended(ended: &mut HashMap<String, u64>, id: &str, at_ns: u64, max: usize) {
    if let Some(t) = ended.get_mut(id) {
        *t = (*t).max(at_ns);
        return;
    }
    if ended.len() >= max {
        // Full only under a flood of DELETEs within one idle window; a linear scan then is
        // cheaper than keeping a second, ordered index for every session.
        if let Some(oldest) = ended
            .iter()
            .min_by_key(|(_, t)| **t)
            .map(|(id, _)| id.clone())
        {
            ended.remove(&oldest);
        }
    }
    ended.insert(id.to_owned(), at_ns);
}

impl State {
    /// Applies `record`'s session event (if any); `end_ns` is when the record's request ended.
    pub(super) fn apply_session(&mut self, settings: &Settings, record: &Record, end_ns: u64) {
        let Some(session) = &record.session else {
            return;
        };
        match session.event {
            SessionEvent::End => {
                self.sessions.remove(&session.id);
                remember_ended(
                    &mut self.ended_sessions,
                    &session.id,
                    end_ns,
                    settings.max_sessions,
                );
            }
            SessionEvent::Start | SessionEvent::Seen => {
                if self.ended_sessions.contains_key(&session.id) {
                    // A stream of the session that ended after its DELETE: the session stays
                    // ended.
                    self.ended_session_records += 1;
                } else if let Some(entry) = self.sessions.get_mut(&session.id) {
                    entry.last_unix_ns = entry.last_unix_ns.max(end_ns);
                } else if self.sessions.len() < settings.max_sessions {
                    self.sessions.insert(
                        session.id.clone(),
                        SessionEntry {
                            service: record.service.clone(),
                            last_unix_ns: end_ns,
                        },
                    );
                } else {
                    self.untracked_session_records += 1;
                }
            }
        }
    }

    /// Forgets sessions idle since before `cutoff_unix_ns`, and the ended ids as old (a stream
    /// outliving its session's `DELETE` by more than the idle window counts as new again).
    pub fn expire_sessions(&mut self, cutoff_unix_ns: u64) {
        self.sessions
            .retain(|_, s| s.last_unix_ns >= cutoff_unix_ns);
        self.ended_sessions.retain(|_, t| *t >= cutoff_unix_ns);
    }

    /// Active sessions per service at `cutoff_unix_ns` (sessions seen since then), 0 for
    /// every other service in `known` or in the request series.
    #[must_use]
    pub fn active_sessions<'a>(
        &'a self,
        cutoff_unix_ns: u64,
        known: &'a [String],
    ) -> BTreeMap<&'a str, u64> {
        let mut active: BTreeMap<&str, u64> = known
            .iter()
            .map(String::as_str)
            .chain(self.requests.first_labels())
            .map(|service| (service, 0))
            .collect();
        for entry in self.sessions.values() {
            if entry.last_unix_ns >= cutoff_unix_ns {
                *active.entry(entry.service.as_str()).or_insert(0) += 1;
            }
        }
        active
    }
}

#[cfg(test)]
mod tests {
    use gatetrace_core::record::Session;

    use super::super::state::Transport;
    use super::*;

    fn settings() -> Settings {
        Settings {
            max_sessions: 2,
            ..Settings::for_tests()
        }
    }

    fn with_session(id: &str, event: SessionEvent, start_ns: u64) -> Record {
        Record {
            start_unix_ns: start_ns,
            session: Some(Session {
                id: id.into(),
                event,
            }),
            ..Record::example(1)
        }
    }

    #[test]
    fn sessions_idle_past_the_window_are_not_active_and_expire() {
        let s = settings();
        let mut state = State::new(&s);
        for (id, start) in [("old", 1_000_000_000), ("new", 9_000_000_000)] {
            state.apply(
                &s,
                Transport::Http,
                &with_session(id, SessionEvent::Seen, start),
            );
        }
        // A third session past max_sessions (2) is not tracked, and counted.
        let third = with_session("third", SessionEvent::Start, 9_000_000_000);
        state.apply(&s, Transport::Http, &third);
        assert_eq!(state.untracked_session_records, 1);
        assert_eq!(state.active_sessions(0, &[]).get("mcp"), Some(&2));
        assert_eq!(
            state.active_sessions(5_000_000_000, &[]).get("mcp"),
            Some(&1)
        );
        state.expire_sessions(5_000_000_000);
        assert_eq!(state.sessions.len(), 1);
        assert!(state.sessions.contains_key("new"));
    }

    #[test]
    fn a_stream_recorded_after_its_sessions_delete_does_not_bring_it_back() {
        let s = settings();
        let mut state = State::new(&s);
        state.apply(
            &s,
            Transport::Http,
            &with_session("s1", SessionEvent::Start, 1_000),
        );
        state.apply(
            &s,
            Transport::Http,
            &with_session("s1", SessionEvent::End, 2_000),
        );
        // The GET stream of s1 ends after the DELETE; its record comes last.
        state.apply(
            &s,
            Transport::Http,
            &with_session("s1", SessionEvent::Seen, 1_500),
        );
        state.apply(
            &s,
            Transport::Http,
            &with_session("s1", SessionEvent::Start, 1_500),
        );
        assert_eq!(state.active_sessions(0, &[]).get("mcp"), Some(&0));
        assert_eq!(state.ended_session_records, 2);
        // A new session still counts, and the tombstones survive a checkpoint.
        state.apply(
            &s,
            Transport::Http,
            &with_session("s2", SessionEvent::Start, 3_000),
        );
        let mut back: State =
            serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        back.conform(&s);
        back.apply(
            &s,
            Transport::Http,
            &with_session("s1", SessionEvent::Seen, 3_000),
        );
        assert_eq!(back.active_sessions(0, &[]).get("mcp"), Some(&1));
        assert_eq!(back.ended_session_records, 3);
        // Tombstones expire with the idle window (the DELETE's request ended at 2_000 + 1 ms).
        back.expire_sessions(1_002_000);
        assert_eq!(back.ended_sessions.len(), 1);
        back.expire_sessions(1_002_001);
        assert!(back.ended_sessions.is_empty());
    }

    #[test]
    fn tombstones_are_bounded_by_max_sessions_dropping_the_oldest() {
        let s = settings();
        let mut state = State::new(&s);
        for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
            state.apply(
                &s,
                Transport::Http,
                &with_session(id, SessionEvent::End, i as u64),
            );
        }
        let mut ids: Vec<&str> = state.ended_sessions.keys().map(String::as_str).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["b", "c"]);
    }
}
