# lbc: rate limit per client address on listener db: at most 10 connections in a
# fixed window of 5 s that starts at the client's first one (the table entry's lifetime);
# beyond it, the connection is rejected. Listed before the routing iRule.
when CLIENT_ACCEPTED {
    set lbc_count [table incr -notouch -subtable lbc.rate-limits-l4.db.rate [IP::client_addr]]
    if { $lbc_count == 1 } {
        table lifetime -subtable lbc.rate-limits-l4.db.rate [IP::client_addr] 5
    }
    if { $lbc_count > 10 } {
        reject
        event disable all
        return
    }
}
