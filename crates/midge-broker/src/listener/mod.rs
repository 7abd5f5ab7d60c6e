//! Accept loops. Each listener hands every accepted byte stream to
//! [`crate::connection::run`].

pub(crate) mod tcp;
