when HTTP_REQUEST {
    # HTTP::host keeps a port (host:8443): compare the name only
    set lbc_host [string tolower [getfield [HTTP::host] ":" 1]]
    switch -- $lbc_host {
        default {
            if {[active_members /Common/fallback-respond.web.default.pool] < 1} {
                HTTP::respond 503 content "No sessions available" noserver Content-Type text/plain Connection close
            } else {
                pool /Common/fallback-respond.web.default.pool
            }
        }
    }
}

when LB_FAILED {
    # no member could be selected or connected: the service's fallback answers
    switch -- [LB::server pool] {
        /Common/fallback-respond.web.default.pool {
            HTTP::respond 503 content "No sessions available" noserver Content-Type text/plain Connection close
        }
    }
}
