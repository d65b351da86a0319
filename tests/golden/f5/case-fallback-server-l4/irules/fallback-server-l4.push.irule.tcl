when CLIENT_ACCEPTED {
    if {[active_members /Common/fallback-server-l4.push.default.pool] < 1} {
        pool /Common/fallback-server-l4.push.fallback.server
    } else {
        pool /Common/fallback-server-l4.push.default.pool
    }
}

when LB_FAILED {
    # no member could be selected or connected: the service's fallback answers
    switch -- [LB::server pool] {
        /Common/fallback-server-l4.push.default.pool {
            LB::reselect pool /Common/fallback-server-l4.push.fallback.server
        }
    }
}
