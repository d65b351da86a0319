when HTTP_REQUEST {
    # HTTP::host keeps a port (host:8443): compare the name only
    set lbc_host [string tolower [getfield [HTTP::host] ":" 1]]
    switch -- $lbc_host {
        default {
            set lbc_path [HTTP::path]
            if {[string equal $lbc_path /metrics]} {
                if { ![class match [IP::client_addr] equals /Common/route-access.web6.route1.allow.datagroup] } {
                    HTTP::respond 403 content "Forbidden" noserver Connection close
                    return
                }
                pool /Common/route-access.admin.default.pool
            } else {
                pool /Common/route-access.web.default.pool
            }
        }
    }
}
