# lbc: client access list of listener web. Deny first: a client in the deny data group
# is refused; then, with an allow data group, a client outside it is refused. One `class match`
# lookup per data group, whatever its size. Listed first on the virtual server.
when HTTP_REQUEST {
    if { [class match [IP::client_addr] equals /Common/route-access.web.deny.datagroup] } {
        HTTP::respond 403 content "Forbidden" Connection close
        # no later HTTP_REQUEST handler (the routing iRule) runs for this connection
        event disable all
        return
    }
}
