//! Per-topic field numbers (spec §2). The same logical field has a different number in each topic
//! message (`isAck` is 4, 5 or 7; `name` 6, 7 or 8), so encoder and decoder both go through these
//! tables instead of hard-coding numbers.

use super::Topic;

/// A logical [`Message`](super::Message) field. `action` is not listed: it is field 1 everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Data,
    CorrelationId,
    IsError,
    IsAck,
    Name,
    Names,
    Subscription,
    OriginalAction,
    IsWriteAck,
    Path,
    Version,
    Versions,
    Url,
    ProtocolVersion,
    SdkVersion,
    SdkType,
    RequestorName,
    RequestorData,
    LeaderScore,
    Role,
    Locked,
    Checksum,
    FullState,
    ServerName,
    RegistryTopic,
}

impl Field {
    /// The field's name in the .proto files, so decode errors name what the peer got wrong.
    pub(super) fn proto_name(self) -> &'static str {
        match self {
            Field::Data => "data",
            Field::CorrelationId => "correlationId",
            Field::IsError => "isError",
            Field::IsAck => "isAck",
            Field::Name => "name",
            Field::Names => "names",
            Field::Subscription => "subscription",
            Field::OriginalAction => "originalAction",
            Field::IsWriteAck => "isWriteAck",
            Field::Path => "path",
            Field::Version => "version",
            Field::Versions => "versions",
            Field::Url => "url",
            Field::ProtocolVersion => "protocolVersion",
            Field::SdkVersion => "sdkVersion",
            Field::SdkType => "sdkType",
            Field::RequestorName => "requestorName",
            Field::RequestorData => "requestorData",
            Field::LeaderScore => "leaderScore",
            Field::Role => "role",
            Field::Locked => "locked",
            Field::Checksum => "checksum",
            Field::FullState => "fullState",
            Field::ServerName => "serverName",
            Field::RegistryTopic => "registryTOPIC",
        }
    }
}

/// The fields of `topic`'s message as `(number, field)`, in ascending number order because
/// protobufjs writes fields sorted by number. `originalTOPIC` is left out on purpose: it is never
/// written (§1.4 rule 9) and is skipped like any unknown field when decoding.
pub(super) fn fields(topic: Topic) -> &'static [(u32, Field)] {
    use Field::*;
    match topic {
        Topic::Parser => &[(2, Data), (9, OriginalAction)],
        Topic::Connection => &[
            (2, Data),
            (3, IsError),
            (4, IsAck),
            (5, Url),
            (6, ProtocolVersion),
            (7, SdkVersion),
            (8, SdkType),
        ],
        Topic::Auth => &[(2, Data), (3, IsError), (4, IsAck)],
        Topic::Event => &[
            (2, Data),
            (3, CorrelationId),
            (4, IsError),
            (5, IsAck),
            (6, Name),
            (7, Names),
            (8, Subscription),
            (11, OriginalAction),
        ],
        // Field 8 (`pattern`) is never used by either side.
        Topic::Record => &[
            (2, Data),
            (3, CorrelationId),
            (4, IsError),
            (5, IsAck),
            (6, Name),
            (7, Names),
            (9, Subscription),
            (10, OriginalAction),
            (11, IsWriteAck),
            (12, Path),
            (13, Version),
            (14, Versions),
        ],
        // Field 8 (`reason`) was removed from the proto.
        Topic::Rpc => &[
            (2, Data),
            (3, CorrelationId),
            (4, IsError),
            (5, IsAck),
            (6, Names),
            (7, Name),
            (9, OriginalAction),
            (10, RequestorName),
            (11, RequestorData),
        ],
        Topic::Presence => &[
            (3, OriginalAction),
            (4, Data),
            (5, CorrelationId),
            (6, IsError),
            (7, IsAck),
            (8, Name),
            (9, Names),
        ],
        Topic::Monitoring => &[(2, Data), (3, CorrelationId), (4, IsError), (5, IsAck)],
        Topic::Cluster => &[
            (2, Data),
            (3, IsError),
            (4, IsAck),
            (5, LeaderScore),
            (7, Role),
        ],
        Topic::Lock => &[(3, Locked)],
        Topic::StateRegistry => &[
            (2, Data),
            (3, IsError),
            (19, Checksum),
            (20, FullState),
            (21, ServerName),
            (22, RegistryTopic),
        ],
    }
}
