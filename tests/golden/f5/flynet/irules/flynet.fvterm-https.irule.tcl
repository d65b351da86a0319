when HTTP_REQUEST {
    # HTTP::host keeps a port (host:8443): compare the name only
    set lbc_host [string tolower [getfield [HTTP::host] ":" 1]]
    switch -- $lbc_host {
        fvterm.example.com {
            pool /Common/flynet.fvterm.default.pool
        }
        default {
            HTTP::respond 404 noserver Connection close
        }
    }
}

when LB_FAILED {
    # no member could be selected or connected: the service's fallback answers
    switch -- [LB::server pool] {
        /Common/flynet.fvterm.default.pool {
            LB::reselect pool /Common/flynet.fvterm.fallback.server
        }
    }
}
