pub mod valve;
