when HTTP_REQUEST {
    # HTTP::host keeps a port (host:8443): compare the name only
    set lbc_host [string tolower [getfield [HTTP::host] ":" 1]]
    switch -- $lbc_host {
        hacloud.example.com {
            persist cookie insert HACSRV 0
            SSL::profile /Common/hacloud.sessions.serverssl
            pool /Common/hacloud.sessions.default.pool
        }
        mss.example.com {
            persist cookie insert MSSSRV 0
            SSL::profile /Common/hacloud.mss.serverssl
            pool /Common/hacloud.mss.default.pool
        }
        default {
            HTTP::respond 404 noserver Connection close
        }
    }
}
