# lbc: listener http answers plain HTTP with a redirect (308) to
# https://<the Host's name> + the same path and query.
# Paths starting with /.well-known/acme-challenge/, /api/public/ follow the routes.
# Listed after the access list and rate limit, before the header and routing iRules.
when HTTP_REQUEST {
    set lbc_path [HTTP::path]
    # a path the server would read as another one (dot segments, "//", escaped dots or slashes) must not
    # pass as an except prefix over plain HTTP: refused, as on HAProxy
    if { [string first "/./" $lbc_path] >= 0 || [string first "/../" $lbc_path] >= 0
         || [string first "//" $lbc_path] >= 0 || [string match "*/." $lbc_path] || [string match "*/.." $lbc_path]
         || [string match -nocase "*%2\[ef\]*" $lbc_path] || [string match -nocase "*%5c*" $lbc_path] } {
        HTTP::respond 400 content "" noserver Connection close
        event disable all
        return
    }
    if { [string first /.well-known/acme-challenge/ $lbc_path] == 0 || [string first /api/public/ $lbc_path] == 0 } {
        return
    }
    HTTP::respond 308 Location "https://[getfield [HTTP::host] ":" 1][HTTP::uri]" Connection close
    # no later HTTP_REQUEST handler (headers, routing) runs for this connection
    event disable all
}
