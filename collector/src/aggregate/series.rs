//! A metric series store: capped families of label sets with their values, and the histogram
//! series with exemplars; shared by every metric the aggregate keeps.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Label values of the overflow series a capped family sends new label sets to.
pub const OVERFLOW: &str = "other";
/// Separator of label values inside a series key (control characters are never label values).
pub(crate) const SEP: char = '\u{1f}';

/// A metric family: label sets (joined by `SEP`) with their values, capped; a series not
/// updated for a while can be expired, making room under the cap.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "V: Serialize + serde::de::DeserializeOwned")]
pub struct Family<V> {
    /// `(label values joined by SEP, value)` in creation order.
    pub series: Vec<(Box<str>, V)>,
    /// Label sets sent to the overflow series because of the cap.
    pub overflowed: u64,
    /// When each series (same order) was created, Unix ns (0: before this was kept).
    #[serde(default)]
    pub created: Vec<u64>,
    /// When each series (same order) was last updated, Unix ns (0: never expires).
    #[serde(default)]
    pub touched: Vec<u64>,
    /// Series removed for being idle.
    #[serde(default)]
    pub expired: u64,
    /// The time updates are stamped with ([`Family::set_clock`]; 0 until set).
    #[serde(skip)]
    now_ns: u64,
    /// Key → position in `series`; foldhash (seeded per process) instead of SipHash: two or
    /// three lookups per record.
    #[serde(skip)]
    index: HashMap<Box<str>, usize, foldhash::fast::RandomState>,
}

impl<V> Default for Family<V> {
    fn default() -> Self {
        Self {
            series: Vec::new(),
            overflowed: 0,
            created: Vec::new(),
            touched: Vec::new(),
            expired: 0,
            now_ns: 0,
            index: HashMap::default(),
        }
    }
}

impl<V> Family<V> {
    /// The series for `key`, created with `make` when new; past `cap` new keys go to the
    /// overflow series (`labels` values all `other`).
    pub(super) fn slot(
        &mut self,
        key: &str,
        labels: usize,
        cap: usize,
        make: impl Fn() -> V,
    ) -> &mut V {
        if let Some(&i) = self.index.get(key) {
            self.touch(i);
            return &mut self.series[i].1;
        }
        let key: Box<str> = if self.series.len() < cap {
            key.into()
        } else {
            self.overflowed += 1;
            let overflow = vec![OVERFLOW; labels].join(&SEP.to_string());
            if let Some(&i) = self.index.get(overflow.as_str()) {
                self.touch(i);
                return &mut self.series[i].1;
            }
            overflow.into()
        };
        self.index.insert(key.clone(), self.series.len());
        self.series.push((key, make()));
        self.created.push(self.now_ns);
        self.touched.push(self.now_ns);
        let last = self.series.len() - 1;
        &mut self.series[last].1
    }

    fn touch(&mut self, i: usize) {
        if let Some(t) = self.touched.get_mut(i) {
            *t = self.now_ns;
        }
    }

    /// Stamps later updates with `now_ns`; series from a checkpoint that kept no times are
    /// taken as updated now.
    pub fn set_clock(&mut self, now_ns: u64) {
        self.now_ns = now_ns;
        self.created.resize(self.series.len(), 0);
        self.touched.resize(self.series.len(), now_ns);
    }

    /// Removes the series last updated before `cutoff_ns` (a series without a time stays);
    /// how many went.
    pub fn expire(&mut self, cutoff_ns: u64) -> u64 {
        let keep: Vec<bool> = (0..self.series.len())
            .map(|i| {
                self.touched
                    .get(i)
                    .is_none_or(|t| *t == 0 || *t >= cutoff_ns)
            })
            .collect();
        let removed = keep.iter().filter(|k| !**k).count();
        if removed == 0 {
            return 0;
        }
        let mut kept = keep.iter();
        self.series.retain(|_| *kept.next().unwrap_or(&true));
        let mut kept = keep.iter();
        self.created.retain(|_| *kept.next().unwrap_or(&true));
        let mut kept = keep.iter();
        self.touched.retain(|_| *kept.next().unwrap_or(&true));
        self.expired += removed as u64;
        self.reindex();
        removed as u64
    }

    pub(super) fn reindex(&mut self) {
        self.index = self
            .series
            .iter()
            .enumerate()
            .map(|(i, (key, _))| (key.clone(), i))
            .collect();
    }

    /// Label values of each series, in order.
    pub fn iter(&self) -> impl Iterator<Item = (std::str::Split<'_, char>, &V)> {
        self.series.iter().map(|(key, v)| (key.split(SEP), v))
    }

    /// As [`Family::iter`], with each series' creation time (Unix ns, 0: unknown).
    pub fn iter_created(&self) -> impl Iterator<Item = (std::str::Split<'_, char>, &V, u64)> {
        self.series
            .iter()
            .enumerate()
            .map(|(i, (key, v))| (key.split(SEP), v, self.created.get(i).copied().unwrap_or(0)))
    }

    /// The first label value of each series but the overflow one.
    pub fn first_labels(&self) -> impl Iterator<Item = &str> {
        self.series
            .iter()
            .filter_map(|(key, _)| key.split(SEP).next())
            .filter(|first| *first != OVERFLOW)
    }
}

/// One histogram series.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hist {
    /// Non-cumulative counts per bucket; the last is `+Inf`.
    pub counts: Vec<u64>,
    pub sum: f64,
    /// Latest sampled observation per bucket (empty until the first one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exemplars: Vec<Option<Exemplar>>,
}

/// An exemplar: which trace an observation came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exemplar {
    pub trace_id: String,
    pub value: f64,
    /// When the request ended, Unix nanoseconds.
    pub unix_ns: u64,
}

impl Hist {
    pub(super) fn new(bounds: usize) -> Self {
        Self {
            counts: vec![0; bounds + 1],
            sum: 0.0,
            exemplars: Vec::new(),
        }
    }

    pub(super) fn observe(&mut self, bounds: &[f64], value: f64, exemplar: Option<(&str, u64)>) {
        let bucket = bounds.partition_point(|b| *b < value);
        self.counts[bucket] += 1;
        self.sum += value;
        if let Some((trace_id, unix_ns)) = exemplar {
            if self.exemplars.is_empty() {
                self.exemplars = vec![None; self.counts.len()];
            }
            match &mut self.exemplars[bucket] {
                Some(e) => {
                    trace_id.clone_into(&mut e.trace_id);
                    e.value = value;
                    e.unix_ns = unix_ns;
                }
                slot @ None => {
                    *slot = Some(Exemplar {
                        trace_id: trace_id.to_owned(),
                        value,
                        unix_ns,
                    });
                }
            }
        }
    }

    /// Observations in total.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}
