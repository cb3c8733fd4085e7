//! The envelope's `TOPIC` (general.proto, spec §1.3).

wire_enum! {
    /// Which per-topic message a frame carries. Only topics with a binary codec exist here:
    /// 0 (UNKNOWN), 100 (ERROR, text protocol only) and any other number fail decoding.
    ///
    /// `Default` (PARSER) only exists so `Message { .., ..Default::default() }` works.
    #[derive(Default)]
    pub enum Topic {
        #[default]
        Parser = 1,
        Connection = 2,
        Auth = 3,
        Event = 4,
        Record = 5,
        Rpc = 6,
        Presence = 7,
        Monitoring = 8,
        Cluster = 9,
        Lock = 10,
        StateRegistry = 11,
    }
}
