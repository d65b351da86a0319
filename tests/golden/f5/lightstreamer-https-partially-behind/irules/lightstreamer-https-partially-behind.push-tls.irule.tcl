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
    # Hold the first bytes: CLIENT_DATA reads the server name from the TLS ClientHello
    TCP::collect
}

when CLIENT_DATA {
    # TLS record header: type 22 (handshake), version, length; 8.4 has no unsigned scan, so mask
    set lbc_sni ""
    set lbc_data [TCP::payload]
    set lbc_have [string length $lbc_data]
    if {$lbc_have < 5} {
        # not even a record header yet
        TCP::collect
        return
    }
    if {[binary scan $lbc_data cSS lbc_type lbc_version lbc_rlen] == 3 && ($lbc_type & 0xff) == 22} {
        set lbc_rlen [expr {$lbc_rlen & 0xffff}]
        if {$lbc_have < $lbc_rlen + 5 && $lbc_have < 16389} {
            # the ClientHello is not complete yet: keep collecting
            TCP::collect
            return
        }
        # handshake header (4) + client version (2) + random (32): the session id length is at 43
        set lbc_at 43
        if {[binary scan $lbc_data @${lbc_at}c lbc_len] == 1} {
            set lbc_at [expr {$lbc_at + 1 + ($lbc_len & 0xff)}]
            if {[binary scan $lbc_data @${lbc_at}S lbc_len] == 1} {
                set lbc_at [expr {$lbc_at + 2 + ($lbc_len & 0xffff)}]
                if {[binary scan $lbc_data @${lbc_at}c lbc_len] == 1} {
                    set lbc_at [expr {$lbc_at + 1 + ($lbc_len & 0xff)}]
                    if {[binary scan $lbc_data @${lbc_at}S lbc_len] == 1} {
                        set lbc_at [expr {$lbc_at + 2}]
                        set lbc_end [expr {$lbc_at + ($lbc_len & 0xffff)}]
                        # walk the extensions to server_name (type 0); each step moves forward
                        while {$lbc_at + 4 <= $lbc_end} {
                            if {[binary scan $lbc_data @${lbc_at}SS lbc_ext lbc_len] != 2} {
                                break
                            }
                            set lbc_len [expr {$lbc_len & 0xffff}]
                            if {($lbc_ext & 0xffff) == 0} {
                                # list length (2), name type (1), name length (2), name
                                if {[binary scan $lbc_data @[expr {$lbc_at + 7}]S lbc_len] == 1} {
                                    set lbc_len [expr {$lbc_len & 0xffff}]
                                    binary scan $lbc_data @[expr {$lbc_at + 9}]a${lbc_len} lbc_sni
                                }
                                break
                            }
                            set lbc_at [expr {$lbc_at + 4 + $lbc_len}]
                        }
                    }
                }
            }
        }
    }
    set lbc_host [string tolower $lbc_sni]
    switch -- $lbc_host {
        push.example.com {
            pool /Common/lightstreamer-https-partially-behind.lightstreamer.create.pool
        }
        default {
            reject
        }
    }
    TCP::release
}

when SERVER_CONNECTED {
    switch -- [LB::server pool] {
        /Common/lightstreamer-https-partially-behind.lightstreamer.create.pool {
            TCP::respond $lbc_proxy
        }
    }
}
