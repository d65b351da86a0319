when CLIENT_ACCEPTED {
    # PROXY protocol v2 header (binary), written to each server connection in SERVER_CONNECTED
    set lbc_src [getfield [IP::client_addr] "%" 1]
    set lbc_dst [getfield [IP::local_addr] "%" 1]
    if {[string first ":" $lbc_src] < 0} {
        set lbc_proxy [binary format a12ccS "\r\n\r\n\x00\r\nQUIT\n" 33 17 12]
        foreach lbc_ip [list $lbc_src $lbc_dst] {
            foreach lbc_byte [split $lbc_ip "."] {
                append lbc_proxy [binary format c $lbc_byte]
            }
        }
    } else {
        set lbc_proxy [binary format a12ccS "\r\n\r\n\x00\r\nQUIT\n" 33 33 36]
        foreach lbc_ip [list $lbc_src $lbc_dst] {
            if {[string first "::" $lbc_ip] < 0} {
                set lbc_groups [split $lbc_ip ":"]
            } else {
                set lbc_head [split [getfield $lbc_ip "::" 1] ":"]
                set lbc_tail [split [getfield $lbc_ip "::" 2] ":"]
                set lbc_groups $lbc_head
                for {set lbc_i [expr {[llength $lbc_head] + [llength $lbc_tail]}]} {$lbc_i < 8} {incr lbc_i} {
                    lappend lbc_groups 0
                }
                foreach lbc_group $lbc_tail {
                    lappend lbc_groups $lbc_group
                }
            }
            foreach lbc_group $lbc_groups {
                scan $lbc_group %x lbc_value
                append lbc_proxy [binary format S $lbc_value]
            }
        }
    }
    append lbc_proxy [binary format SS [TCP::client_port] [TCP::local_port]]
    if {[LB::status pool /Common/lightstreamer-multihost-per-ip.push-b.control.pool member 10.0.6.11 444] eq "down"} {
        reject
    } else {
        pool /Common/lightstreamer-multihost-per-ip.push-b.control.pool member 10.0.6.11 444
    }
}

when SERVER_CONNECTED {
    switch -- [LB::server pool] {
        /Common/lightstreamer-multihost-per-ip.push-b.control.pool {
            TCP::respond $lbc_proxy
        }
    }
}
