//! Where each kind of rule is evaluated: conditions on fields here, event and inactivity rules in
//! [`crate::engine`], whose state they read.

pub(crate) mod condition;
