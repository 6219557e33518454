//! Model <-> admin wire conversions: [`request`] turns requests into commands, [`message`]
//! turns entities into messages. Both are re-exported here (`convert::create_component`,
//! `convert::component`).

mod message;
mod request;

pub use message::*;
pub use request::*;
