when HTTP_REQUEST {
    # HTTP::host keeps a port (host:8443): compare the name only
    set lbc_host [string tolower [getfield [HTTP::host] ":" 1]]
    switch -- $lbc_host {
        legacy.example.com {
            pool /Common/tls-profiles.web.default.pool
        }
        default {
            HTTP::respond 404 noserver Connection close
        }
    }
}
