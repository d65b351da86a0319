# lbc: client access list of listener db. Deny first: a client in the deny data group
# is refused; then, with an allow data group, a client outside it is refused. One `class match`
# lookup per data group, whatever its size. Listed first on the virtual server.
when CLIENT_ACCEPTED {
    if { [class match [IP::client_addr] equals /Common/access-lists.db.deny.datagroup] } {
        reject
        event disable all
        return
    }
}
