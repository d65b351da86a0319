when HTTP_REQUEST {
    # HTTP::host keeps a port (host:8443): compare the name only
    set lbc_host [string tolower [getfield [HTTP::host] ":" 1]]
    switch -- $lbc_host {
        shop.example.com {
            set lbc_path [HTTP::path]
            if {[string first /legacy/ $lbc_path] == 0} {
                set lbc_location http://legacy.example.com
                HTTP::respond 308 noserver Location "$lbc_location[HTTP::uri]" Connection close
            } else {
                pool /Common/route-redirects.web.default.pool
            }
        }
        default {
            pool /Common/route-redirects.web.default.pool
        }
    }
}
