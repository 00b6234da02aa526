//! The emulator the tests run against (see `imagemcp_aws::testing`): one moto shared by the tests
//! that use real time, and one for the queue suite, whose clock the suite drives.

pub(crate) use imagemcp_aws::testing::{Moto, clients_for, unique};
