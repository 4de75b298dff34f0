//! The connection task: one per Engine.IO session, owning the core's
//! `Connection`, its WebSockets and its timer, and running the
//! application's handlers for that session as futures of its own.

pub(crate) mod driver;
