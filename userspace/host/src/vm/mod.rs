//! One guest: which accelerator, the QEMU command line, the monitor that
//! watches both channels, the driver's protocol messages, and a run.

pub mod accel;
pub mod interrupt;
pub mod messages;
pub mod monitor;
pub mod qemu;
pub mod run;
