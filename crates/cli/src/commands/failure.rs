//! A failure a command's user can act on: its message, and what to do about it (the CLI prints
//! `error: MESSAGE` and `hint: HINT`). One type for every command, found anywhere in an error's
//! chain, so context added on the way up does not lose the hint.

use std::borrow::Cow;
use std::fmt;

/// A failure of a command with what to do about it.
#[derive(Debug)]
pub struct Failure {
    pub(crate) message: String,
    pub(crate) hint: Cow<'static, str>,
}

impl Failure {
    pub fn new(message: impl Into<String>, hint: impl Into<Cow<'static, str>>) -> Failure {
        Failure {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// A [`Failure`] as an error to return.
pub fn failure(message: impl Into<String>, hint: impl Into<Cow<'static, str>>) -> anyhow::Error {
    Failure::new(message, hint).into()
}

/// The hint of the first [`Failure`] in `e`'s chain.
pub fn hint(e: &anyhow::Error) -> Option<&str> {
    e.chain()
        .find_map(|c| c.downcast_ref::<Failure>())
        .map(|f| f.hint.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn the_hint_survives_context() {
        let e: anyhow::Result<()> = Err(failure("the port is taken", "pick another"));
        let e = e.context("serving").unwrap_err();
        assert_eq!(hint(&e), Some("pick another"));
        assert_eq!(hint(&anyhow::anyhow!("plain")), None);
        let e = failure("no process 9", format!("check {}", 9));
        assert_eq!(hint(&e), Some("check 9"));
    }
}
