when HTTP_REQUEST {
    # HTTP::host keeps a port (host:8443): compare the name only
    set lbc_host [string tolower [getfield [HTTP::host] ":" 1]]
    switch -- $lbc_host {
        www.example.com {
            set lbc_path [HTTP::path]
            if {[string first /api/ $lbc_path] == 0} {
                pool /Common/redirects.api.default.pool
            } else {
                pool /Common/redirects.web.default.pool
            }
        }
        default {
            set lbc_path [HTTP::path]
            if {[string first /.well-known/acme-challenge/ $lbc_path] == 0} {
                if {[LB::status pool /Common/redirects.web.default.pool member 10.0.0.11 8080] eq "down"} {
                    reject
                } else {
                    pool /Common/redirects.web.default.pool member 10.0.0.11 8080
                }
            } else {
                pool /Common/redirects.web.default.pool
            }
        }
    }
}
