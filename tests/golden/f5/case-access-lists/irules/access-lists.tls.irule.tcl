when CLIENT_ACCEPTED {
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
    set lbc_wild "*.[string range $lbc_host [expr {[string first "." $lbc_host] + 1}] end]"
    switch -- $lbc_host {
        www.example.com {
            pool /Common/access-lists.web.default.pool
        }
        default {
            switch -- $lbc_wild {
                *.example.net {
                    pool /Common/access-lists.db.default.pool
                }
                default {
                    reject
                }
            }
        }
    }
    TCP::release
}
