when HTTP_REQUEST {
    # HTTP::host keeps a port (host:8443): compare the name only
    set lbc_host [string tolower [getfield [HTTP::host] ":" 1]]
    switch -- $lbc_host {
        www.example.com {
            pool /Common/rate-limits.web.default.pool
        }
        default {
            pool /Common/rate-limits.web.default.pool
        }
    }
}
