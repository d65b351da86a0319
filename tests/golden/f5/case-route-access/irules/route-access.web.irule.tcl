when HTTP_REQUEST {
    # HTTP::host keeps a port (host:8443): compare the name only
    set lbc_host [string tolower [getfield [HTTP::host] ":" 1]]
    switch -- $lbc_host {
        www.example.com {
            set lbc_path [HTTP::path]
            if {[string first /admin/ $lbc_path] == 0} {
                if { [class match [IP::client_addr] equals /Common/route-access.web.route1.deny.datagroup] || ![class match [IP::client_addr] equals /Common/route-access.web.route1.allow.datagroup] } {
                    HTTP::respond 403 content "Forbidden" noserver Connection close
                    return
                }
                pool /Common/route-access.admin.default.pool
            } else {
                pool /Common/route-access.web.default.pool
            }
        }
        ops.example.com {
            if { [class match [IP::client_addr] equals /Common/route-access.web.route2.deny.datagroup] } {
                HTTP::respond 403 content "Forbidden" noserver Connection close
                return
            }
            pool /Common/route-access.admin.default.pool
        }
        default {
            set lbc_path [HTTP::path]
            if {[string first /admin/ $lbc_path] == 0} {
                if { [class match [IP::client_addr] equals /Common/route-access.web.route1.deny.datagroup] || ![class match [IP::client_addr] equals /Common/route-access.web.route1.allow.datagroup] } {
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
