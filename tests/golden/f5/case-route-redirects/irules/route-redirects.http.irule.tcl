when HTTP_REQUEST {
    # HTTP::host keeps a port (host:8443): compare the name only
    set lbc_host [string tolower [getfield [HTTP::host] ":" 1]]
    switch -- $lbc_host {
        old.example.com -
        older.example.com {
            set lbc_location https://new.example.com:8443
            HTTP::respond 301 noserver Location "$lbc_location[HTTP::uri]" Connection close
        }
        www.example.com {
            set lbc_path [HTTP::path]
            if {[string first /old/ $lbc_path] == 0} {
                set lbc_location http://new.example.com
                HTTP::respond 302 noserver Location "$lbc_location[HTTP::uri]" Connection close
            } else {
                pool /Common/route-redirects.web.default.pool
            }
        }
        shop.example.com {
            set lbc_location https://
            append lbc_location [getfield [HTTP::host] ":" 1] ""
            HTTP::respond 308 noserver Location "$lbc_location[HTTP::uri]" Connection close
        }
        default {
            set lbc_path [HTTP::path]
            if {[string equal $lbc_path /moved]} {
                set lbc_location https://new.example.com
                HTTP::respond 308 noserver Location "$lbc_location[HTTP::uri]" Connection close
            } else {
                pool /Common/route-redirects.web.default.pool
            }
        }
    }
}
