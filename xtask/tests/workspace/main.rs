//! The workspace's invariants, checked on this workspace: the code map's dependency rules over every
//! manifest (`architecture`) and the source tidy rules (`tidy`).

mod architecture;
mod tidy;
