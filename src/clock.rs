//! The one clock of a run: `SOURCE_DATE_EPOCH` when it is set (the
//! reproducible-builds convention: identical input gives identical bytes,
//! commit dates included), else the system's time. It is read once, by the
//! command layer, and a value that is not a number of seconds is always an
//! error, wherever it would have been used.

use anyhow::Result;

use crate::error::{ExitCode, fail};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    now: jiff::Timestamp,
    /// Whether `now` came from `SOURCE_DATE_EPOCH`.
    fixed: bool,
}

impl Clock {
    /// Read `SOURCE_DATE_EPOCH`, else the system's time.
    pub fn from_env() -> Result<Clock> {
        match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(text) => text
                .trim()
                .parse::<i64>()
                .ok()
                .and_then(|secs| jiff::Timestamp::from_second(secs).ok())
                .map(|now| Clock { now, fixed: true })
                .ok_or_else(|| {
                    fail(
                        ExitCode::Usage,
                        format!("SOURCE_DATE_EPOCH='{text}' is not a number of seconds since 1970; fix or unset it"),
                    )
                }),
            Err(_) => Ok(Clock::system()),
        }
    }

    /// The system's time, whatever the environment says.
    pub fn system() -> Clock {
        Clock {
            now: jiff::Timestamp::now(),
            fixed: false,
        }
    }

    pub fn now(&self) -> jiff::Timestamp {
        self.now
    }

    /// The time now, for the end of work begun at [`Clock::now`]: the
    /// fixed time again when the clock is fixed, so output is reproducible.
    pub fn later(&self) -> jiff::Timestamp {
        if self.fixed {
            self.now
        } else {
            jiff::Timestamp::now()
        }
    }

    /// `now` as receipts and the ledger write it.
    pub fn stamp(&self) -> String {
        stamp(self.now)
    }

    /// The date git records for commits made now: `@SECONDS +0000` when the
    /// clock is fixed; `None` lets git take its own.
    pub fn git_date(&self) -> Option<String> {
        self.fixed
            .then(|| format!("@{} +0000", self.now.as_second()))
    }
}

/// A time as receipts and the ledger write it (`2026-01-02T03:04:05Z`).
pub fn stamp(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
