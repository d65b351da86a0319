when HTTP_REQUEST {
    # HTTP::host keeps a port (host:8443): compare the name only
    set lbc_host [string tolower [getfield [HTTP::host] ":" 1]]
    switch -- $lbc_host {
        push.a.example.com -
        push.b.example.net {
            pool /Common/lightstreamer-multihost.push.create.pool
        }
        s1.push.a.example.com {
            if {[LB::status pool /Common/lightstreamer-multihost.push.control.pool member 10.0.6.11 8080] eq "down"} {
                reject
            } else {
                pool /Common/lightstreamer-multihost.push.control.pool member 10.0.6.11 8080
            }
        }
        s2.push.a.example.com {
            if {[LB::status pool /Common/lightstreamer-multihost.push.control.pool member 10.0.6.12 8080] eq "down"} {
                reject
            } else {
                pool /Common/lightstreamer-multihost.push.control.pool member 10.0.6.12 8080
            }
        }
        default {
            HTTP::respond 404 noserver Connection close
        }
    }
}
