# lbc: rate limit per client address on listener web: at most 60 requests in a
# fixed window of 3 s that starts at the client's first one (the table entry's lifetime);
# beyond it, 429. Listed before the routing iRule.
when HTTP_REQUEST {
    set lbc_count [table incr -notouch -subtable lbc.rate-limits.web.rate [IP::client_addr]]
    if { $lbc_count == 1 } {
        table lifetime -subtable lbc.rate-limits.web.rate [IP::client_addr] 3
    }
    if { $lbc_count > 60 } {
        HTTP::respond 429 content "Too Many Requests" Connection close
        event disable all
        return
    }
}
