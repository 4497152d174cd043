//! Append tickets: completed by the writer thread once a batch is durable.
//!
//! A ticket is a `std::future::Future` (no runtime needed: a mutex-guarded state plus the waker of
//! whoever polls it) and can also be waited on from a plain thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::error::LogError;
use crate::hash::Sha256Hash;

/// Where an entry landed in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub sequence: u64,
    pub hash: Sha256Hash,
}

enum State {
    Pending(Option<Waker>),
    Done(Result<Appended, LogError>),
    Taken,
}

pub(crate) struct TicketShared {
    state: Mutex<State>,
    done: Condvar,
}

impl TicketShared {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(TicketShared {
            state: Mutex::new(State::Pending(None)),
            done: Condvar::new(),
        })
    }

    pub(crate) fn complete(&self, result: Result<Appended, LogError>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let State::Pending(Some(waker)) = std::mem::replace(&mut *state, State::Done(result)) {
            waker.wake();
        }
        self.done.notify_all();
    }
}

/// The promise of one append: resolves to [`Appended`] once the entry is durable (or, under
/// [`crate::Durability::DangerMemoryOnly`], written), or to the error that kept it out of the log.
#[must_use = "an exchange may be answered only once its ticket has completed"]
pub struct AppendTicket {
    shared: Arc<TicketShared>,
}

impl std::fmt::Debug for AppendTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppendTicket")
    }
}

impl AppendTicket {
    pub(crate) fn new(shared: Arc<TicketShared>) -> Self {
        AppendTicket { shared }
    }

    pub(crate) fn failed(error: LogError) -> Self {
        let shared = TicketShared::new();
        shared.complete(Err(error));
        AppendTicket { shared }
    }

    /// Blocks the calling thread until the append completes.
    pub fn wait(self) -> Result<Appended, LogError> {
        let mut state = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            match std::mem::replace(&mut *state, State::Taken) {
                State::Done(result) => return result,
                State::Taken => return Err(LogError::Closed),
                pending @ State::Pending(_) => {
                    *state = pending;
                    state = self
                        .shared
                        .done
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }
}

impl Future for AppendTicket {
    type Output = Result<Appended, LogError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match std::mem::replace(&mut *state, State::Taken) {
            State::Done(result) => Poll::Ready(result),
            State::Taken => Poll::Ready(Err(LogError::Closed)),
            State::Pending(_) => {
                *state = State::Pending(Some(cx.waker().clone()));
                Poll::Pending
            }
        }
    }
}
