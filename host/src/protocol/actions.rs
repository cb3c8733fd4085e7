//! Per-topic action enums (spec §2). Names are the proto names without their topic prefix.
//! MONITORING has no enum: its only action is 0 (UNKNOWN).

wire_enum! {
    /// CONNECTION actions (§2.2).
    pub enum ConnectionAction {
        Unknown = 0,
        Error = 1,
        Ping = 2,
        Pong = 3,
        Accept = 4,
        Challenge = 5,
        Reject = 6,
        Redirect = 7,
        Closing = 8,
        Closed = 9,
        AuthenticationTimeout = 100,
        InvalidMessage = 101,
    }
}

wire_enum! {
    /// AUTH actions (§2.3).
    pub enum AuthAction {
        Unknown = 0,
        Error = 1,
        Request = 2,
        AuthSuccessful = 3,
        AuthUnsuccessful = 4,
        TooManyAuthAttempts = 100,
        InvalidMessage = 101,
        InvalidMessageData = 102,
    }
}

wire_enum! {
    /// PARSER actions (§2.4); only UNKNOWN_TOPIC is ever sent.
    pub enum ParserAction {
        Unknown = 0,
        UnknownTopic = 1,
        UnknownAction = 2,
        InvalidMessage = 3,
        MessageParseError = 4,
        MaximumMessageSizeExceeded = 5,
        Error = 6,
        InvalidMetaParams = 7,
    }
}

wire_enum! {
    /// EVENT actions (§2.5).
    pub enum EventAction {
        Unknown = 0,
        Error = 1,
        Emit = 2,
        Subscribe = 3,
        Unsubscribe = 4,
        Listen = 5,
        Unlisten = 6,
        ListenAccept = 7,
        ListenReject = 8,
        SubscriptionHasProvider = 9,
        SubscriptionHasNoProvider = 10,
        SubscriptionForPatternFound = 11,
        SubscriptionForPatternRemoved = 12,
        InvalidListenRegex = 100,
        ListenResponseTimeout = 101,
        ListenUnsuccessful = 102,
        MessagePermissionError = 103,
        MessageDenied = 104,
        InvalidMessageData = 105,
        MultipleSubscriptions = 106,
        NotSubscribed = 107,
    }
}

wire_enum! {
    /// RECORD actions (§2.6); `PatchMulti` (35) only exists in git HEAD server/client.
    pub enum RecordAction {
        Unknown = 0,
        Error = 1,
        Notify = 2,
        Read = 3,
        ReadResponse = 4,
        Head = 5,
        HeadResponse = 6,
        HeadBulk = 7,
        HeadResponseBulk = 8,
        Delete = 9,
        DeleteSuccess = 10,
        DeleteBulk = 11,
        DeleteBulkSuccess = 12,
        Deleted = 13,
        WriteAcknowledgement = 14,
        Create = 15,
        CreateAndUpdate = 16,
        CreateAndPatch = 17,
        Update = 18,
        Patch = 19,
        Erase = 20,
        SubscribeAndHead = 21,
        SubscribeAndRead = 22,
        SubscribeCreateAndRead = 23,
        SubscribeCreateAndUpdate = 24,
        Subscribe = 25,
        Unsubscribe = 26,
        Listen = 27,
        Unlisten = 28,
        ListenAccept = 29,
        ListenReject = 30,
        SubscriptionHasProvider = 31,
        SubscriptionHasNoProvider = 32,
        SubscriptionForPatternFound = 33,
        SubscriptionForPatternRemoved = 34,
        PatchMulti = 35,
        CacheRetrievalTimeout = 100,
        StorageRetrievalTimeout = 101,
        VersionExists = 102,
        RecordLoadError = 103,
        RecordCreateError = 104,
        RecordUpdateError = 105,
        RecordDeleteError = 106,
        RecordNotFound = 107,
        InvalidVersion = 108,
        InvalidPatchOnHotpath = 109,
        InvalidListenRegex = 110,
        ListenResponseTimeout = 111,
        ListenUnsuccessful = 112,
        RecordNotifyError = 113,
        MessagePermissionError = 114,
        MessageDenied = 115,
        InvalidMessageData = 116,
        MultipleSubscriptions = 117,
        NotSubscribed = 118,
    }
}

wire_enum! {
    /// RPC actions (§2.7); there is no value 3.
    pub enum RpcAction {
        Unknown = 0,
        Error = 1,
        Request = 2,
        Accept = 4,
        Response = 5,
        Reject = 6,
        RequestError = 7,
        Provide = 8,
        Unprovide = 9,
        NoRpcProvider = 100,
        AcceptTimeout = 101,
        MultipleAccept = 102,
        InvalidRpcCorrelationId = 103,
        ResponseTimeout = 104,
        MultipleResponse = 105,
        MessagePermissionError = 106,
        MessageDenied = 107,
        InvalidMessageData = 108,
        MultipleProviders = 109,
        NotProvided = 110,
    }
}

wire_enum! {
    /// PRESENCE actions (§2.8).
    pub enum PresenceAction {
        Unknown = 0,
        Error = 1,
        QueryAll = 2,
        QueryAllResponse = 3,
        Query = 4,
        QueryResponse = 5,
        PresenceJoin = 6,
        PresenceJoinAll = 7,
        PresenceLeave = 8,
        PresenceLeaveAll = 9,
        Subscribe = 10,
        Unsubscribe = 11,
        SubscribeAll = 12,
        UnsubscribeAll = 13,
        InvalidPresenceUsers = 100,
        MessagePermissionError = 101,
        MessageDenied = 102,
        MultipleSubscriptions = 103,
        NotSubscribed = 104,
    }
}

wire_enum! {
    /// CLUSTER actions (§2.9), server-to-server only.
    pub enum ClusterAction {
        Unknown = 0,
        Remove = 1,
        Status = 2,
    }
}

wire_enum! {
    /// LOCK actions (§2.9), server-to-server only.
    pub enum LockAction {
        Unknown = 0,
        Error = 1,
        Request = 2,
        Response = 3,
        Release = 4,
    }
}

wire_enum! {
    /// STATE_REGISTRY actions (§2.9), server-to-server only.
    pub enum StateAction {
        Unknown = 0,
        Error = 1,
        Add = 2,
        Remove = 3,
        RequestFullState = 4,
        FullState = 5,
        Checksum = 6,
    }
}

wire_enum! {
    /// `STATE_REGISTRY_TOPIC`: which replicated registry a STATE_REGISTRY message belongs to
    /// ([`Message::registry_topic`](super::Message::registry_topic), §2.9).
    pub enum StateRegistryTopic {
        Subscriptions = 9,
        OnlineUsers = 10,
        EventSubscriptions = 11,
        RecordSubscriptions = 12,
        RpcSubscriptions = 13,
        PresenceSubscriptions = 14,
        RecordListenPatterns = 15,
        EventListenPatterns = 16,
        RecordPublishedSubscriptions = 17,
        EventPublishedSubscriptions = 18,
        RecordListening = 19,
        EventListening = 20,
        StateRegistry = 21,
        MonitoringSubscriptions = 24,
    }
}
