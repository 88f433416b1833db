//! Pure rules over the domain types: no I/O, unit-tested here, applied by the service and, where
//! a rule must hold inside one atomic write, by the stores.

pub mod send_limits;
pub mod verification;
