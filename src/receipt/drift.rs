//! How a tree differs from its receipt: what `verify` reports.

use serde::Serialize;

use super::Receipt;

#[derive(Debug, Default, Serialize)]
pub struct Drift {
    pub modified: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub mode_changed: Vec<ModeChange>,
}

#[derive(Debug, Serialize)]
pub struct ModeChange {
    pub path: String,
    pub from: String,
    pub to: String,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.modified.is_empty()
            && self.added.is_empty()
            && self.removed.is_empty()
            && self.mode_changed.is_empty()
    }
}

/// How `actual` differs from `expected`; both lists are sorted by path.
pub fn compare(expected: &Receipt, actual: &Receipt) -> Drift {
    let mut drift = Drift::default();
    let (mut e, mut a) = (
        expected.files.iter().peekable(),
        actual.files.iter().peekable(),
    );
    loop {
        match (e.peek(), a.peek()) {
            (None, None) => break,
            (Some(x), None) => {
                drift.removed.push(x.path.clone());
                e.next();
            }
            (None, Some(y)) => {
                drift.added.push(y.path.clone());
                a.next();
            }
            (Some(x), Some(y)) => match x.path.as_bytes().cmp(y.path.as_bytes()) {
                std::cmp::Ordering::Less => {
                    drift.removed.push(x.path.clone());
                    e.next();
                }
                std::cmp::Ordering::Greater => {
                    drift.added.push(y.path.clone());
                    a.next();
                }
                std::cmp::Ordering::Equal => {
                    if x.blake3 != y.blake3 || x.size != y.size {
                        drift.modified.push(x.path.clone());
                    }
                    if x.mode != y.mode {
                        drift.mode_changed.push(ModeChange {
                            path: x.path.clone(),
                            from: x.mode.clone(),
                            to: y.mode.clone(),
                        });
                    }
                    e.next();
                    a.next();
                }
            },
        }
    }
    drift
}
