when HTTP_REQUEST {
    # HTTP::host keeps a port (host:8443): compare the name only
    set lbc_host [string tolower [getfield [HTTP::host] ":" 1]]
    switch -- $lbc_host {
        push.example.com {
            pool /Common/lightstreamer-ssl-accelerator.lightstreamer.create.pool
        }
        push1.example.com {
            if {[LB::status pool /Common/lightstreamer-ssl-accelerator.lightstreamer.control.pool member 10.0.6.11 80] eq "down"} {
                reject
            } else {
                pool /Common/lightstreamer-ssl-accelerator.lightstreamer.control.pool member 10.0.6.11 80
            }
        }
        push2.example.com {
            if {[LB::status pool /Common/lightstreamer-ssl-accelerator.lightstreamer.control.pool member 10.0.6.12 80] eq "down"} {
                reject
            } else {
                pool /Common/lightstreamer-ssl-accelerator.lightstreamer.control.pool member 10.0.6.12 80
            }
        }
        default {
            HTTP::respond 404 noserver Connection close
        }
    }
}
